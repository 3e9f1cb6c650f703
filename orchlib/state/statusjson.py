"""`doit status --json`: the same facts as the table, as one JSON object."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchlib.plan import Plan
from orchlib.state.model import PlanState, Status, aggregate_status
from orchlib.state.stamps import Stamp
from orchlib.state.table import (
    effective_state,
    last_line,
    task_elapsed,
    task_usage,
)
from orchlib.state.words import look_of


def plan_doc(
    plan: Plan,
    state: PlanState | None,
    stamps: Mapping[str, Stamp],
    root: Path,
    only: set[str] | None,
) -> dict[str, Any]:
    """One plan: its status, counts, totals and the rows of the tasks shown."""
    current = effective_state(plan, state, stamps)
    every = list(current.tasks.values())
    running = bool(current.run.started_at) and not current.run.ended_at
    tasks = []
    for t in every:
        if only is not None and t.id not in only:
            continue
        usage = task_usage(stamps.get(t.id))
        tasks.append({
            "id": t.id,
            "name": f"{plan.plan_id}:{t.id}",
            "state": look_of(t).word,
            "percent": t.percent,
            "project": t.project,
            "attempt": t.attempt,
            "elapsedSeconds": task_elapsed(t),
            "costUsd": usage.get("cost_usd"),
            "tokens": int(usage["tokens"]) if "tokens" in usage else None,
            "log": t.log,
            "last": last_line(t, current),
            "reason": t.pending_reason,
        })  # fmt: skip
    return {
        "planId": plan.plan_id,
        "status": (current.status if running else aggregate_status(t.status for t in every)).value,
        "done": sum(t.status is Status.DONE for t in every),
        "total": len(every),
        "tasks": tasks,
        "totals": _totals(tasks),
    }


def _totals(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    costs = [t["costUsd"] for t in tasks if t["costUsd"] is not None]
    tokens = [t["tokens"] for t in tasks if t["tokens"] is not None]
    return {"costUsd": sum(costs) if costs else None, "tokens": sum(tokens) if tokens else None}


def combine(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every plan shown, and the totals over them."""
    rows = [{"costUsd": d["totals"]["costUsd"], "tokens": d["totals"]["tokens"]} for d in docs]
    return {"plans": docs, "totals": _totals(rows)}
