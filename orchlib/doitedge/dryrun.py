"""`doit --dry-run` (as `make -n`): what a run would dispatch, in order, and why; runs nothing."""

from __future__ import annotations

from typing import IO, Any

from orchlib.checkout import Checkout
from orchlib.doitedge import uptodate
from orchlib.doitedge.loader import orch_meta


def dry_run(co: Checkout, chosen: list[Any], out: IO[str], always: bool = False) -> int:
    """Print one line per task the run would dispatch (dependency order), then a count."""
    verdicts = {
        pid: co.verdicts.get(pid) or uptodate.verdicts(co, p) for pid, p in co.plans.items()
    }
    waiting = _waiting(co)
    rows = []
    for task in chosen:
        meta = orch_meta(task)
        assert meta is not None
        reason = verdicts[meta["plan"]].get(meta["task"])
        if reason is None and always:
            reason = "--always"
        if reason is not None:
            rows.append((int(meta["phase"]), meta["plan"], int(meta["index"]), task.name, reason))
    rows.sort(key=lambda row: (row[1], row[0], row[2]))
    width = max((len(row[3]) for row in rows), default=0)
    for _, _, _, name, reason in rows:
        note = " (waits for an answer: not dispatched)" if name in waiting else ""
        out.write(f"would run  {name.ljust(width)}  {reason}{note}\n")
    done = sum(len(ids) for ids in co.up_to_date.values())
    out.write(f"orchlib: dry run: {len(rows)} would run, {done} up to date; nothing was run\n")
    return 0


def _waiting(co: Checkout) -> set[str]:
    """Tasks with an unanswered question: a run reports them again, it does not start them."""
    from orchlib import state

    found: set[str] = set()
    for plan_id in co.plans:
        current = state.load(co.plan_dir(plan_id))
        if current is not None:
            found.update(
                f"{plan_id}:{t}" for t in current.tasks if state.has_open_question(current, t)
            )
    return found
