"""One `doit` run per checkout: an exclusive lock on `.orch/run.lock` holding the runner's pid."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from orchlib.errors import ConfigError, LockHeld

HOLDER_WAIT = 0.5


@contextlib.contextmanager
def run_lock(orch_dir: Path) -> Iterator[None]:
    """Hold the checkout's run lock for the duration; LockHeld at once if another run has it.

    The kernel drops the lock when the holder dies (even by SIGKILL), so a stale file
    never blocks the next run.
    """
    orch_dir.mkdir(parents=True, exist_ok=True)
    path = orch_dir / "run.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        kind = "it is a folder; move it away" if path.is_dir() else exc.strerror
        raise ConfigError(f"orchlib: cannot open the run lock {path}: {kind}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise LockHeld(
                f"{path}: another doit run holds this checkout's run lock (pid {holder}); "
                "wait for it or stop it — `doit status` works meanwhile"
            ) from None
        with contextlib.suppress(OSError):  # the pid is for messages only (a full disk)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """The pid the holder wrote; it writes it just after taking the lock, so wait a moment."""
    deadline = time.monotonic() + HOLDER_WAIT
    while True:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if text or time.monotonic() >= deadline:
            return text or "unknown"
        time.sleep(0.01)
