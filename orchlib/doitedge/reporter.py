"""doit's reporter interface, turned into orchlib run events.

Plan tasks publish their own events (started, progress, done, failed...) from the
dispatcher; what only doit knows — a task was up to date, or skipped because a
dependency did not finish — is published here. Other tasks are reported like doit does.
"""

from __future__ import annotations

from typing import IO, Any

from orchlib.doitedge.doitapi import TaskError, UnmetDependency
from orchlib.doitedge.loader import orch_meta
from orchlib.events import TaskFailed, TaskSkipped, TaskUpToDate
from orchlib.run.context import RunContext
from orchlib.state.stamps import Stamp
from orchlib.textsafe import printable


class PlanReporter:
    """A doit reporter for plan runs: events on the bus, plain lines for anything else."""

    desc = "orchlib plan reporter"

    def __init__(self, run: RunContext, outstream: IO[str]) -> None:
        self.co, self.bus = run.co, run.bus
        self.out = outstream
        self.runtime_errors: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        """Nothing to prepare."""

    def get_status(self, task: Any) -> None:
        """Nothing to show while doit checks a task."""

    def execute_task(self, task: Any) -> None:
        """Plan tasks announce themselves once their agent is spawned."""

    def add_success(self, task: Any) -> None:
        """Plan tasks announce their own DONE."""

    def add_failure(self, task: Any, fail: Any) -> None:
        """A skipped dependent, or an internal error that bypassed the dispatcher."""
        meta = orch_meta(task)
        if meta is None:
            if not task.has_subtask:
                self.out.write(printable(f"{task.name}: {fail.message}") + "\n")
            return
        if isinstance(fail, UnmetDependency):
            because = tuple(name.split(":", 1)[-1] for name in str(fail.message).split())
            self.bus.publish(TaskSkipped(meta.plan, meta.task, because))
        elif isinstance(fail, TaskError):
            reason = str(fail.message).strip().splitlines()[0] if fail.message else repr(fail)
            self.bus.publish(TaskFailed(meta.plan, meta.task, reason, 0, final=True))

    def skip_uptodate(self, task: Any) -> None:
        """A plan task done in an earlier run."""
        meta = orch_meta(task)
        if meta is None:
            return
        stamp = self.co.stamp(meta.plan, meta.task) or Stamp(meta.task, "")
        self.bus.publish(TaskUpToDate(
            meta.plan, meta.task, stamp.summary, stamp.finished_at, stamp.terminal_id,
            stamp.attempt_number,
        ))  # fmt: skip

    def skip_ignore(self, task: Any) -> None:
        """`doit ignore`d tasks are said once."""
        self.out.write(f"!! ignored: {task.name}\n")

    def cleanup_error(self, exception: Any) -> None:
        """A failing clean action."""
        self.out.write(f"cleanup error: {exception.get_msg()}\n")

    def runtime_error(self, msg: str) -> None:
        """An error that stops the run."""
        self.runtime_errors.append(msg)
        self.out.write(f"error: {msg}\n")

    def teardown_task(self, task: Any) -> None:
        """Plan tasks have no teardown."""

    def complete_run(self) -> None:
        """The run summary is written by the console after the run."""
