"""A plan's state records brought in line with the plan (tasks added, plan facts refreshed)
and a task's record reset for a new run (pure functions, no I/O)."""

from __future__ import annotations

from orchlib.plan import Budget, Plan, Task
from orchlib.records import replace
from orchlib.state.model import (
    PlanState,
    PlanStatus,
    ProjectRecord,
    RunInfo,
    Status,
    TaskRecord,
    has_open,
    plan_status,
)


def reconcile(plan: Plan, old: PlanState | None, now: str) -> PlanState:
    """State for `plan`: known tasks keep their records (plan facts refreshed), new ones PENDING."""
    old = old if old is not None and old.plan_id == plan.plan_id else None
    previous = old.tasks if old is not None else {}
    phase_of = {tid: n for n, phase in enumerate(plan.phases, start=1) for tid in phase}
    tasks = {
        t.id: _refresh(previous.get(t.id), t, phase_of.get(t.id, 0)) for t in plan.tasks.values()
    }
    projects = tuple(ProjectRecord(p.name, p.path, budget=budget_json(p.budget))
                     for p in plan.projects.values())  # fmt: skip
    created = plan.created_at or (old.created if old is not None and old.created else now)
    run = old.run if old is not None else RunInfo()
    pending = PlanStatus.PENDING
    state = PlanState(plan.plan_id, plan.summary, created, pending, run, now, plan.phases)
    state = replace(state, projects=projects, tasks=tasks, budget=budget_json(plan.budget))
    return replace(state, status=plan_status(state))


def _refresh(record: TaskRecord | None, task: Task, phase: int) -> TaskRecord:
    return replace(
        record or TaskRecord(task.id),
        title=task.title,
        project=task.project,
        depends_on=task.depends_on,
        phase=phase,
        budget=budget_json(task.budget),
    )


def budget_json(budget: Budget) -> dict[str, object]:
    """state.json's `budget`: the caps set (DESIGN §15)."""
    caps = {"usd": budget.usd, "tokens": budget.tokens}
    return {key: value for key, value in caps.items() if value is not None}


def reset_for_run(record: TaskRecord) -> TaskRecord:
    """A task a new run may dispatch: back to PENDING, except DONE, a possibly live
    IN_PROGRESS attempt (kept until the runner adopts or replaces it), an open QUESTION and
    a task waiting for approval."""
    if record.status in (Status.DONE, Status.IN_PROGRESS, Status.APPROVAL) or has_open(record):
        return record
    return replace(
        record,
        status=Status.PENDING,
        percent=0,
        last_update="",
        finished_at="",
        duration=None,
        summary="",
        error="",
        skipped_because=(),
        pid=None,
        pgid=None,
        pid_start="",
        ref={},
        adopted=False,
        paused_until="",
    )
