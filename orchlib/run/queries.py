"""What `doit status`, `doit answer` and the MCP server's tools share: the plans and tasks
a list of names wants, their state made to agree with the stamps, the status document, and
storing an answer."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orchlib.checkout import Checkout
from orchlib.errors import ConfigError
from orchlib.plan import Plan
from orchlib.state import runlock, statesync, uptodate
from orchlib.state.templates import template_dirs

if TYPE_CHECKING:
    from orchlib.state import PlanState

    View = tuple[Plan, PlanState | None, dict[str, Any], set[str] | None]


def status_json(co: Checkout, args: list[str]) -> dict[str, Any]:
    """What `doit status --json ARGS` prints (ConfigError when an argument names nothing)."""
    wanted = wanted_by(co, args)
    if isinstance(wanted, str):
        raise ConfigError(wanted)
    return status_doc(co, wanted)


def status_doc(co: Checkout, wanted: dict[str, set[str] | None]) -> dict[str, Any]:
    """The plans and tasks in `wanted` as one JSON object (`doit status --json`)."""
    from orchlib.state import statusjson

    docs = [statusjson.plan_doc(plan, current, stamps, co.root, only)
            for plan, current, stamps, only in views(co, wanted)]  # fmt: skip
    return statusjson.combine(docs)


def views(co: Checkout, wanted: dict[str, set[str] | None]) -> Iterator[View]:
    """Each plan wanted with its state and done stamps, the state first made to agree with
    the stamps when no run is going."""
    from orchlib import state

    running = runlock.is_running(co.orch_dir)
    for plan_id, only in wanted.items():
        plan = co.plans[plan_id]
        verdicts = uptodate.verdicts(co.orch_dir, plan, co.specs)
        if not running:
            statesync.sync(co.orch_dir, plan, verdicts, template_dirs(co.root))
        stamps = statesync.done_stamps(co.orch_dir, plan, verdicts)
        yield plan, state.load(co.plan_dir(plan_id)), stamps, only


def wanted_by(co: Checkout, args: list[str]) -> dict[str, set[str] | None] | str:
    """Plan id -> the task ids to show (None: all); a message when an argument matches nothing."""
    if not args:
        return {plan_id: None for plan_id in co.plans}
    wanted: dict[str, set[str] | None] = {}
    for arg in args:
        found = False
        for plan_id, plan in co.plans.items():
            if fnmatch.fnmatchcase(plan_id, arg):
                wanted[plan_id], found = None, True
                continue
            ids = {t for t in plan.tasks if fnmatch.fnmatchcase(f"{plan_id}:{t}", arg)}
            if ids:
                found = True
                if wanted.get(plan_id, set()) is not None:
                    wanted[plan_id] = (wanted.get(plan_id) or set()) | ids
        if not found:
            known = f"known plans: {', '.join(co.plans)}" if co.plans else "plans/ holds no plan"
            return f"status: {arg!r} names no plan or task ({known})"
    return wanted


def answer_task(co: Checkout, name: str, text: str) -> str:
    """Store `text` as the answer to the question of task `name` (PLAN:TASK); the message."""
    plan_id, _, task_id = name.partition(":")
    plan: Plan | None = co.plans.get(plan_id)
    if plan is None or task_id not in plan.tasks:
        raise ConfigError(f"answer: unknown task {name!r} (doit list --all shows the tasks)")
    from orchlib import state

    return state.answer(co.plan_dir(plan_id), plan, task_id, text, template_dirs(co.root))
