"""Local processes: start gated in their own session writing to a log, watch, shut down.

Every subprocess orchlib starts goes through `spawn`. The process runs in its own
session (so a dying orchestrator does not take it down, and its whole group can be
signalled) with stdout and stderr appended straight to the attempt's log file (so its
output is kept without us). It starts behind a gate: `sh` waits for one line on stdin
before it `exec`s the real argv, which lets the caller record pid and pgid on disk
before the agent can print a byte.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from orchlib.executors.base import TERM_GRACE
from orchlib.fsutil import ensure_dir

# The argv follows as "$@": plan text is never part of this script.
_GATE = 'IFS= read -r _ || exit 75; exec "$@"'
_GATE_FROM = 'IFS= read -r _ || exit 75; exec "$@" < "$ORCH_STDIN_FILE"'
# For commands whose exit code decides them: the code outlives us in a file, so a run that
# adopts the command after a crash still learns it (a non-child's status is unknowable).
_GATE_EXIT = (
    'IFS= read -r _ || exit 75; "$@" < "$ORCH_STDIN_FILE"; c=$?; '
    'echo "$c" > "$ORCH_EXIT_FILE"; exit "$c"'
)


@dataclass
class Proc:
    """A running (or finished) agent process: our child, or one adopted from a crashed run."""

    pid: int
    start_time: str
    popen: subprocess.Popen[bytes] | None = None
    stdin: IO[bytes] | None = field(default=None, repr=False)
    returncode: int | None = None
    exit_file: Path | None = None

    @property
    def pgid(self) -> int:
        """The process group: the agent is its session and group leader."""
        return self.pid

    def poll(self) -> int | None:
        """The exit code once the process has ended; if adopted, from its exit file or -1."""
        if self.returncode is None:
            if self.popen is not None:
                self.returncode = self.popen.poll()
            elif not is_alive(self.pid, self.start_time):
                self.returncode = read_exit_file(self.exit_file)
        return self.returncode

    def wait(self, timeout: float) -> None:
        """Wait at most `timeout` seconds for our child to end (an adopted one: just sleep)."""
        if self.popen is None:
            time.sleep(timeout)
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    def send_enter(self) -> bool:
        """Write a newline to the agent's stdin, if we still hold it open."""
        if self.stdin is None:
            return False
        try:
            self.stdin.write(b"\n")
            self.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            return False
        return True

    def signal_group(self, sig: int) -> None:
        """Signal the whole process group, ignoring a group that is already gone.

        A group outlives its leader while members remain, and its number cannot be reused
        then; but once the leader's pid belongs to another process, the group is not ours.
        """
        if start_time(self.pid) not in ("", self.start_time):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def terminate(self, grace: float = TERM_GRACE) -> None:
        """SIGTERM the group, give it `grace` seconds, then SIGKILL whatever is left of it."""
        if self.poll() is None:
            self.signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        self.signal_group(signal.SIGKILL)
        self.reap()

    def reap(self) -> None:
        """Collect our child's exit status and close our end of its stdin."""
        if self.stdin is not None:
            with contextlib.suppress(OSError):
                self.stdin.close()
            self.stdin = None
        if self.popen is not None:
            self.returncode = self.popen.wait()


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    stdin_file: Path | None = None,
    keep_stdin: bool = False,
    before_start: Callable[[Proc], None] | None = None,
    exit_file: Path | None = None,
) -> Proc:
    """Start argv gated; call `before_start(proc)`, then let it run.

    stdin is `stdin_file` (the prompt), else a pipe we keep open (`keep_stdin`, so a
    stalled agent can be sent Enter), else empty. With `exit_file` the exit code is also
    written there (and stdin is never kept open).
    """
    ensure_dir(log.parent)
    keep_stdin = keep_stdin and exit_file is None
    script, child_env = _gate_script(env, stdin_file, keep_stdin)
    if exit_file is not None:
        script, child_env["ORCH_EXIT_FILE"] = _GATE_EXIT, str(exit_file)
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        popen = subprocess.Popen(
            ["/bin/sh", "-c", script, "orchlib-gate", *argv],
            cwd=cwd,
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
    assert popen.stdin is not None
    proc = Proc(popen.pid, start_time(popen.pid), popen, popen.stdin, exit_file=exit_file)
    _open_gate(proc, keep_stdin, before_start)
    return proc


def _gate_script(
    env: Mapping[str, str], stdin_file: Path | None, keep_stdin: bool
) -> tuple[str, dict[str, str]]:
    child_env = dict(env)
    if stdin_file is not None:
        child_env["ORCH_STDIN_FILE"] = str(stdin_file)
        return _GATE_FROM, child_env
    if not keep_stdin:
        child_env["ORCH_STDIN_FILE"] = os.devnull
        return _GATE_FROM, child_env
    return _GATE, child_env


def _open_gate(proc: Proc, keep_stdin: bool, before_start: Callable[[Proc], None] | None) -> None:
    try:
        if before_start is not None:
            before_start(proc)
    except BaseException:
        proc.reap()  # closing stdin unopened: the gate exits 75 and nothing runs
        raise
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    if not keep_stdin:
        proc.stdin.close()
        proc.stdin = None


def read_exit_file(path: Path | None) -> int:
    """The exit code a gate wrote; -1 when there is none (the process was not gated so)."""
    try:
        return int(path.read_text().strip()) if path is not None else -1
    except (OSError, ValueError):
        return -1


def start_time(pid: int) -> str:
    """The kernel's start time of `pid` (guards against pid reuse); "" where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def is_alive(pid: int, started: str) -> bool:
    """True while `pid` runs and is the same process that started at `started`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return _kill_zero(pid)
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and (not started or fields[19] == started)


def _kill_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
