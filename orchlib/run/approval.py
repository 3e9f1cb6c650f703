"""Approval by a person (DESIGN §16): `approve` and `reject` a task waiting in APPROVAL.

A task with `approve: true` whose checks passed is not stamped: its stamp waits beside its
place (`<taskId>.json.approval`) and an isolated task's worktree is kept, unmerged. These
functions are what `doit approve` / `doit reject` (and any other front end) call; each
returns the line to show, or raises `ConfigError` with one line saying why not.

Both hold the checkout's run lock: a run writes the state and merges into the projects, so
a decision waits until no run is going (it is refused at once, naming the run's pid).
"""

from __future__ import annotations

from collections.abc import Callable

from orchlib import state
from orchlib.checkout import Checkout
from orchlib.errors import ConfigError
from orchlib.events import now_iso
from orchlib.plan import Plan, Task
from orchlib.records import replace
from orchlib.run.git import Repos
from orchlib.run.worktrees import TaskTree
from orchlib.state import fingerprints, stamps
from orchlib.state.files import edit
from orchlib.state.model import PlanState, Status, plan_status
from orchlib.state.runlock import run_lock
from orchlib.state.stamps import Stamp
from orchlib.state.templates import template_dirs


def approve(co: Checkout, name: str) -> str:
    """Stamp the task (merging its worktree first): it is done, its dependents may run."""
    plan, task = _task(co, name)
    with run_lock(co.orch_dir, "approve"):
        _waiting(co, plan, task)
        pending = co.layout.approval_stamp(plan.plan_id, task.id)
        stamp = stamps.read(pending, task.id)
        if stamp is None:
            raise ConfigError(f"{name}: its checked work is gone ({pending} is missing or "
                              f'damaged); `doit reject {name} "..."` runs it again')  # fmt: skip
        # Each step is safe to repeat, in this order: killed after the merge, approving again
        # merges nothing new; after the stamp, the state files follow it (statesync) and the
        # next run's sweep removes the worktree.
        stamp = _land(co, plan, task, stamp)
        stamps.write(co.stamp_path(plan.plan_id, task.id), stamp)
        _edit(co, plan, lambda s: _approved(s, task.id, stamp))
        pending.unlink(missing_ok=True)
        if plan.projects[task.project].isolation:
            TaskTree(co, plan, task, Repos()).remove(stamp.attempt_number)
    merged = " (merged into the project)" if stamp.merge else ""
    return f"{name}: approved{merged}; run `doit` for the tasks that depend on it"


def reject(co: Checkout, name: str, text: str) -> str:
    """Unstamped, back to PENDING: the next `doit` runs it again with `text` as feedback,
    in its worktree if it has one (using no retry)."""
    plan, task = _task(co, name)
    if not text.strip():
        raise ConfigError(f'{name}: say what to change: doit reject {name} "what to change"')
    with run_lock(co.orch_dir, "reject"):
        _waiting(co, plan, task)
        co.layout.approval_stamp(plan.plan_id, task.id).unlink(missing_ok=True)
        tree = TaskTree(co, plan, task, Repos()) if plan.projects[task.project].isolation else None
        kept = str(tree.path.relative_to(co.root)) if tree and tree.path.is_dir() else ""
        _edit(co, plan, lambda s: _behind(_rejected(s, task.id, text, kept), task.id, name))
    if task.command is not None:  # a shell task has no prompt: the same command runs again
        return f"{name}: rejected; a shell task gets no feedback: `doit` runs its command again"
    return f"{name}: rejected; run `doit` to run it again with what to change"


def _task(co: Checkout, name: str) -> tuple[Plan, Task]:
    plan_id, _, task_id = name.partition(":")
    plan = co.plans.get(plan_id)
    if plan is None or task_id not in plan.tasks:
        raise ConfigError(f"unknown task {name!r} (doit list --all shows the tasks)")
    return plan, plan.tasks[task_id]


def _waiting(co: Checkout, plan: Plan, task: Task) -> None:
    current = state.load(co.plan_dir(plan.plan_id))
    record = current.tasks.get(task.id) if current is not None else None
    if record is None or record.status is not Status.APPROVAL:
        now = record.status.value if record is not None else "PENDING"
        raise ConfigError(f"{plan.plan_id}:{task.id} is not waiting for approval (it is {now})")


def _land(co: Checkout, plan: Plan, task: Task, stamp: Stamp) -> Stamp:
    """Merge an isolated task's worktree; the stamp with the merge and the inputs now."""
    project = plan.projects[task.project]
    merge: dict[str, str] | None = None
    if project.isolation:
        landed = TaskTree(co, plan, task, Repos()).land(stamp.attempt_number, stamp.summary)
        if landed.problem is not None:
            first = landed.problem.splitlines()[0]
            raise ConfigError(f"{plan.plan_id}:{task.id}: not approved: {first}")
        merge = landed.merge
    inputs = fingerprints.fingerprint_inputs(project, task)  # after the merge, as it ran
    return replace(stamp, finished_at=now_iso(), merge=merge, inputs=inputs)


def _edit(co: Checkout, plan: Plan, change: Callable[[PlanState], PlanState]) -> None:
    folder = co.plan_dir(plan.plan_id)

    def changed(current: PlanState) -> tuple[PlanState, str]:
        new = change(current)  # no run is going (the run lock is held): status from the tasks
        return replace(new, status=plan_status(new)), ""

    edit(folder, plan, template_dirs(co.root), changed)


def _approved(current: PlanState, task_id: str, stamp: Stamp) -> PlanState:
    record = replace(current.tasks[task_id], status=Status.DONE, percent=100,
                     summary=stamp.summary, finished_at=stamp.finished_at,
                     pending_reason="", continues_in="")  # fmt: skip
    return replace(current, tasks={**current.tasks, task_id: record})


def _rejected(current: PlanState, task_id: str, text: str, kept: str) -> PlanState:
    record = replace(current.tasks[task_id], status=Status.PENDING, percent=0, summary="",
                     finished_at="", duration=None, rejected=text,
                     continues_in=kept)  # fmt: skip
    return replace(current, tasks={**current.tasks, task_id: record})


def _behind(current: PlanState, task_id: str, name: str) -> PlanState:
    """Its dependents the run skipped (they waited on it) back to PENDING: nothing failed,
    so the plan reads as pending, not failed, until the next run."""
    tasks, behind, grew = dict(current.tasks), {task_id}, True
    while grew:  # to a fixed point: plan order need not put a dependency first
        grew = False
        for record in tasks.values():
            if record.status is Status.SKIPPED and behind.intersection(record.depends_on):
                behind.add(record.id)
                tasks[record.id] = replace(
                    record, status=Status.PENDING, skipped_because=(), finished_at="",
                    pending_reason=f"behind {name}, which was rejected",
                )  # fmt: skip
                grew = True
    return replace(current, tasks=tasks)
