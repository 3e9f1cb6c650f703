"""A draft is checked exactly as `doit` checks the plans of the checkout.

`load_plan` is the validator `doit` runs on every plan file; on top of it come the checks
`doit` makes across files (a plan id used by another plan) and the draft's own promise
(`--plan-id`). Every problem is one located line, `file:line:col: key: message`, which is
what the agent gets back in the next round.
"""

from __future__ import annotations

from pathlib import Path

from orchlib.draft.prompting import existing_plans
from orchlib.errors import PlanError
from orchlib.plan import Plan
from orchlib.plan.file import load_plan, locate


def check(path: Path, checkout: Path, plan_id: str) -> tuple[Plan | None, list[str]]:
    """The plan in `path` and no problems, or None and every problem found.

    The plan's own target, `plans/<planId>.yaml`, does not count as a clash: replacing it
    is the caller's decision (`--force`).
    """
    try:
        plan = load_plan(path, checkout)
    except PlanError as exc:
        return None, exc.lines()
    problems = []
    where = locate(path, checkout, ["planId"])
    if plan_id and plan.plan_id != plan_id:
        problems.append(f"{where}: planId: must be {plan_id!r} (doit draft --plan-id {plan_id})")
    for other in existing_plans(checkout):
        mine = target(checkout, plan.plan_id)
        if other.plan_id == plan.plan_id and (checkout / other.file).resolve() != mine.resolve():
            problems.append(
                f"{where}: planId: plan id {plan.plan_id!r} is already used by {other.file}; "
                "choose another"
            )
    return (None, problems) if problems else (plan, [])


def target(checkout: Path, plan_id: str) -> Path:
    """Where a plan with this id is written: `plans/<planId>.yaml`."""
    return checkout / "plans" / f"{plan_id}.yaml"
