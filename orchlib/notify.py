"""Notifications (DESIGN §7): run events become messages for command or apprise targets.

Events: `task_error` (a task failed for good), `task_question` (a new QUESTION),
`phase_completed` (every task of an executionOrder phase is done and at least one of them
was done by this run; once per phase per run), `plan_completed` (the run ends with every
task done and did some of that work), `plan_failed` (the run ends, not interrupted, with
a task of it failed or skipped). An interrupted run notifies nothing at its end: the user
stopped it.

Sending happens on one background thread, each delivery time-boxed, so a slow or broken
notifier never slows or fails the run; failures go to `.orch/<planId>/notify.log`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
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


class Notifier:
    """Turns one plan's run events into notifications, sent by a background worker."""

    def __init__(
        self, plan: Plan, folder: Path, *, command_timeout: float = COMMAND_TIMEOUT
    ) -> None:
        self.plan, self.folder, self.command_timeout = plan, folder, command_timeout
        self._queue: queue.Queue[tuple[NotifyTarget, Notification] | None] = queue.Queue()
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._warned_apprise = self._closed = self._abandoned = False
        self._start_run()

    @property
    def errors(self) -> list[str]:
        """Every delivery failure so far, one line each."""
        with self._lock:
            return list(self._errors)

    def handle(self, event: Event) -> None:
        """The bus subscriber: queue the notifications this event causes (never blocks)."""
        if event.plan_id != self.plan.plan_id or not self.plan.notify or self._closed:
            return
        for note in self.notifications(event):
            for target in self.plan.notify:
                if not target.events or note.event in target.events:
                    self._enqueue(target, note)

    def close(self, timeout: float = 15.0) -> None:
        """Deliver what is queued, waiting at most `timeout` seconds; the rest is dropped."""
        self._closed = True
        worker = self._worker
        if worker is None:
            return
        self._queue.put(None)
        worker.join(timeout)
        if worker.is_alive():
            self._abandoned = True
            _kill_group(self._child)
            self._drop_queued()

    # --- which notifications ------------------------------------------------------------

    def _start_run(self) -> None:
        self._done: set[str] = set()
        self._done_now: set[str] = set()
        self._failed: dict[str, str] = {}
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
        elif isinstance(event, TaskWaiting) and not event.still:
            return [self._task_question(event)]
        elif isinstance(event, TaskSkipped):
            self._failed[event.task_id] = "skipped"
        elif isinstance(event, RunFinished) and not event.interrupted:
            return self._run_finished()
        return []

    def _name(self) -> str:
        return f"Orchestration '{one_line(self.plan.summary) or self.plan.plan_id}'"

    def _task(self, task_id: str) -> str:
        task = self.plan.tasks.get(task_id)
        title = one_line(task.title) if task else task_id
        return f"task '{title}' ({self.plan.plan_id}:{task_id})"

    def _task_error(self, event: TaskFailed) -> Notification:
        text = f"Orchestration error in {self._task(event.task_id)}: {one_line(event.reason)}"
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

    def _enqueue(self, target: NotifyTarget, note: Notification) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="notify", daemon=True)
            self._worker.start()
        self._queue.put((target, note))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            target, note = item
            if self._abandoned:
                self._log(f"{note.event}: not sent, the run ended first")
                continue
            try:
                problem = self._deliver(target, note)
            except Exception as exc:  # a notifier bug must not end the worker
                problem = f"{exc!r}"
            if problem:
                self._log(f"{note.event}: {problem}")

    def _deliver(self, target: NotifyTarget, note: Notification) -> str | None:
        if target.command:
            return self._run_command(command_argv(target.command, note))
        return self._apprise(target.url, note)

    def _run_command(self, argv: list[str]) -> str | None:
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
        self._child = child
        try:
            _, err = child.communicate(timeout=self.command_timeout)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.communicate(timeout=1.0)
            return f"{argv[0]!r} timed out after {self.command_timeout:g}s and was killed"
        finally:
            self._child = None
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

    def _drop_queued(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._queue.get_nowait()
                if item is not None:
                    self._log(f"{item[1].event}: not sent, the run ended first")

    def _log(self, line: str) -> None:
        with self._lock:
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
