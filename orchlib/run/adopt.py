"""Adoption: taking over an attempt that a killed `doit` run left in progress.

`state.json` holds an attempt's executor ref (for a local process: its pid with its kernel
start time), terminal id and log before the agent may print a byte, and the agent's output
reaches that log without us. So the next run asks the executor for the attempt by its ref,
reads its log from the start, and follows it to its end, instead of starting a second agent
for the same task. A record written before refs existed has only pid fields: they make a
local ref.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from orchlib.executors.base import Executor, Handle, legacy_ref
from orchlib.state.model import Status, TaskRecord
from orchlib.state.transitions import parse_time


@dataclass(frozen=True)
class Leftover:
    """An attempt of an earlier run to follow: its process (maybe gone), log and clocks."""

    handle: Handle
    log: Path
    started_ago: float
    quiet_for: float


def record_ref(record: TaskRecord) -> dict[str, object]:
    """The executor ref of the record's latest attempt (from the pid fields of an old one)."""
    if record.ref:
        return dict(record.ref)
    return legacy_ref(record.pid, record.pid_start, record.log, record.terminal_id)


def leftover(executor: Executor, record: TaskRecord | None) -> Leftover | None:
    """The attempt a killed run left in progress, or None when there is none to follow.

    A process that is gone with an empty log never got past the gate (or printed nothing):
    there is nothing to take, so it does not count as an attempt. An agent still running
    without its log cannot be followed; it is stopped, so it never runs beside a new one.
    """
    if record is None or record.status is not Status.IN_PROGRESS:
        return None
    ref = record_ref(record)
    handle = executor.adopt(ref) if ref else None
    if handle is None:
        return None
    log = Path(record.log) if record.log else None
    ended = handle.poll() is not None  # gone: its exit code from the gate's exit file, else -1
    if log is None or not _followable(ended, log):
        handle.terminate()
        return None
    return Leftover(handle, log, _seconds_since(record.started_at), _age(log))


def _followable(ended: bool, log: Path) -> bool:
    try:
        size = log.stat().st_size
    except OSError:
        return False
    return not ended or size > 0


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
