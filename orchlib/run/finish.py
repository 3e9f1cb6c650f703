"""A reported DONE, finished: the checks where the attempt worked, an isolated task's merge,
then the stamp and `TaskDone`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orchlib.checkout import Checkout
from orchlib.events import TaskApproval, TaskDone, now_iso
from orchlib.plan import Plan, Project, Task
from orchlib.run.attempt import Outcome
from orchlib.run.changes import Baseline
from orchlib.run.checks import Checked, run_checks
from orchlib.run.context import RunContext
from orchlib.run.review import Reviewer, recovered_baseline
from orchlib.run.worktrees import TaskTree
from orchlib.state import fingerprints, stamps
from orchlib.state.model import Status


@dataclass(frozen=True)
class TaskResult:
    """How a task ended in this run: DONE, ERROR (`interrupted` when the run was stopped),
    QUESTION (waiting for an answer) or APPROVAL (waiting for a person's approval).

    PAUSED: not ended; its agent's usage limit holds it, and `run` continues it later.
    """

    status: Status
    text: str
    interrupted: bool = False


@dataclass(frozen=True)
class Attempted:
    """A finished attempt: its number, terminal id, outcome and when its process started
    (monotonic; not when it was queued)."""

    number: int
    terminal_id: str
    outcome: Outcome
    started: float
    host: str = ""  # where it ran ("local", or a dask worker): its verify runs there too


class Finishing:
    """The part of a task's run that checks a DONE and writes the stamp."""

    ctx: RunContext
    co: Checkout
    plan: Plan
    task: Task
    project: Project
    workspace: Project
    tree: TaskTree | None
    _worked: float  # the running time of the task's attempts, this one included
    _bases: dict[int, Baseline]  # where each attempt of a reviewed task started (§16)
    _lands: bool = True  # False for a racer: the race merges its winner only (§16)
    _raced: dict[str, object]  # a race's {winner, racers}, for the stamp

    def _publish(self, event: Any) -> None:
        self.ctx.bus.publish(event)

    def _check(self, done: Attempted) -> Checked:
        """The checks of a DONE; what failed quotes a verify's or git's output, so it is
        kept free of secrets as an agent's own words are (DESIGN §13)."""
        checked = self._run_checks(done)
        if checked.problem is None:
            return checked
        return replace(checked, problem=self.co.secrets.redact(checked.problem))

    def _run_checks(self, done: Attempted) -> Checked:
        """The checks of a DONE where the attempt worked; isolated, then its merge."""
        if self.tree is not None and not self.tree.path.is_dir():
            return Checked(f"its worktree {self.tree.path} is gone; the next attempt makes another")
        checked = run_checks(self.ctx, self.plan, self.task, done.number, self.workspace, done.host)
        if checked.problem is None and self.task.review is not None:  # before any merge
            checked = self._reviewed(done, checked)
        if checked.problem is not None or self.tree is None or self.task.limits.approve:
            return checked  # a task a person approves is merged when approved
        if not self._lands:
            return checked  # a racer: merged only if it wins the race
        landed = self.tree.land(done.number, done.outcome.text)
        return replace(checked, problem=landed.problem, merge=landed.merge)

    def _reviewed(self, done: Attempted, checked: Checked) -> Checked:
        """The reviewer's verdict on a checked DONE (DESIGN §16)."""
        base = self._bases.get(done.number) or recovered_baseline(
            self.co, self.plan.plan_id, self.task.id, done.number
        )
        where = self.workspace
        verdict = Reviewer(self.ctx, self.plan, self.task, where, done.number).run(
            done.outcome.text, base
        )
        return replace(checked, problem=verdict.problem, review=verdict.stamp, final=verdict.final,
                       over_budget=verdict.over_budget)  # fmt: skip

    def _stamp(self, done: Attempted, checked: Checked) -> TaskResult:
        outcome = done.outcome
        stamp = self._stamp_of(done, checked)
        if self.task.limits.approve:
            return self._await_approval(done, stamp)
        stamps.write(self.co.stamp_path(self.plan.plan_id, self.task.id), stamp)
        if self.tree is not None:  # merged and stamped: the worktree has served
            self.tree.remove(done.number)
        if self._raced:  # the winner's record (before its merge) has served too
            self.co.layout.race_record(self.plan.plan_id, self.task.id).unlink(missing_ok=True)
        self._publish(TaskDone(self.plan.plan_id, self.task.id, outcome.text, done.number,
                               done.terminal_id, stamp.duration_seconds or 0.0,
                               outcome.usage))  # fmt: skip
        return TaskResult(Status.DONE, outcome.text)

    def _await_approval(self, done: Attempted, stamp: stamps.Stamp) -> TaskResult:
        """Checked, not stamped: the stamp waits beside its place for `doit approve` (§16)."""
        path = self.co.layout.approval_stamp(self.plan.plan_id, self.task.id)
        stamps.write(path, stamp)
        summary = done.outcome.text
        self._publish(TaskApproval(self.plan.plan_id, self.task.id, summary, done.number,
                                   done.terminal_id, stamp.duration_seconds))  # fmt: skip
        return TaskResult(Status.APPROVAL, summary)

    def _stamp_of(self, done: Attempted, checked: Checked) -> stamps.Stamp:
        outcome = done.outcome
        duration = round(self._worked, 3)
        return stamps.Stamp(
            task_id=self.task.id,
            plan_id=self.plan.plan_id,
            project=self.task.project,
            title=self.task.title,
            summary=outcome.text,
            finished_at=now_iso(),
            attempt=done.number,
            terminal_id=done.terminal_id,
            spec_hash=self.co.spec_hash(self.plan, self.task),
            duration_seconds=duration,
            agent=str(self._raced.get("winner", self.task.agent.name)),
            inputs=fingerprints.fingerprint_inputs(self.project, self.task),
            verify=checked.verify if self.task.verify is not None else None,
            merge=checked.merge or None,
            session_id=outcome.session_id or None,
            usage=outcome.usage or None,
            review=checked.review or None,
            race=self._raced or None,
        )
