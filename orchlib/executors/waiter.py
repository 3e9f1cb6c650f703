"""Waiting for an attempt's output: inotify on its log and a pidfd on its process.

Where the kernel has both (Linux 5.3+), a marker is seen as soon as it is written and an
exit as soon as it happens; elsewhere the wait polls every 50 ms.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import threading
from pathlib import Path


class Waiter:
    """Sleeps until the log grows, the process exits, the run is interrupted, or a deadline.

    Uses inotify on the log and a pidfd on the process where the kernel has them (so a
    marker is seen as soon as it is written); elsewhere it polls every 50 ms.
    """

    FALLBACK = 0.05

    def __init__(self, log: Path, pid: int, wake_fd: int | None) -> None:
        self._poll = select.poll()
        self._watch = _INOTIFY.watch(log)
        self._inotify = self._watch[0] if self._watch else None
        self._pidfd = _pidfd(pid)
        for fd in (self._inotify, self._pidfd, wake_fd):
            if fd is not None:
                self._poll.register(fd, select.POLLIN)
        self._exact = self._inotify is not None and self._pidfd is not None

    def wait(self, timeout: float | None) -> None:
        """Block until something may have happened, at most `timeout` seconds."""
        if not self._exact:
            timeout = self.FALLBACK if timeout is None else min(timeout, self.FALLBACK)
        ms = None if timeout is None else max(0, int(timeout * 1000) + 1)
        self._poll.poll(ms)
        if self._inotify is not None:
            _drain(self._inotify)

    def close(self) -> None:
        """Release the kernel handles (the inotify instance goes back to the pool)."""
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None
        if self._watch is not None:
            _INOTIFY.release(self._watch)
            self._watch = None


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


_IN_MODIFY = 0x00000002


class _InotifyPool:
    """inotify instances, reused: closing one costs ~10 ms (the kernel waits for RCU),
    while adding and removing a watch costs microseconds."""

    SIZE = 64

    def __init__(self) -> None:
        self._free: list[int] = []
        self._lock = threading.Lock()
        self._libc: ctypes.CDLL | None = None

    def watch(self, path: Path) -> tuple[int, int] | None:
        """(instance fd, watch descriptor) for modifications of `path`; None if unsupported."""
        libc = self._lib()
        if libc is None:
            return None
        fd = self._take(libc)
        if fd < 0:
            return None
        wd = int(libc.inotify_add_watch(fd, os.fsencode(path), _IN_MODIFY))
        if wd < 0:
            self._give(fd)
            return None
        return fd, wd

    def release(self, watch: tuple[int, int]) -> None:
        """Remove the watch and keep the instance for the next attempt."""
        fd, wd = watch
        libc = self._lib()
        if libc is not None:
            libc.inotify_rm_watch(fd, wd)
        _drain(fd)
        self._give(fd)

    def _lib(self) -> ctypes.CDLL | None:
        if self._libc is None and hasattr(os, "pidfd_open"):  # Linux 5.3+: both or neither
            with contextlib.suppress(OSError):
                self._libc = ctypes.CDLL(None, use_errno=True)
        if self._libc is None or not hasattr(self._libc, "inotify_init1"):
            return None
        return self._libc

    def _take(self, libc: ctypes.CDLL) -> int:
        with self._lock:
            if self._free:
                return self._free.pop()
        return int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))

    def _give(self, fd: int) -> None:
        with self._lock:
            if len(self._free) < self.SIZE:
                self._free.append(fd)
                return
        os.close(fd)


_INOTIFY = _InotifyPool()


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError, OSError):
        while os.read(fd, 4096):
            pass
