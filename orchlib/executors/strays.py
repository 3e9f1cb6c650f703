"""Processes an attempt left outside its process group, stopped when the attempt ends.

An attempt's agent runs as the leader of its own session and process group, and the
attempt ends by signalling that group. A descendant that calls `setsid` (a daemonising
tool, `nohup setsid ...`) leaves the group and would outlive the attempt. Every process
of an attempt inherits its unique `TERMINAL_ID`, so after the group is stopped the
processes still carrying it in their environment are found in /proc and stopped too.
A descendant that also clears or rewrites its environment cannot be told apart from an
unrelated process and stays (docs/recovery.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from orchlib.executors.base import TERM_GRACE
from orchlib.executors.process import is_alive, start_time


def find(terminal_id: str) -> list[tuple[int, str]]:
    """(pid, start time) of every process whose environment has TERMINAL_ID=terminal_id."""
    needle = b"\0TERMINAL_ID=" + terminal_id.encode() + b"\0"
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
            if needle in environ:
                found.append((int(name), start_time(int(name))))
    return found


def stop(terminal_id: str, grace: float = TERM_GRACE) -> int:
    """SIGTERM the attempt's strays, SIGKILL those left after `grace`; how many there were."""
    if not terminal_id:
        return 0
    strays = find(terminal_id)
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
