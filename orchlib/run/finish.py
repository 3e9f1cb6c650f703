"""A reported DONE, finished: the checks where the attempt worked, an isolated task's merge,
then the stamp and `TaskDone`."""

from __future__ import annotations

import time

from orchlib.events import AttemptRan, TaskApproval, TaskDone, now_iso
from orchlib.records import replace
from orchlib.run.checks import Checked, run_checks
from orchlib.run.taskrun import Attempted, TaskResult, TaskRun
from orchlib.state import fingerprints, stamps
from orchlib.state.model import Status


def check(tr: TaskRun, done: Attempted) -> Checked:
    """The checks of a DONE; what failed quotes a verify's or git's output, so it is
    kept free of secrets as an agent's own words are (DESIGN §13)."""
    checked = _run_checks(tr, done)
    if checked.problem is None:
        return checked
    return replace(checked, problem=tr.co.secrets.redact(checked.problem))


def _run_checks(tr: TaskRun, done: Attempted) -> Checked:
    """The checks of a DONE where the attempt worked; isolated, then its merge."""
    if tr.tree is not None and not tr.tree.path.is_dir():
        return Checked(f"its worktree {tr.tree.path} is gone; the next attempt makes another")
    checked = run_checks(tr.ctx, tr.plan, tr.task, done.number, tr.workspace, done.host)
    if checked.problem is None and tr.task.review is not None:  # before any merge
        checked = _reviewed(tr, done, checked)
    if checked.problem is not None or tr.tree is None or tr.task.limits.approve:
        return checked  # a task a person approves is merged when approved
    if not tr.lands:
        return checked  # a racer: merged only if it wins the race
    landed = tr.tree.land(done.number, done.outcome.text)
    return replace(checked, problem=landed.problem, merge=landed.merge)


def _reviewed(tr: TaskRun, done: Attempted, checked: Checked) -> Checked:
    """The reviewer's verdict on a checked DONE (DESIGN §16)."""
    from orchlib.run.review import Reviewer, recovered_baseline  # only reviewed tasks

    base = tr.bases.get(done.number) or recovered_baseline(
        tr.co, tr.plan.plan_id, tr.task.id, done.number
    )
    reviewer = Reviewer(tr.ctx, tr.plan, tr.task, tr.workspace, done.number)
    verdict = reviewer.run(done.outcome.text, base)
    return replace(checked, problem=verdict.problem, review=verdict.stamp, final=verdict.final,
                   over_budget=verdict.over_budget)  # fmt: skip


def count_work(tr: TaskRun, done: Attempted) -> None:
    """Add the attempt's running time, from its process's start, to the task's elapsed."""
    seconds = max(0.0, time.monotonic() - done.started)
    tr.worked += seconds
    tr.publish(AttemptRan(tr.plan.plan_id, tr.task.id, done.number, round(seconds, 3)))


def stamp(tr: TaskRun, done: Attempted, checked: Checked) -> TaskResult:
    """Write the stamp of a checked DONE (or set it aside for a person's approval)."""
    outcome = done.outcome
    record = _stamp_of(tr, done, checked)
    if tr.task.limits.approve:
        return _await_approval(tr, done, record)
    pid, tid = tr.plan.plan_id, tr.task.id
    stamps.write(tr.co.stamp_path(pid, tid), record)
    if tr.tree is not None:  # merged and stamped: the worktree has served
        tr.tree.remove(done.number)
    if tr.raced:  # the winner's record (before its merge) has served too
        tr.co.layout.race_record(pid, tid).unlink(missing_ok=True)
    tr.publish(TaskDone(pid, tid, outcome.text, done.number, done.terminal_id,
                        record.duration_seconds or 0.0, outcome.usage))  # fmt: skip
    return TaskResult(Status.DONE, outcome.text)


def _await_approval(tr: TaskRun, done: Attempted, record: stamps.Stamp) -> TaskResult:
    """Checked, not stamped: the stamp waits beside its place for `doit approve` (§16)."""
    stamps.write(tr.co.layout.approval_stamp(tr.plan.plan_id, tr.task.id), record)
    summary = done.outcome.text
    tr.publish(TaskApproval(tr.plan.plan_id, tr.task.id, summary, done.number,
                            done.terminal_id, record.duration_seconds))  # fmt: skip
    return TaskResult(Status.APPROVAL, summary)


def _stamp_of(tr: TaskRun, done: Attempted, checked: Checked) -> stamps.Stamp:
    outcome, task = done.outcome, tr.task
    return stamps.Stamp(
        task_id=task.id,
        plan_id=tr.plan.plan_id,
        project=task.project,
        title=task.title,
        summary=outcome.text,
        finished_at=now_iso(),
        attempt=done.number,
        terminal_id=done.terminal_id,
        spec_hash=tr.co.specs.of(tr.plan, task),
        duration_seconds=round(tr.worked, 3),
        agent=str(tr.raced.get("winner", task.agent.name)),
        inputs=fingerprints.fingerprint_inputs(tr.project, task),
        verify=checked.verify if task.verify is not None else None,
        merge=checked.merge or None,
        session_id=outcome.session_id or None,
        usage=outcome.usage or None,
        review=checked.review or None,
        race=tr.raced or None,
    )
