"""`doit --dry-run` (as `make -n`): what a run would dispatch, in order, and why; runs nothing."""

from __future__ import annotations

from typing import IO, Any

from orchlib.checkout import Checkout
from orchlib.doitedge.loader import orch_meta
from orchlib.run import uptodate


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
        reason = verdicts[meta.plan].get(meta.task)
        if reason is None and always:
            reason = "--always"
        if reason is not None:
            rows.append((int(meta.phase), meta.plan, int(meta.index), task.name, reason))
    rows.sort(key=lambda row: (row[1], row[0], row[2]))
    width = max((len(row[3]) for row in rows), default=0)
    for _, _, _, name, reason in rows:
        note = f" (waits for {waiting[name]}: not dispatched)" if name in waiting else ""
        out.write(f"would run  {name.ljust(width)}  {reason}{note}\n")
    done = sum(len(ids) for ids in co.up_to_date.values())
    out.write(f"orchlib: dry run: {len(rows)} would run, {done} up to date; nothing was run\n")
    return 0


def _waiting(co: Checkout) -> dict[str, str]:
    """Tasks with an unanswered question or waiting for approval, and what they wait for: a
    run reports them again, it does not start them."""
    from orchlib import state
    from orchlib.state.model import Status

    found: dict[str, str] = {}
    for plan_id in co.plans:
        current = state.load(co.plan_dir(plan_id))
        if current is None:
            continue
        for t, record in current.tasks.items():
            if state.has_open_question(current, t):
                found[f"{plan_id}:{t}"] = "an answer"
            elif record.status is Status.APPROVAL:
                found[f"{plan_id}:{t}"] = "approval"
    return found
