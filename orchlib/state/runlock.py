"""One `doit` run per checkout: an exclusive lock on `.orch/run.lock` holding the runner's pid."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from orchlib.errors import ConfigError, LockHeld
from orchlib.fsutil import flock_within, make_private_dirs, open_private
from orchlib.layout import RUN_LOCK

HOLDER_WAIT = 0.5
PROBE_WAIT = 0.2  # a reader's probe holds the lock for microseconds: retry that long first


@contextlib.contextmanager
def run_lock(orch_dir: Path, doing: str = "run") -> Iterator[None]:
    """Hold the checkout's run lock for the duration; LockHeld at once if another run has it.

    The kernel drops the lock when the holder dies (even by SIGKILL), so a stale file
    never blocks the next run. `doing` names the command in the refusal (`forget`, ...).
    """
    path = orch_dir / RUN_LOCK
    try:
        make_private_dirs(orch_dir)
        fd = open_private(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        kind = "it is a folder; move it away" if path.is_dir() else exc.strerror
        raise ConfigError(f"orchlib: cannot open the run lock {path}: {kind}") from None
    try:
        if not flock_within(fd, PROBE_WAIT):
            holder = _holder(fd)
            what = "" if doing == "run" else f"cannot {doing} while "
            raise LockHeld(
                f"{path}: {what}another doit run holds this checkout's run lock (pid {holder}); "
                "wait for it or stop it — `doit status` works meanwhile"
            ) from None
        with contextlib.suppress(OSError):  # the pid is for messages only (a full disk)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def is_running(orch_dir: Path) -> bool:
    """Whether a `doit` run holds the checkout's run lock now (a probe, never waits)."""
    try:
        fd = os.open(orch_dir / RUN_LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's shared lock at once
    return False


def _holder(fd: int) -> str:
    """The pid the holder wrote; it writes it just after taking the lock, so wait a moment."""
    deadline = time.monotonic() + HOLDER_WAIT
    while True:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if text or time.monotonic() >= deadline:
            return text or "unknown"
        time.sleep(0.01)


def holder_pid(orch_dir: Path) -> int | None:
    """The pid of the `doit` run holding the checkout's run lock now; None when none does."""
    if not is_running(orch_dir):
        return None
    try:
        text = (orch_dir / RUN_LOCK).read_text(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
