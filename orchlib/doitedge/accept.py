"""`doit accept PLAN:TASK` (or `PLAN`): take the current spec as done without re-running.

For an edit that changes no work (a typo in a title or description), re-running an agent
for an hour is waste. Accepting rewrites the stamp's spec hash to the current one (and
its input fingerprints), so the task is up to date again. It is refused when the task has
no stamp or a declared output is missing: there is nothing done to accept.
"""

from __future__ import annotations

from typing import Any

from orchlib.checkout import Checkout
from orchlib.doitedge.cmdutil import OneLineErrors, checkout_here, fail, report
from orchlib.doitedge.doitapi import Command
from orchlib.errors import ConfigError, OrchError
from orchlib.plan import Plan
from orchlib.records import replace
from orchlib.state import fingerprints, stamps, statesync
from orchlib.state.runlock import run_lock
from orchlib.state.templates import template_dirs


class Accept(OneLineErrors, Command):  # type: ignore[misc]
    """doit accept PLAN:TASK ...: the tasks' current spec counts as done."""

    name = "accept"
    doc_purpose = "take a task's edited spec as done without re-running it"
    doc_usage = "PLAN:TASK | PLAN ..."
    doc_description = (
        "Use it after an edit that changes no work (a typo in a title or description):\n"
        "the stamp gets the current spec hash, so `doit` does not redo the task. Do not use\n"
        "it when the edit asks for different work: `doit` should run the task again.\n"
        "Refused for a task without a stamp or with a declared output missing, and while\n"
        "a run is going."
    )
    cmd_options = ()

    def execute(self, params: Any, args: list[str]) -> int:
        """Rewrite the stamps of the tasks named."""
        if not args:
            return fail("accept: name the tasks: doit accept PLAN:TASK (or PLAN for all)")
        co = checkout_here()
        if isinstance(co, int):
            return co
        try:
            targets = [pair for arg in args for pair in _targets(co, arg)]
            with run_lock(co.orch_dir, "accept"):
                problems = [p for plan, task_id in targets if (p := check(co, plan, task_id))]
                if problems:  # all or nothing: every problem at once, no stamp touched
                    raise ConfigError("\n".join(problems))
                for plan, task_id in targets:
                    print(accept(co, plan, task_id))
                statesync.sync_all(
                    co.orch_dir, co.plans, co.specs, template_dirs(co.root), held=True
                )
        except OrchError as exc:
            return report(exc)
        return 0


def _targets(co: Checkout, arg: str) -> list[tuple[Plan, str]]:
    if arg in co.plans:
        plan = co.plans[arg]
        return [(plan, t) for t in plan.tasks if co.stamp(arg, t) is not None]
    plan_id, _, task_id = arg.partition(":")
    found = co.plans.get(plan_id)
    if found is None or task_id not in found.tasks:
        raise ConfigError(f"accept: unknown task {arg!r} (doit list --all shows the tasks)")
    return [(found, task_id)]


def check(co: Checkout, plan: Plan, task_id: str) -> str:
    """Why the task cannot be accepted (an `orchlib:` line), or "" when it can."""
    name = f"{plan.plan_id}:{task_id}"
    if co.stamp(plan.plan_id, task_id) is None:
        return f"orchlib: accept: {name} has no stamp: it never finished; run `doit`"
    task = plan.tasks[task_id]
    missing = fingerprints.missing_outputs(plan.projects[task.project], task)
    if missing:
        return f"orchlib: accept: {name}: output {missing[0]!r} is missing; run `doit` to redo it"
    return ""


def accept(co: Checkout, plan: Plan, task_id: str) -> str:
    """Give the task's stamp the current spec hash; returns what was done, in one line."""
    name = f"{plan.plan_id}:{task_id}"
    stamp = co.stamp(plan.plan_id, task_id)
    assert stamp is not None  # check() said so, under the run lock
    task = plan.tasks[task_id]
    project = plan.projects[task.project]
    spec = co.specs.of(plan, task)
    if stamp.spec_hash == spec and not fingerprints.changed_input(project, task, stamp.inputs):
        return f"{name}: already up to date"
    stamp = replace(stamp, spec_hash=spec, inputs=fingerprints.fingerprint_inputs(project, task))
    stamps.write(co.stamp_path(plan.plan_id, task_id), stamp)
    return f"{name}: accepted as done (the stamp now carries the current spec)"
