"""The `doit status` table: every task's state, and what to do next."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone

from .plan import Plan
from .stateevents import parse_time, reconcile
from .statemodel import PlanState, Status, TaskRecord, aggregate_status
from .staterender import one_line, skip_reason, state_label, unfinished_deps

Stamp = Mapping[str, object]
HEADER = ("TASK", "STATE", "PROJECT", "ATTEMPT", "DURATION", "LAST")
LAST_WIDTH_OFF_TTY = 60


def render_status(
    plan: Plan,
    state: PlanState | None,
    stamps: Mapping[str, Stamp],
    width: int | None = None,
) -> str:
    """The status of one plan: a header line, one row per task, then the next steps."""
    current = effective_state(plan, state, stamps)
    tasks = list(current.tasks.values())
    rows = [HEADER, *(_row(plan.plan_id, t, current) for t in tasks)]
    done = sum(t.status is Status.DONE for t in tasks)
    status = current.status if _running(current) else aggregate_status(t.status for t in tasks)
    head = f"{plan.plan_id}: {status}, {done}/{len(tasks)} done — {one_line(plan.summary)}"
    lines = [head.rstrip(" —"), *_table(rows, width), *next_steps(plan.plan_id, current)]
    return "\n".join(lines) + "\n"


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
        summary=str(stamp.get("summary", "")),
        finished_at=str(stamp.get("finishedAt", "")),
        attempt=_int(stamp.get("attempt"), record.attempt),
        terminal_id=str(stamp.get("terminalId", "") or record.terminal_id),
        duration=_number(stamp.get("durationSeconds")),
    )


def _stamp_is_newer(stamp: Stamp, record: TaskRecord) -> bool:
    if record.status is Status.PENDING:
        return True
    stamped = parse_time(str(stamp.get("finishedAt", "")))
    seen = [parse_time(t) for t in (record.started_at, record.finished_at)]
    latest = max((t for t in seen if t is not None), default=None)
    return stamped is not None and (latest is None or stamped >= latest)


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _running(state: PlanState) -> bool:
    return bool(state.run.started_at) and not state.run.ended_at


def _row(plan_id: str, task: TaskRecord, state: PlanState) -> tuple[str, ...]:
    attempt = str(task.attempt) if task.attempt else ""
    return (
        f"{plan_id}:{task.id}",
        state_label(task),
        task.project,
        attempt,
        format_duration(_duration(task)),
        one_line(last_line(task, state)),
    )


def _duration(task: TaskRecord) -> float | None:
    if task.status is not Status.IN_PROGRESS:
        return task.duration
    started = parse_time(task.started_at)
    return (datetime.now(timezone.utc) - started).total_seconds() if started else None


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
        return f"? {task.questions[-1].question}"
    if task.status is Status.SKIPPED:
        return f"skipped: {skip_reason(task, state)}"
    if task.status is Status.PENDING:
        blocked = unfinished_deps(task, state)
        return f"blocked by {', '.join(blocked)}" if blocked else ""
    texts = {Status.DONE: task.summary, Status.ERROR: task.error}
    return texts.get(task.status, task.last_update)


def _table(rows: list[tuple[str, ...]], width: int | None) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    room = _last_width(sum(widths) + 2 * len(widths), width)
    lines = []
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, _trim(row[-1], room)]).rstrip())
    return lines


def _last_width(used: int, width: int | None) -> int:
    columns = width if width is not None else shutil.get_terminal_size((0, 0)).columns
    return max(20, columns - used) if columns > 0 else LAST_WIDTH_OFF_TTY


def _trim(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1] + "…"


def next_steps(plan_id: str, state: PlanState) -> list[str]:
    """What the user can do about waiting, failed and skipped tasks."""
    steps = [_step(f"{plan_id}:{t.id}", t, state) for t in state.tasks.values()]
    wanted = [step for step in steps if step]
    return ["", "next steps:", *wanted] if wanted else []


def _step(name: str, task: TaskRecord, state: PlanState) -> str:
    if task.status is Status.QUESTION:
        return f'  {name} waits for an answer: doit answer {name} "<your answer>"'
    if task.status is Status.ERROR and task.error.startswith("interrupted"):
        return f"  {name} was interrupted: re-run `doit` to resume"
    if task.status is Status.ERROR:
        return f"  {name} failed: fix the cause and re-run `doit` (`doit forget {name}` resets it)"
    if task.status is Status.SKIPPED:
        return f"  {name} skipped: {skip_reason(task, state)}"
    if task.status is Status.PAUSED:
        return f"  {name} waits for its agent's usage limit: {state_label(task)}, then `doit`"
    return ""
