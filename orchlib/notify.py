"""Notifications (DESIGN §7): run events become messages for command or apprise targets.

Events: `task_error` (a task failed for good), `task_question` (a new QUESTION),
`phase_completed` (every task of an executionOrder phase is done and at least one of them
was done by this run; once per phase per run), `plan_completed` (the run ends with every
task done and did some of that work), `plan_failed` (the run ends, not interrupted, with
a task of it failed, or skipped because of a failure: tasks only held up by an open
question make the plan `waiting`, which `task_question` told already). An interrupted run
notifies nothing at its end: the user stopped it. A question still open from an earlier run
(`TaskWaiting(still=True)`) is not notified again.

Each target has its own background worker and every delivery is time-boxed, so a slow or
broken notifier never slows or fails the run, nor delays another target's messages;
failures go to `.orch/<planId>/notify.log`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .events import (
    Event,
    RunFinished,
    RunStarted,
    TaskDone,
    TaskFailed,
    TaskSkipped,
    TaskUpToDate,
    TaskWaiting,
    now_iso,
)
from .plan import NotifyTarget, Plan
from .staterender import one_line

EVENTS = ("task_error", "task_question", "phase_completed", "plan_completed", "plan_failed")
COMMAND_TIMEOUT = 10.0
ABANDON_GRACE = 1.0  # after close() kills a stuck delivery: time for its worker to log it
LOG_FILE = "notify.log"
APPRISE_MISSING = "apprise not installed: pip install 'orchlib[notify]'"
_PLACEHOLDER = re.compile(r"\{(event|title|message)\}")


@dataclass(frozen=True)
class Notification:
    """One message: which event, a short title, the text."""

    event: str
    title: str
    message: str


def command_argv(argv: Sequence[str], note: Notification) -> list[str]:
    """The target's argv with `{event}`, `{title}`, `{message}` replaced in each argument.

    One pass per argument, so text that itself contains `{message}` stays literal.
    """
    values = {"event": note.event, "title": note.title, "message": note.message}
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in argv]


@dataclass(eq=False)
class _Lane:
    """One target's queue and worker thread (started on its first message)."""

    target: NotifyTarget
    queue: queue.Queue[Notification | None] = field(default_factory=queue.Queue)
    worker: threading.Thread | None = None
    child: subprocess.Popen[bytes] | None = None
    abandoned: bool = False


