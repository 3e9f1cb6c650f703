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
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from orchlib.executors import cpus
from orchlib.executors.base import TERM_GRACE
from orchlib.executors.sandbox import Sandbox, wrap
from orchlib.fsutil import ensure_dir, open_private

# The argv follows as "$@": plan text is never part of this script.
_GATE = 'IFS= read -r _ || exit 75; exec "$@"'
_GATE_FROM = 'IFS= read -r _ || exit 75; exec "$@" < "$ORCH_STDIN_FILE"'
# For commands whose exit code decides them: the code outlives us in a file, so a run that
# adopts the command after a crash still learns it (a non-child's status is unknowable).
_GATE_EXIT = (
    'IFS= read -r _ || exit 75; "$@" < "$ORCH_STDIN_FILE"; c=$?; '
    'umask 077; echo "$c" > "$ORCH_EXIT_FILE"; exit "$c"'  # the agent ran with the user's umask
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
    sandbox: Sandbox | None = None,
) -> Proc:
    """Start argv gated; call `before_start(proc)`, then let it run.

    stdin is `stdin_file` (the prompt), else a pipe we keep open (`keep_stdin`, so a
    stalled agent can be sent Enter), else empty. With `exit_file` the exit code is also
    written there (and stdin is never kept open). With `sandbox` the argv runs inside it
    (the gate and its exit file stay outside).
    """
    ensure_dir(log.parent)
    keep_stdin = keep_stdin and exit_file is None
    script, child_env = _gate_script(env, stdin_file, keep_stdin)
    if exit_file is not None:
        script, child_env["ORCH_EXIT_FILE"] = _GATE_EXIT, str(exit_file)
    log_fd = open_private(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        boxed = wrap(argv, sandbox, env) if sandbox else argv
        with cpus.for_children():  # the run's threads share a CPU; its processes do not
            popen = subprocess.Popen(
                ["/bin/sh", "-c", script, "orchlib-gate", *boxed],
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
        stat = _proc_stat(pid)
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_stat(pid: int) -> str:
    """/proc/<pid>/stat, read in one call (read twice per attempt: no pathlib, no buffering)."""
    fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096).decode("utf-8", "replace")
    finally:
        os.close(fd)


def is_alive(pid: int, started: str) -> bool:
    """True while `pid` runs and is the same process that started at `started`."""
    try:
        stat = _proc_stat(pid)
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
