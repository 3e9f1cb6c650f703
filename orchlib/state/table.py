"""The `doit status` table: every task's state, and what to do next."""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from orchlib import executorregistry
from orchlib.plan import Plan
from orchlib.records import replace
from orchlib.state.model import (
    PlanState,
    Status,
    TaskRecord,
    add_spend,
    aggregate_status,
    plan_spend,
)
from orchlib.state.reconcile import budget_json, reconcile
from orchlib.state.render import next_step, relative_path, skip_reason, state_label, unfinished_deps
from orchlib.state.spendtext import spend_cell
from orchlib.state.stamps import Stamp
from orchlib.state.transitions import parse_time
from orchlib.state.words import Look, Shown, look_of, painted, shown_of
from orchlib.textsafe import flat_line

HEADER = ("TASK", "STATE", "PROJECT", "ATTEMPT", "DURATION", "LOG", "LAST")
USAGE_HEADER = ("COST", "TOKENS")
LAST_WIDTH_OFF_TTY = 60


def render_status(
    plan: Plan,
    state: PlanState | None,
    stamps: Mapping[str, Stamp],
    width: int | None = None,
    root: Path | None = None,
    only: set[str] | None = None,
    color: bool = False,
) -> str:
    """The status of one plan: a header line, one row per task, then the next steps.

    `stamps` holds the stamps of up-to-date tasks only; `only` filters the rows by task id.
    """
    current = effective_state(plan, state, stamps)
    tasks = [t for t in current.tasks.values() if only is None or t.id in only]
    usage = {t.id: task_usage(stamps.get(t.id)) for t in tasks}
    with_usage = any(usage.values())
    header: tuple[str, ...] = (*HEADER[:5], *USAGE_HEADER, *HEADER[5:]) if with_usage else HEADER
    budgets = any(t.budget for t in tasks)  # spend against a task budget (DESIGN §15)
    header = (*header[:-2], "SPEND", *header[-2:]) if budgets else header
    rows: list[tuple[str, ...]] = [header]
    for t in tasks:
        listed = t.id in plan.tasks and bool(plan.tasks[t.id].agents)  # fallback agents
        row = _row(plan.plan_id, t, current, root, listed)
        row = (*row[:5], *_usage_cells(usage[t.id]), *row[5:]) if with_usage else row
        rows.append((*row[:-2], spend_cell(t.spend, t.budget), *row[-2:]) if budgets else row)
    every = list(current.tasks.values())
    done = sum(t.status is Status.DONE for t in every)
    status = current.status if _running(current) else aggregate_status(t.status for t in every)
    spent = usage_text(_total(usage.values())) if with_usage else ""
    budget = spend_cell(current.spend or plan_spend(current), current.budget)
    if budget and current.budget:
        spent = f"{spent}; budget {budget}" if spent else f"budget {budget}"
    counts = f"{plan.plan_id}: {status.value}, {done}/{len(every)} done"
    parts = [counts, flat_line(plan.summary), spent]
    head = " — ".join(part for part in parts if part)
    looks = [None, *(look_of(t) for t in tasks)] if color else []
    steps = next_steps(plan.plan_id, replace(current, tasks={t.id: t for t in tasks}))
    lines = [head, *_project_budgets(plan, current), *_table(rows, width, looks), *steps]
    return "\n".join(lines) + "\n"


def _project_budgets(plan: Plan, current: PlanState) -> list[str]:
    """A line per project with a budget: its tasks' spend against it (DESIGN §15)."""
    lines = []
    for name, project in plan.projects.items():
        budget = budget_json(project.budget)
        if not budget:
            continue
        spent: dict[str, object] = {}
        for t in current.tasks.values():
            if t.spend and t.id in plan.tasks and plan.tasks[t.id].project == name:
                spent = add_spend(spent, t.spend)
        lines.append(f"  project {name}: budget {spend_cell(spent, budget)}")
    return lines


def task_usage(stamp: Stamp | None) -> dict[str, float]:
    """Cost (USD) and tokens (input + output) the agent reported for the task's last attempt."""
    return usage_figures(stamp.usage if stamp else None)


def usage_figures(usage: object) -> dict[str, float]:
    """Cost (USD) and tokens (input + output) in an agent's usage report."""
    if not isinstance(usage, Mapping):
        return {}
    found: dict[str, float] = {}
    cost = usage.get("cost_usd")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        found["cost_usd"] = float(cost)
    tokens = [usage.get(k) for k in ("input_tokens", "output_tokens")]
    counted = [n for n in tokens if isinstance(n, int) and not isinstance(n, bool)]
    if counted:
        found["tokens"] = float(sum(counted))
    return found


def _total(usages: object) -> dict[str, float]:
    total: dict[str, float] = {}
    for usage in usages:  # type: ignore[attr-defined]
        for key, value in usage.items():
            total[key] = total.get(key, 0.0) + value
    return total


def _usage_cells(usage: Mapping[str, float]) -> tuple[str, str]:
    cost = f"${usage['cost_usd']:.2f}" if "cost_usd" in usage else ""
    tokens = f"{int(usage['tokens']):,}" if "tokens" in usage else ""
    return cost, tokens


def usage_text(total: Mapping[str, float]) -> str:
    """`$1.20 spent, 35,000 tokens`."""
    cost, tokens = _usage_cells(total)
    parts = [f"{cost} spent" if cost else "", f"{tokens} tokens" if tokens else ""]
    return ", ".join(p for p in parts if p)