class Notifier:
    """Turns one plan's run events into notifications, sent by background workers."""

    def __init__(
        self, plan: Plan, folder: Path, *, command_timeout: float = COMMAND_TIMEOUT
    ) -> None:
        self.plan, self.folder, self.command_timeout = plan, folder, command_timeout
        self._lanes = [_Lane(target) for target in plan.notify]
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._warned_apprise = self._closed = False
        self._start_run()

    @property
    def errors(self) -> list[str]:
        """Every delivery failure so far, one line each."""
        with self._lock:
            return list(self._errors)

    def handle(self, event: Event) -> None:
        """The bus subscriber: queue the notifications this event causes (never blocks)."""
        if event.plan_id != self.plan.plan_id or not self._lanes or self._closed:
            return
        for note in self.notifications(event):
            for lane in self._lanes:
                if not lane.target.events or note.event in lane.target.events:
                    self._enqueue(lane, note)

    def close(self, timeout: float = 15.0) -> None:
        """Deliver what is queued, waiting at most `timeout` seconds in all; the rest is dropped.

        A delivery still running then is killed, and it and every message left are logged.
        """
        self._closed = True
        started = [lane for lane in self._lanes if lane.worker is not None]
        for lane in started:
            lane.queue.put(None)
        deadline = time.monotonic() + timeout
        for lane in started:
            assert lane.worker is not None
            lane.worker.join(max(0.0, deadline - time.monotonic()))
        stuck = [lane for lane in started if lane.worker and lane.worker.is_alive()]
        for lane in stuck:
            lane.abandoned = True
            _kill_group(lane.child)
            self._drop_queued(lane)
        for lane in stuck:  # let each worker log its killed delivery, briefly
            assert lane.worker is not None
            lane.worker.join(ABANDON_GRACE)

    # --- which notifications ------------------------------------------------------------

    def _start_run(self) -> None:
        self._done: set[str] = set()
        self._done_now: set[str] = set()
        self._failed: dict[str, str] = {}
        self._waiting: set[str] = set()
        self._told: set[int] = set()

    def notifications(self, event: Event) -> list[Notification]:
        """The notifications an event causes (tracks the run's progress)."""
        if isinstance(event, RunStarted):
            self._start_run()
        elif isinstance(event, TaskUpToDate | TaskDone):
            return self._task_done(event.task_id, isinstance(event, TaskDone))
        elif isinstance(event, TaskFailed) and event.final:
            self._failed[event.task_id] = "failed"
            return [self._task_error(event)]
        elif isinstance(event, TaskWaiting):
            self._waiting.add(event.task_id)
            return [] if event.still else [self._task_question(event)]
        elif isinstance(event, TaskSkipped):
            self._skipped(event)
        elif isinstance(event, RunFinished) and not event.interrupted:
            return self._run_finished()
        return []

    def _skipped(self, event: TaskSkipped) -> None:
        """A skip counts as a failure unless every cause only waits for an answer."""
        if all(dep in self._waiting for dep in event.because) and event.because:
            self._waiting.add(event.task_id)  # held up by a question, like its dependency
        else:
            self._failed[event.task_id] = "skipped"

    def _name(self) -> str:
        return f"Orchestration '{one_line(self.plan.summary) or self.plan.plan_id}'"

    def _task(self, task_id: str) -> str:
        task = self.plan.tasks.get(task_id)
        title = one_line(task.title) if task else task_id
        return f"task '{title}' ({self.plan.plan_id}:{task_id})"

    def _task_error(self, event: TaskFailed) -> Notification:
        reason = one_line(event.reason.removeprefix("ERROR: "))  # the agent's own words
        text = f"Orchestration error in {self._task(event.task_id)}: {reason}"
        return Notification("task_error", f"{self.plan.plan_id}: task failed", text)

    def _task_question(self, event: TaskWaiting) -> Notification:
        name = f"{self.plan.plan_id}:{event.task_id}"
        text = (
            f"{self._name()}: {self._task(event.task_id)} asks: {one_line(event.question)}"
            f' — answer with: doit answer {name} "..."'
        )
        return Notification("task_question", f"{self.plan.plan_id}: question", text)

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
        failed = sum(v == "failed" for v in self._failed.values())
        skipped = len(self._failed) - failed
        counts = f"{failed} failed, {skipped} skipped ({self._count()} tasks done)"
        text = f"{self._name()} failed: {counts}: {', '.join(self._failed)}"
        return [Notification("plan_failed", f"{plan_id}: failed", text)]

    # --- delivery (worker thread) -------------------------------------------------------

    def _enqueue(self, lane: _Lane, note: Notification) -> None:
        if lane.worker is None:
            lane.worker = threading.Thread(
                target=self._work, args=(lane,), name="notify", daemon=True
            )
            lane.worker.start()
        lane.queue.put(note)

    def _work(self, lane: _Lane) -> None:
        while (note := lane.queue.get()) is not None:
            if lane.abandoned:
                self._log(f"{note.event}: not sent, the run ended first")
                continue
            try:
                problem = self._deliver(lane, note)
            except Exception as exc:  # a notifier bug must not end the worker
                problem = f"{exc!r}"
            if problem:
                self._log(f"{note.event}: {problem}")

    def _deliver(self, lane: _Lane, note: Notification) -> str | None:
        if lane.target.command:
            return self._run_command(lane, command_argv(lane.target.command, note))
        return self._apprise(lane.target.url, note)

    def _run_command(self, lane: _Lane, argv: list[str]) -> str | None:
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own group: a timeout kills its children too
            )
        except OSError as exc:
            return f"cannot run {argv[0]!r}: {exc.strerror or exc}"
        lane.child = child
        try:
            _, err = child.communicate(timeout=self.command_timeout)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.communicate(timeout=1.0)
            return f"{argv[0]!r} timed out after {self.command_timeout:g}s and was killed"
        finally:
            lane.child = None
        if lane.abandoned:
            return f"{argv[0]!r} was still running when the run ended, and was killed"
        tail = one_line(err.decode("utf-8", "replace"))[-300:]
        return f"{argv[0]!r} exited {child.returncode}: {tail}" if child.returncode else None

    def _apprise(self, url: str, note: Notification) -> str | None:
        # apprise's own deprecation warnings (imghdr, ...) are not the run's problem.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._apprise_send(url, note)

    def _apprise_send(self, url: str, note: Notification) -> str | None:
        try:
            import apprise  # optional extra: orchlib[notify]
        except ImportError:
            if self._warned_apprise:
                return None
            self._warned_apprise = True
            return APPRISE_MISSING
        app = apprise.Apprise()
        where = url.split("://", 1)[0] + "://…"  # the rest of a URL often holds a token
        if not app.add(url):
            return f"apprise: not a valid URL: {where}"
        delivered = app.notify(title=note.title, body=note.message)
        return None if delivered else f"apprise: delivery to {where} failed"

    def _drop_queued(self, lane: _Lane) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                note = lane.queue.get_nowait()
                if note is not None:
                    self._log(f"{note.event}: not sent, the run ended first")
        lane.queue.put(None)  # the worker ends once its current delivery does

    def _log(self, line: str) -> None:
        with self._lock:  # several workers: one line at a time
            self._errors.append(line)
            with contextlib.suppress(OSError):
                self.folder.mkdir(parents=True, exist_ok=True)
                with (self.folder / LOG_FILE).open("a", encoding="utf-8") as log:
                    log.write(f"{now_iso()} {line}\n")


def _kill_group(child: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a notifier command and everything it started."""
    if child is not None:
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
