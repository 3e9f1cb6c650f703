"""Notifications (DESIGN §7): run events become messages for command or apprise targets.

Which event is sent when is in docs/state.md ("Notifications"). Two rules worth knowing
here: a question still open from an earlier run (`TaskWaiting(still=True)`) is not sent
again, and a task skipped only behind an open question is no `plan_failed` (the plan is
`waiting`, and `task_question` said so). An interrupted run sends nothing at its end.

Each target has its own background worker and every delivery is time-boxed, so a slow or
broken notifier never slows or fails the run, nor delays another target's messages;
failures go to `.orch/<planId>/notify.log`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchlib import events as ev
from orchlib.bus import Subscriber
from orchlib.output.notifysend import (
    APPRISE_MISSING,
    COMMAND_TIMEOUT,
    LOG_FILE,
    Notification,
    Sender,
    close_senders,
    command_argv,
)
from orchlib.plan import Plan
from orchlib.plan.notifyschema import EVENTS
from orchlib.state.render import local_clock
from orchlib.state.words import LOOKS, Shown
from orchlib.textsafe import flat_line

__all__ = [
    "APPRISE_MISSING", "COMMAND_TIMEOUT", "EVENTS", "LOG_FILE", "Notification", "Notifier",
    "close_all", "command_argv",
]  # fmt: skip


class Notifier(Subscriber):
    """Turns one plan's run events into notifications, sent by background workers.

    Its `on_<event>` methods return the notifications the event causes (None: none).
    """

    def __init__(
        self, plan: Plan, folder: Path, *, command_timeout: float = COMMAND_TIMEOUT
    ) -> None:
        self.plan, self.folder = plan, folder
        self._sender = Sender(plan.notify, folder, command_timeout)
        self._closed = False
        self._start_run()

    @property
    def errors(self) -> list[str]:
        """Every delivery failure so far, one line each."""
        return self._sender.errors

    def handle(self, event: ev.Event) -> None:
        """The bus subscriber: queue the notifications this event causes (never blocks)."""
        if event.plan_id != self.plan.plan_id or not self.plan.notify or self._closed:
            return
        for note in self.notifications(event):
            self._sender.send(note)

    def close(self, timeout: float = 15.0) -> None:
        """Deliver what is queued, waiting at most `timeout` seconds in all; the rest is dropped.

        A delivery still running then is killed, and it and every message left are logged.
        """
        close_all([self], timeout)

    # --- which notifications ------------------------------------------------------------

    def _start_run(self) -> None:
        self._done: set[str] = set()
        self._done_now: set[str] = set()
        self._failed: dict[str, Shown] = {}  # FAILED or SKIPPED
        self._waiting: set[str] = set()
        self._told: set[int] = set()
        self._limits: set[tuple[str, str]] = set()

    def notifications(self, event: ev.Event) -> list[Notification]:
        """The notifications an event causes (tracks the run's progress)."""
        notes: list[Notification] | None = self.dispatch(event)
        return notes or []

    def on_run_started(self, event: ev.RunStarted) -> None:
        self._start_run()

    def on_task_up_to_date(self, event: ev.TaskUpToDate) -> list[Notification]:
        return self._task_done(event.task_id, now=False)

    def on_task_done(self, event: ev.TaskDone) -> list[Notification]:
        return self._task_done(event.task_id, now=True)

    def on_task_failed(self, event: ev.TaskFailed) -> list[Notification]:
        if not event.final:
            return []
        self._failed[event.task_id] = Shown.FAILED
        return [self._task_error(event)]

    def on_task_waiting(self, event: ev.TaskWaiting) -> list[Notification]:
        self._waiting.add(event.task_id)
        return [] if event.still else [self._task_question(event)]

    def on_task_approval(self, event: ev.TaskApproval) -> list[Notification]:
        self._waiting.add(event.task_id)  # like a question: the plan waits, not failed
        return [] if event.still else [self._task_approval(event)]

    def on_task_paused(self, event: ev.TaskPaused) -> list[Notification]:
        return self._usage_limit(event)

    def on_budget_spent(self, event: ev.BudgetSpent) -> list[Notification]:
        text = f"{self._name()}: {event.reason} in {self._task(event.task_id)}"
        return [Notification("budget_spent", f"{self.plan.plan_id}: {event.reason}", text)]

    def on_task_skipped(self, event: ev.TaskSkipped) -> None:
        """A skip counts as a failure unless every cause only waits (an answer, approval)."""
        if all(dep in self._waiting for dep in event.because) and event.because:
            self._waiting.add(event.task_id)  # held up by a question, like its dependency
        else:
            self._failed[event.task_id] = Shown.SKIPPED

    def on_run_finished(self, event: ev.RunFinished) -> list[Notification]:
        return [] if event.interrupted else self._run_finished()

    def _name(self) -> str:
        return f"Orchestration '{flat_line(self.plan.summary) or self.plan.plan_id}'"

    def _task(self, task_id: str) -> str:
        task = self.plan.tasks.get(task_id)
        title = flat_line(task.title) if task else task_id
        return f"task '{title}' ({self.plan.plan_id}:{task_id})"

    def _task_error(self, event: ev.TaskFailed) -> Notification:
        reason = flat_line(event.reason)
        text = f"Orchestration error in {self._task(event.task_id)}: {reason}"
        return Notification("task_error", f"{self.plan.plan_id}: task failed", text)

    def _task_question(self, event: ev.TaskWaiting) -> Notification:
        name = f"{self.plan.plan_id}:{event.task_id}"
        text = (
            f"{self._name()}: {self._task(event.task_id)} asks: {flat_line(event.question)}"
            f' — answer with: doit answer {name} "..."'
        )
        return Notification("task_question", f"{self.plan.plan_id}: question", text)

    def _task_approval(self, event: ev.TaskApproval) -> Notification:
        name = f"{self.plan.plan_id}:{event.task_id}"
        text = (
            f"{self._name()}: {self._task(event.task_id)} passed its checks and waits for "
            f"approval: {flat_line(event.summary)} — doit approve {name}, or doit reject "
            f'{name} "what to change"'
        )
        return Notification("task_approval", f"{self.plan.plan_id}: approval", text)

    def _usage_limit(self, event: ev.TaskPaused) -> list[Notification]:
        """Once per limit (profile and reset time), from the attempt that hit it."""
        if not event.hit or (event.profile, event.until) in self._limits:
            return []
        self._limits.add((event.profile, event.until))
        until = local_clock(event.until)
        text = (
            f"{self._name()}: {event.profile} reached a usage limit in {self._task(event.task_id)};"
            f" its tasks wait until {until}, other agents keep running"
            f" ({flat_line(event.reason)})"
        )
        return [Notification("usage_limit", f"{self.plan.plan_id}: {event.profile} paused", text)]

    def _task_done(self, task_id: str, now: bool) -> list[Notification]:
        self._done.add(task_id)
        self._failed.pop(task_id, None)
        self._waiting.discard(task_id)
        if now:
            self._done_now.add(task_id)
        number = self._phase_of(task_id)
        if not self._phase_completes(number):
            return []
        self._told.add(number)
        text = f"{self._name()}: Phase {number} completed ({self._count()} tasks done)"
        return [Notification("phase_completed", f"{self.plan.plan_id}: phase {number} done", text)]

    def _phase_completes(self, number: int) -> bool:
        """All of the phase is done now, some of it by this run, and nobody was told yet."""
        if not number or number in self._told:
            return False
        phase = set(self.plan.phases[number - 1])
        return phase <= self._done and bool(phase & self._done_now)

    def _phase_of(self, task_id: str) -> int:
        try:
            return self.plan.phase_of(task_id)
        except KeyError:
            return 0

    def _count(self) -> str:
        return f"{len(self._done & set(self.plan.tasks))}/{len(self.plan.tasks)}"

    def _run_finished(self) -> list[Notification]:
        plan_id, total = self.plan.plan_id, len(self.plan.tasks)
        if set(self.plan.tasks) <= self._done and self._done_now:
            text = f"{self._name()} completed successfully! All {total} tasks done."
            return [Notification("plan_completed", f"{plan_id}: completed", text)]
        if not self._failed:
            return []
        failed = sum(v is Shown.FAILED for v in self._failed.values())
        skipped = len(self._failed) - failed
        words = LOOKS[Shown.FAILED].counted, LOOKS[Shown.SKIPPED].counted
        counts = f"{failed} {words[0]}, {skipped} {words[1]} ({self._count()} tasks done)"
        text = f"{self._name()} failed: {counts}: {', '.join(self._failed)}"
        return [Notification("plan_failed", f"{plan_id}: failed", text)]


def close_all(notifiers: Sequence[Notifier], timeout: float) -> None:
    """Close every notifier within one shared `timeout` (the end of a run of several plans)."""
    for notifier in notifiers:
        notifier._closed = True
    close_senders([n._sender for n in notifiers], timeout)
