"""One thread that watches every local attempt of a run: one inotify instance for all their
logs, a pidfd per process, the run's wake fd, and each watcher's own deadline.

A thread per attempt, each reading and scanning its log, turns into a GIL convoy past a few
dozen loud agents (256 threads: 0 of 256 × 10 MB done in 420 s, issue 25). Here a *step*
per attempt (a callable from the run layer: read some of the log, decide, say when to be
called again) runs on this one thread whenever its log grew, its process ended, the run
was interrupted or its deadline passed; steps are taken in turns, so a loud agent cannot
starve a quiet one. Linux only (inotify and pidfd); elsewhere `add` says no and the caller
waits on its own thread (`waiter.Waiter`).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import select
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from orchlib.executors.base import Step

_IN_MODIFY = 0x00000002
_IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)
_EXITED_RECHECK = 0.05  # a pidfd said "ended" but the handle does not know yet: ask again


@dataclass(eq=False)
class _Entry:
    step: Step
    wd: int
    pidfd: int | None
    due: float = 0.0  # when to step it next (monotonic)


class LogWatch:
    """Runs the steps of many attempts on one thread (see the module doc)."""

    def __init__(self, wake_fd: int | None) -> None:
        self._libc = _libc()
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._new: list[_Entry] = []
        self._by_wd: dict[int, list[_Entry]] = {}
        self._by_pidfd: dict[int, _Entry] = {}
        self._inotify = -1
        self._epoll: select.epoll | None = None
        self._thread: threading.Thread | None = None
        self._wake_fd = wake_fd
        self._pipe: tuple[int, int] | None = None
        self._closed = False

    def add(self, log: Path, step: Step, pid: int = 0, exit_fd: int | None = None) -> bool:
        """Step `step` on the watching thread from now until it returns None; False when
        this machine cannot watch so (no inotify or pidfd). The job's end is seen by a pidfd
        of `pid`, or by `exit_fd` becoming readable (the caller's; a copy is kept)."""
        with self._lock:
            if self._closed or not self._start():
                return False
            assert self._libc is not None and self._pipe is not None
            wd = int(self._libc.inotify_add_watch(self._inotify, os.fsencode(log), _IN_MODIFY))
            if wd < 0:
                return False
            ended = os.dup(exit_fd) if exit_fd is not None else _pidfd(pid) if pid else None
            self._new.append(_Entry(step, wd, ended))
        with contextlib.suppress(BlockingIOError):
            os.write(self._pipe[1], b"+")
        return True

    def close(self) -> None:
        """Stop the thread (steps still watched are dropped) and give the descriptors back."""
        with self._lock:
            self._closed = True
            thread, pipe = self._thread, self._pipe
        if thread is None or pipe is None:
            return
        with contextlib.suppress(OSError):
            os.write(pipe[1], b"x")
        thread.join(5.0)

    # --- the watching thread --------------------------------------------------------------

    def _start(self) -> bool:
        """Create the kernel objects and the thread on first use (under the lock)."""
        if self._thread is not None:
            return True
        pidfd_open = getattr(os, "pidfd_open", None)
        if self._libc is None or pidfd_open is None:
            return False
        fd = int(self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            return False
        self._inotify, self._pipe = fd, os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll = select.epoll()
        for watched in (fd, self._pipe[0], self._wake_fd):
            if watched is not None:
                self._epoll.register(watched, select.EPOLLIN)
        self._thread = threading.Thread(target=self._run, name="orchlib-logwatch", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        try:
            while self._wait():
                self._steps()
        finally:
            self._release()

    def _wait(self) -> bool:
        """Sleep until an event or the earliest deadline; mark what is due. False: closed."""
        assert self._epoll is not None and self._pipe is not None
        now = time.monotonic()
        due = min((e.due for e in self._entries), default=math.inf)
        timeout = -1.0 if due == math.inf else max(0.0, due - now)
        events = self._epoll.poll(timeout)
        now = time.monotonic()
        for fd, _ in events:
            if fd == self._inotify:
                self._logs_grew(now)
            elif fd == self._pipe[0]:
                _drain(fd)
                if not self._take_new(now):
                    return False
            elif fd == self._wake_fd:  # interrupted: it stays readable, so look once
                self._epoll.unregister(fd)
                self._wake_fd = None
                for entry in self._entries:
                    entry.due = now
            elif fd in self._by_pidfd:
                self._epoll.unregister(fd)  # it stays readable too
                self._by_pidfd.pop(fd).due = now
        return True

    def _take_new(self, now: float) -> bool:
        assert self._epoll is not None
        with self._lock:
            new, self._new = self._new, []
            closed = self._closed
        for entry in new:
            entry.due = now
            self._entries.append(entry)
            self._by_wd.setdefault(entry.wd, []).append(entry)
            if entry.pidfd is not None:
                self._by_pidfd[entry.pidfd] = entry
                self._epoll.register(entry.pidfd, select.EPOLLIN)
        return not closed

    def _logs_grew(self, now: float) -> None:
        try:
            data = os.read(self._inotify, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        at = 0
        while at + _EVENT.size <= len(data):
            wd, mask, _, size = _EVENT.unpack_from(data, at)
            at += _EVENT.size + size
            if mask & _IN_Q_OVERFLOW:  # events were lost: look at everyone
                for entry in self._entries:
                    entry.due = now
            for entry in self._by_wd.get(wd, ()):
                entry.due = now

    def _steps(self) -> None:
        """Step every entry that is due, once each (a step that wants more waits its turn)."""
        now = time.monotonic()
        for entry in [e for e in self._entries if e.due <= now]:
            try:
                after = entry.step(time.monotonic())
            except Exception:  # a step's own failure must not stop the others' watching
                after = None
            if after is None:
                self._drop(entry)
                continue
            if entry.pidfd not in self._by_pidfd:
                after = min(after, _EXITED_RECHECK)  # ended, or no pidfd: keep asking
            entry.due = time.monotonic() + after

    def _drop(self, entry: _Entry) -> None:
        self._entries.remove(entry)
        same = self._by_wd.get(entry.wd, [])
        same.remove(entry)
        if not same:
            self._by_wd.pop(entry.wd, None)
            assert self._libc is not None
            self._libc.inotify_rm_watch(self._inotify, entry.wd)
        if entry.pidfd is not None:
            if self._by_pidfd.pop(entry.pidfd, None) is not None:
                assert self._epoll is not None
                self._epoll.unregister(entry.pidfd)
            os.close(entry.pidfd)

    def _release(self) -> None:
        for entry in list(self._entries):
            self._drop(entry)
        if self._epoll is not None:
            self._epoll.close()
        for fd in (self._inotify, *(self._pipe or ())):
            with contextlib.suppress(OSError):
                os.close(fd)


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "inotify_init1") else None


def _pidfd(pid: int) -> int | None:
    try:
        return int(os.pidfd_open(pid))
    except (OSError, AttributeError):
        return None


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError, OSError):
        while os.read(fd, 4096):
            pass
