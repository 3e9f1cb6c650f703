"""A reported DONE, finished: the checks where the attempt worked, an isolated task's merge,
then the stamp and `TaskDone`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orchlib.checkout import Checkout
from orchlib.events import TaskDone, now_iso
from orchlib.plan import Plan, Project, Task
from orchlib.run.attempt import Outcome
from orchlib.run.checks import Checked, run_checks
from orchlib.run.worktrees import TaskTree
from orchlib.state import fingerprints, stamps
from orchlib.state.model import Status


@dataclass(frozen=True)
class TaskResult:
    """How a task ended in this run: DONE, ERROR (`interrupted` when the run was stopped)
    or QUESTION (waiting for an answer).

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

    co: Checkout
    plan: Plan
    task: Task
    project: Project
    workspace: Project
    tree: TaskTree | None
    _worked: float  # the running time of the task's attempts, this one included

    def _publish(self, event: Any) -> None:
        self.co.bus.publish(event)

    def _check(self, done: Attempted) -> Checked:
        """The checks of a DONE where the attempt worked; isolated, then its merge."""
        if self.tree is not None and not self.tree.path.is_dir():
            return Checked(f"its worktree {self.tree.path} is gone; the next attempt makes another")
        checked = run_checks(self.co, self.plan, self.task, done.number, self.workspace, done.host)
        if checked.problem is not None or self.tree is None:
            return checked
        landed = self.tree.land(done.number, done.outcome.text)
        return replace(checked, problem=landed.problem, merge=landed.merge)

    def _stamp(self, done: Attempted, checked: Checked) -> TaskResult:
        outcome = done.outcome
        duration = round(self._worked, 3)
        stamp = stamps.Stamp(
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
            agent=self.task.agent.name,
            inputs=fingerprints.fingerprint_inputs(self.project, self.task),
            verify=checked.verify if self.task.verify is not None else None,
            merge=checked.merge or None,
            session_id=outcome.session_id or None,
            usage=outcome.usage or None,
        )
        stamps.write(self.co.stamp_path(self.plan.plan_id, self.task.id), stamp)
        if self.tree is not None:  # merged and stamped: the worktree has served
            self.tree.remove(done.number)
        self._publish(TaskDone(self.plan.plan_id, self.task.id, outcome.text, done.number,
                               done.terminal_id, duration,
                               outcome.usage))  # fmt: skip
        return TaskResult(Status.DONE, outcome.text)
