"""The lock of a plan's state files (`.orch/<planId>/state.lock`), as the run takes it.

`doit answer` and `doit forget` take the same lock with the `filelock` package: a `flock`
on the same file. A run takes it for every started task (a line in the journal) and every
write; filelock spends ~150 µs of CPU on each (it canonicalises the path, tracks forks),
this one open, flock and close (issue 25).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

from orchlib.fsutil import flock_within, open_private

RETRY = 0.01  # seconds between tries while another process holds it


class StateLock:
    """Exclusive between this process's threads and other processes; not reentrant."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self._threads = threading.Lock()
        self._fd = -1

    def __enter__(self) -> None:
        if not self._threads.acquire(timeout=self.timeout):
            raise _timeout(self.path)
        try:
            self._fd = self._take()
        except BaseException:
            self._threads.release()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        fd, self._fd = self._fd, -1
        try:
            os.close(fd)  # drops the flock
        finally:
            self._threads.release()

    def _take(self) -> int:
        # Opened on every take: a lock file replaced meanwhile is the one the others lock.
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if flock_within(fd, self.timeout, RETRY):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        raise _timeout(self.path)


def _timeout(path: Path) -> Exception:
    """filelock's Timeout, as `doit answer`'s lock raises; imported only when it happens."""
    import filelock

    return filelock.Timeout(str(path))
