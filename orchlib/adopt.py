"""Adoption: taking over an attempt that a killed `doit` run left in progress.

`state.json` holds an attempt's pid (with its kernel start time), terminal id and log
before the agent may print a byte, and the agent writes its output straight to that log.
So the next run can tell whether the agent still runs, read its log from the start, and
follow it to its end, instead of starting a second agent for the same task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from orchlib.stateevents import parse_time
from orchlib.statemodel import Status, TaskRecord
from orchlib.terminal import Proc


@dataclass(frozen=True)
class Leftover:
    """An attempt of an earlier run to follow: its process (maybe gone), log and clocks."""

    proc: Proc
    log: Path
    started_ago: float
    quiet_for: float


def leftover(record: TaskRecord | None) -> Leftover | None:
    """The attempt a killed run left in progress, or None when there is none to follow.

    A process that is gone with an empty log never got past the gate (or printed nothing):
    there is nothing to take, so it does not count as an attempt. An agent still running
    without its log cannot be followed; it is stopped, so it never runs beside a new one.
    """
    if record is None or record.status is not Status.IN_PROGRESS or not record.pid:
        return None
    log = Path(record.log) if record.log else None
    exit_file = log.with_suffix(".exit") if log is not None else None
    proc = Proc(pid=record.pid, start_time=record.pid_start, exit_file=exit_file)
    proc.poll()  # gone: its exit code from the gate's exit file, else -1
    if log is None or not _followable(proc, log):
        proc.terminate()
        return None
    return Leftover(proc, log, _seconds_since(record.started_at), _age(log))


def _followable(proc: Proc, log: Path) -> bool:
    try:
        size = log.stat().st_size
    except OSError:
        return False
    return proc.returncode is None or size > 0


def _age(path: Path) -> float:
    """Seconds since the file was last written (0 when unknown)."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return 0.0


def _seconds_since(iso: str) -> float:
    """Seconds since an ISO time of the state file (0 when missing or unparsable)."""
    moment = parse_time(iso)
    return max(0.0, (datetime.now(timezone.utc) - moment).total_seconds()) if moment else 0.0
