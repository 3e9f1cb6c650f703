"""`doit --dry-run` (as `make -n`): what a run would dispatch, in order, and why; runs nothing."""

from __future__ import annotations

from typing import IO, Any

from orchlib.checkout import Checkout
from orchlib.doitedge.loader import Pruning, orch_meta
from orchlib.state import uptodate


def dry_run(
    co: Checkout, chosen: list[Any], out: IO[str], pruning: Pruning, always: bool = False
) -> int:
    """Print one line per task the run would dispatch (dependency order), then a count."""
    verdicts = {
        pid: pruning.verdicts.get(pid) or uptodate.verdicts(co.orch_dir, p, co.specs)
        for pid, p in co.plans.items()
    }
    states = _states(co)
    rows = []
    for task in chosen:
        meta = orch_meta(task)
        assert meta is not None
        reason = verdicts[meta.plan].get(meta.task)
        if reason is None and always:
            reason = "--always"
        if reason is not None:
            rows.append((int(meta.phase), meta.plan, int(meta.index), task.name, reason))
    rows.sort(key=lambda row: (row[1], row[0], row[2]))
    width = max((len(row[3]) for row in rows), default=0)
    behind: dict[str, str] = {}  # a task -> the waiting task it is behind
    runs = 0
    for _, plan_id, _, name, reason in rows:
        spend = _spend(co, states, plan_id, name.split(":", 1)[1])
        word, note = "would run", ""
        if what := _waits_for(states, name):  # a run reports it again, it does not start it
            word, note, behind[name] = "waits", f" (for {what}: not dispatched)", name
        elif blocker := _blocked(co, plan_id, name, behind):
            word, note, behind[name] = "skipped", f" (behind {blocker}, which waits)", blocker
        else:
            runs += 1
        out.write(f"{word.ljust(9)}  {name.ljust(width)}  [{spend}]  {reason}{note}\n")
    done = sum(len(ids) for ids in pruning.up_to_date.values())
    held = f", {len(behind)} waiting or behind one" if behind else ""
    out.write(f"orchlib: dry run: {runs} would run{held}, {done} up to date; nothing was run\n")
    return 0


def _blocked(co: Checkout, plan_id: str, name: str, behind: dict[str, str]) -> str:
    """The waiting task a dependency of `name` waits for or is behind ("" for none)."""
    task = co.plans[plan_id].tasks[name.split(":", 1)[1]]
    return next((behind[d] for d in (f"{plan_id}:{t}" for t in task.depends_on) if d in behind), "")


def _states(co: Checkout) -> dict[str, Any]:
    """Each plan's state on disk (None when it never ran)."""
    from orchlib import state

    return {plan_id: state.load(co.plan_dir(plan_id)) for plan_id in co.plans}


def _waits_for(states: dict[str, Any], name: str) -> str:
    """What a task waits for ("an answer", "approval"; "" for nothing): a run reports it
    again, it does not start it."""
    from orchlib import state
    from orchlib.state.model import Status

    plan_id, task_id = name.split(":", 1)
    current = states.get(plan_id)
    if current is None:
        return ""
    if state.has_open_question(current, task_id):
        return "an answer"
    record = current.tasks.get(task_id)
    return "approval" if record is not None and record.status is Status.APPROVAL else ""


def _spend(co: Checkout, states: dict[str, Any], plan_id: str, task_id: str) -> str:
    """`agent claude, spent $0.10, budget $5.00`: who runs it, its spend so far, its budget."""
    from orchlib.state.reconcile import budget_json
    from orchlib.state.spendtext import budget_text, spend_cell

    task = co.plans[plan_id].tasks[task_id]
    agents = (
        "shell"
        if task.command is not None
        else "/".join(s.name for s in task.agents or (task.agent,))
    )
    current = states.get(plan_id)
    record = current.tasks.get(task_id) if current is not None else None
    spent = spend_cell(record.spend if record is not None else {}, {}) or "$0.00"
    budget = budget_text(budget_json(task.budget))
    return f"agent {agents}, spent {spent}, budget {budget}"