def effective_state(plan: Plan, state: PlanState | None, stamps: Mapping[str, Stamp]) -> PlanState:
    """The state with each task that has a stamp and no newer record shown as DONE."""
    base = reconcile(plan, state, state.updated_at if state else "")
    tasks = {tid: _with_stamp(r, stamps.get(tid)) for tid, r in base.tasks.items()}
    return replace(base, tasks=tasks)


def _with_stamp(record: TaskRecord, stamp: Stamp | None) -> TaskRecord:
    if stamp is None or record.status is Status.DONE or not _stamp_is_newer(stamp, record):
        return record
    return replace(
        record,
        status=Status.DONE,
        summary=stamp.summary,
        finished_at=stamp.finished_at,
        attempt=stamp.attempt if stamp.attempt is not None else record.attempt,
        terminal_id=stamp.terminal_id or record.terminal_id,
        duration=_number(stamp.duration_seconds),
    )


def _stamp_is_newer(stamp: Stamp, record: TaskRecord) -> bool:
    if record.status is Status.PENDING:
        return True
    stamped = parse_time(stamp.finished_at)
    seen = [parse_time(t) for t in (record.started_at, record.finished_at)]
    latest = max((t for t in seen if t is not None), default=None)
    return stamped is not None and (latest is None or stamped >= latest)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _running(state: PlanState) -> bool:
    return bool(state.run.started_at) and not state.run.ended_at


def _row(
    plan_id: str, task: TaskRecord, state: PlanState, root: Path | None, listed: bool = False
) -> tuple[str, ...]:
    attempt = str(task.attempt) if task.attempt else ""
    if attempt and listed and task.agent:  # which agent of its fallback list ran it
        attempt += f" {task.agent}"
    if attempt and task.host not in ("", executorregistry.HERE):  # e.g. a dask worker's address
        attempt += f" on {task.host}"
    log = relative_path(task.log, (root, root.resolve())) if task.log and root else task.log
    return (
        f"{plan_id}:{task.id}",
        status_label(task),
        flat_line(task.project),
        attempt,
        format_duration(_duration(task)),
        log,
        flat_line(last_line(task, state)),
    )


def status_label(task: TaskRecord) -> str:
    """The STATE cell: `ANSWERED` for a question answered but not yet resumed."""
    return look_of(task).word if shown_of(task) is Shown.ANSWERED else state_label(task)


def task_elapsed(task: TaskRecord) -> float | None:
    """Seconds the task's attempts ran (not time queued), the running one's so far included."""
    seconds = _duration(task)
    return None if seconds is None else round(seconds, 3)


def _duration(task: TaskRecord) -> float | None:
    """The running time of its attempts: ended ones, plus the running one so far."""
    if task.status is not Status.IN_PROGRESS:
        return task.duration if task.duration is not None else (task.worked or None)
    started = parse_time(task.started_at)
    now = datetime.now(timezone.utc)
    return task.worked + (now - started).total_seconds() if started else None


def format_duration(seconds: float | None) -> str:
    """`45s`, `3m05s`, `1h02m`; empty when unknown."""
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def last_line(task: TaskRecord, state: PlanState) -> str:
    """The one line that says most about the task now."""
    if task.status is Status.QUESTION and task.questions:
        last = task.questions[-1]
        if last.answer is not None:
            return f"answered: {last.answer} — run `doit` to resume"
        return f"? {last.question}"
    if task.status is Status.SKIPPED:
        return f"skipped: {skip_reason(task, state)}"
    if task.status is Status.PENDING:
        blocked = unfinished_deps(task, state)
        if task.held:
            return f"held: {task.pending_reason}"
        if task.pending_reason:
            return f"would run: {task.pending_reason}"
        return f"blocked by {', '.join(blocked)}" if blocked else ""
    texts = {Status.DONE: task.summary, Status.ERROR: task.error, Status.APPROVAL: task.summary}
    return texts.get(task.status, task.last_update)


def _table(rows: list[tuple[str, ...]], width: int | None, looks: list[Look | None]) -> list[str]:
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    room = _last_width(sum(widths) + 2 * len(widths), width)
    lines = []
    for n, row in enumerate(rows):
        cells = [_pad(cell, w) for cell, w in zip(row, widths, strict=False)]
        look = looks[n] if n < len(looks) else None
        if look is not None:
            cells[1] = painted(cells[1], look)
        lines.append("  ".join([*cells, _trim(row[-1], room)]).rstrip())
    return lines


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal: wide (CJK) characters take two, combining none."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def wants_color(stream: object) -> bool:
    """Colour only on a terminal, and never with NO_COLOR or TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def _last_width(used: int, width: int | None) -> int:
    columns = width if width is not None else shutil.get_terminal_size((0, 0)).columns
    return max(20, columns - used) if columns > 0 else LAST_WIDTH_OFF_TTY


def _trim(text: str, room: int) -> str:
    if display_width(text) <= room:
        return text
    while display_width(text) > room - 1:
        text = text[: max(0, min(len(text) - 1, room - 1))]
    return text + "…"


def next_steps(plan_id: str, state: PlanState) -> list[str]:
    """What the user can do about waiting, failed and skipped tasks."""
    steps = [next_step(plan_id, t, state) for t in state.tasks.values()]
    wanted = [f"  {step}" for step in steps if step]
    return ["", "next steps:", *wanted] if wanted else []
