"""Processes an attempt left outside its process group, stopped when the attempt ends.

An attempt's agent runs as the leader of its own session and process group, and the
attempt ends by signalling that group. A descendant that calls `setsid` (a daemonising
tool, `nohup setsid ...`) leaves the group and would outlive the attempt. Every process
of an attempt inherits its unique `TERMINAL_ID`, so after the group is stopped the
processes still carrying it in their environment are found in /proc and stopped too.
A descendant that also clears or rewrites its environment cannot be told apart from an
unrelated process and stays (docs/recovery.md).

Reading every process's environment costs ~3 ms on a busy machine: a run's attempts hand
their terminal ids to one `Sweeper`, whose thread stops the strays of every attempt that
ended meanwhile in one pass over /proc, off the path from DONE to the stamp.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

from orchlib.executors.base import TERM_GRACE
from orchlib.executors.process import is_alive, start_time

_KEY = b"\0TERMINAL_ID="
BATCH = 0.05  # seconds a sweep waits for more attempts to end before it reads /proc


def find(terminal_id: str) -> list[tuple[int, str]]:
    """(pid, start time) of every process whose environment has TERMINAL_ID=terminal_id."""
    return find_all({terminal_id})


def find_all(terminal_ids: set[str]) -> list[tuple[int, str]]:
    """(pid, start time) of every process whose TERMINAL_ID is one of `terminal_ids`."""
    wanted = {tid.encode() for tid in terminal_ids}
    found = []
    me = os.getpid()
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as handle:
                    environ = b"\0" + handle.read()
            except OSError:  # gone, or not ours to read
                continue
            at = environ.find(_KEY)
            if at >= 0 and environ[at + len(_KEY) :].split(b"\0", 1)[0] in wanted:
                found.append((int(name), start_time(int(name))))
    return found


def stop(terminal_id: str, grace: float = TERM_GRACE) -> int:
    """SIGTERM the attempt's strays, SIGKILL those left after `grace`; how many there were."""
    if not terminal_id:
        return 0
    return _stop(find(terminal_id), grace)


def _stop(strays: list[tuple[int, str]], grace: float) -> int:
    _signal(strays, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while strays and time.monotonic() < deadline:
        time.sleep(0.02)
        strays = [(pid, st) for pid, st in strays if is_alive(pid, st)]
    _signal(strays, signal.SIGKILL)
    return len(strays)


def _signal(procs: list[tuple[int, str]], sig: int) -> None:
    for pid, started in procs:
        if is_alive(pid, started):  # a pid reused since the scan is not ours
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


class Sweeper:
    """Stops the strays of ended attempts on one thread, many attempts per pass over /proc."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[str, float] = {}  # terminal id -> grace
        self._busy = False
        self._draining = False  # the run ends: sweep at once, there is no one left to wait for
        self._thread: threading.Thread | None = None

    def submit(self, terminal_id: str, grace: float = TERM_GRACE) -> None:
        """Stop `terminal_id`'s strays soon (its process group has been stopped)."""
        if not terminal_id:
            return
        with self._cond:
            idle = not self._pending and not self._busy  # else a pass to come takes it
            self._pending[terminal_id] = max(grace, self._pending.get(terminal_id, 0.0))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="orchlib-strays",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            if idle:  # waking the thread costs ~50 µs of the GIL on a VM: once per pass
                self._cond.notify_all()

    def drain(self, timeout: float = TERM_GRACE + 5.0) -> None:
        """Wait until every submitted attempt's strays are stopped."""
        with self._cond:
            self._draining = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending))
                self._busy = True
                # The attempts ending meanwhile share the pass.
                self._cond.wait_for(lambda: self._draining, BATCH)
                batch, self._pending = self._pending, {}
            try:
                _stop(find_all(set(batch)), max(batch.values()))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
