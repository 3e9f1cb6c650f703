"""Delivering notifications: a worker per target, time-boxed commands, apprise, the log.

A slow, hanging or broken target delays neither the run nor the other targets: each has
its own queue and thread, a command gets `COMMAND_TIMEOUT` seconds, and at the end of a
run `close_senders` waits once for all of them, then kills what is still running. Every
failure is a line in `.orch/<planId>/notify.log`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchlib.events import now_iso
from orchlib.executors.base import Handle, Job
from orchlib.executors.local import LocalExecutor
from orchlib.fsutil import append_private, ensure_dir
from orchlib.layout import NOTIFY_LOG, of_orch
from orchlib.plan import NotifyTarget
from orchlib.textsafe import flat_line

COMMAND_TIMEOUT = 10.0
ABANDON_GRACE = 1.0  # after a stuck delivery is killed: time for its worker to log it
LOG_FILE = NOTIFY_LOG
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
    child: Handle | None = None
    abandoned: bool = False
    number: int = 0


class Sender:
    """Sends notifications to a plan's targets, each on its own worker."""

    def __init__(
        self, targets: Sequence[NotifyTarget], folder: Path, command_timeout: float
    ) -> None:
        self.folder, self.command_timeout = folder, command_timeout
        self._lanes = [_Lane(target, number=n) for n, target in enumerate(targets)]
        # Notifications are the orchestrator's own work: their commands run on this machine.
        self._executor = LocalExecutor()
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._warned_apprise = False

    @property
    def errors(self) -> list[str]:
        """Every delivery failure so far, one line each."""
        with self._lock:
            return list(self._errors)

    def send(self, note: Notification) -> None:
        """Queue the note for every target that wants its event (never blocks)."""
        for lane in self._lanes:
            if not lane.target.events or note.event in lane.target.events:
                self._enqueue(lane, note)

    def stop_taking(self) -> list[_Lane]:
        """Each started worker ends after what it has queued; returns their lanes."""
        started = [lane for lane in self._lanes if lane.worker is not None]
        for lane in started:
            lane.queue.put(None)
        return started

    def abandon(self, lane: _Lane) -> None:
        """Kill the lane's running delivery and log what it will not send."""
        lane.abandoned = True
        child = lane.child
        if child is not None:
            child.terminate(grace=0.0)  # it and everything it started
        self._drop_queued(lane)

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
        if self._executor.preflight(self.folder, argv[:1]):
            return f"cannot run {argv[0]!r}: {os.strerror(errno.ENOENT)}"
        # Its output, for the message.
        out = of_orch(self.folder.parent).notify_out(self.folder.name, lane.number)
        try:
            out.unlink(missing_ok=True)
            child = self._executor.start(Job(tuple(argv), Path.cwd(), {}, out))
        except OSError as exc:
            return f"cannot run {argv[0]!r}: {exc.strerror or exc}"
        lane.child = child
        try:
            code = _wait(child, self.command_timeout)
        finally:
            lane.child = None
            child.close()
        if lane.abandoned:
            return f"{argv[0]!r} was still running when the run ended, and was killed"
        if code is None:
            child.terminate(grace=0.0)
            return f"{argv[0]!r} timed out after {self.command_timeout:g}s and was killed"
        tail = flat_line(_tail(out))[-300:]
        return f"{argv[0]!r} exited {code}: {tail}" if code else None

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
                ensure_dir(self.folder)
                append_private(self.folder / LOG_FILE, f"{now_iso()} {line}\n".encode())


def close_senders(senders: Sequence[Sender], timeout: float) -> None:
    """Wait at most `timeout` seconds in all for every queued delivery, then give up on the rest."""
    lanes = [(s, lane) for s in senders for lane in s.stop_taking()]
    deadline = time.monotonic() + timeout
    for _, lane in lanes:
        assert lane.worker is not None
        lane.worker.join(max(0.0, deadline - time.monotonic()))
    stuck = [(s, lane) for s, lane in lanes if lane.worker and lane.worker.is_alive()]
    for sender, lane in stuck:
        sender.abandon(lane)
    for _, lane in stuck:  # let each worker log its killed delivery, briefly
        assert lane.worker is not None
        lane.worker.join(ABANDON_GRACE)


def _wait(child: Handle, timeout: float) -> int | None:
    """The command's exit code; None when it still runs after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (code := child.poll()) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        child.wait_output(min(left, 0.1))
    return code


def _tail(path: Path) -> str:
    """The end of a command's output."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 2000))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
