"""LocalExecutor: jobs as processes of this machine (the `process` module does the work).

A job runs gated in its own session, its output appended straight to `job.log` by the
process itself, so it outlives a killed orchestrator and the next run adopts it by its ref:
pid and kernel start time (a reused pid is not taken for it), plus the exit file of a
command whose exit code decides it and the terminal id that finds its strays.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from orchlib.executors import strays
from orchlib.executors.base import TERM_GRACE, Handle, Job, Step
from orchlib.executors.logwatch import LogWatch
from orchlib.executors.process import Proc, spawn
from orchlib.executors.sandbox import probe
from orchlib.executors.waiter import Waiter
from orchlib.fsutil import ensure_dir, write_private
from orchlib.plan.environment import Snapshot

HOST = "local"


class LocalHandle:
    """A process of this machine: our child, or one an earlier run started."""

    host = HOST

    def __init__(
        self, proc: Proc, log: Path, terminal_id: str, wake_fd: int | None,
        logwatch: LogWatch | None = None, sweeper: strays.Sweeper | None = None,
    ) -> None:  # fmt: skip
        self.proc, self.log, self.terminal_id = proc, log, terminal_id
        self._wake_fd = wake_fd
        self._waiter: Waiter | None = None
        self._logwatch = logwatch
        self._sweeper = sweeper

    @property
    def ref(self) -> dict[str, object]:
        """pid, process group and start time; the exit file and terminal id when known."""
        ref: dict[str, object] = {
            "executor": "local", "pid": self.proc.pid, "pgid": self.proc.pgid,
            "start": self.proc.start_time, "log": str(self.log),
        }  # fmt: skip
        if self.proc.exit_file is not None:
            ref["exitFile"] = str(self.proc.exit_file)
        if self.terminal_id:
            ref["terminalId"] = self.terminal_id
        return ref

    @property
    def returncode(self) -> int | None:
        """The exit code once known (without polling)."""
        return self.proc.returncode

    def wait_output(self, timeout: float | None) -> None:
        """Sleep until the log grows, the process exits, the run is interrupted, or timeout."""
        if self._waiter is None:
            self._waiter = Waiter(self.log, self.proc.pid, self._wake_fd)
        self._waiter.wait(timeout)

    def watch(self, step: Step) -> bool:
        """Step `step` on the executor's one watching thread (`logwatch`); False: wait here."""
        return self._logwatch is not None and self._logwatch.add(self.log, step, pid=self.proc.pid)

    def poll(self) -> int | None:
        """The exit code once ended (an adopted process: from its exit file, else -1)."""
        return self.proc.poll()

    def send_enter(self) -> bool:
        """A newline on stdin, while we hold it."""
        return self.proc.send_enter()

    def terminate(self, grace: float = TERM_GRACE) -> None:
        """TERM the group, KILL after `grace`; then the strays that left the group."""
        self.proc.terminate(grace)
        if self._sweeper is not None:  # on its thread: not between a DONE and its stamp
            self._sweeper.submit(self.terminal_id, grace)
        else:
            strays.stop(self.terminal_id, grace=grace)

    def close(self) -> None:
        """Give the kernel watches back."""
        if self._waiter is not None:
            self._waiter.close()
            self._waiter = None


class LocalExecutor:
    """Runs jobs on this machine. `wake_fd` becomes readable when the run is interrupted."""

    name = "local"

    def __init__(self, wake_fd: int | None = None, stopped: Callable[[], bool] | None = None):
        self.wake_fd = wake_fd
        self._stopped = stopped or (lambda: False)
        self._logwatch = LogWatch(wake_fd)  # its thread starts with the first attempt
        self._sweeper = strays.Sweeper()
        self._environ = Snapshot(os.environ)  # the environment the run started in

    def start(self, job: Job, before_start: Callable[[Handle], None] | None = None) -> LocalHandle:
        """Start `job` behind the gate; `before_start` runs before it may print a byte."""
        stdin_file = job.stdin_file
        if job.stdin is not None and stdin_file is None:
            stdin_file = job.log.with_suffix(".stdin")
            ensure_dir(stdin_file.parent)
            write_private(stdin_file, job.stdin)
        handle: list[LocalHandle] = []

        def opened(proc: Proc) -> None:
            handle.append(self._handle(proc, job))
            if before_start is not None:
                before_start(handle[0])

        env = self._environ.compose(job.policy, job.logins, job.env)  # DESIGN §13, built here
        proc = spawn(job.argv, cwd=job.cwd, env=env, log=job.log,
                     stdin_file=stdin_file, keep_stdin=job.keep_stdin and job.stdin is None,
                     before_start=opened, exit_file=job.exit_file,
                     sandbox=job.sandbox)  # fmt: skip
        return handle[0] if handle else self._handle(proc, job)

    def adopt(self, ref: Mapping[str, object]) -> LocalHandle | None:
        """The process `ref` names (maybe ended since: then `poll` says how); None if the ref
        names no process of this machine."""
        pid = ref.get("pid")
        if ref.get("executor", HOST) != HOST or not isinstance(pid, int) or pid <= 0:
            return None
        exit_file = ref.get("exitFile")
        proc = Proc(pid=pid, start_time=str(ref.get("start", "")),
                    exit_file=Path(exit_file) if isinstance(exit_file, str) else None)  # fmt: skip
        log = Path(str(ref.get("log", os.devnull)))
        terminal_id = str(ref.get("terminalId", ""))
        return LocalHandle(proc, log, terminal_id, self.wake_fd, self._logwatch, self._sweeper)

    def run(self, job: Job, timeout: float | None) -> int:
        """`job` to its end; -1 when it was killed at `timeout` or by an interrupt."""
        handle = self.start(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while handle.poll() is None:
                left = None if deadline is None else deadline - time.monotonic()
                if self._stopped() or (left is not None and left <= 0):
                    handle.terminate(0.5)
                    return -1
                handle.proc.wait(0.1 if left is None else min(left, 0.1))
        finally:
            handle.close()
        code = handle.poll()
        return -1 if code is None else code

    def preflight(
        self, checkout_root: Path, clis: Sequence[str], sandbox: bool = False
    ) -> list[str]:
        """A line per CLI that is neither on PATH nor an executable path; with `sandbox`,
        one if bwrap cannot make a sandbox here."""
        lines = [
            f"{cli}: not found on PATH"
            for cli in clis
            if shutil.which(cli) is None and not os.access(cli, os.X_OK)
        ]
        refused = probe() if sandbox else None
        return [*lines, refused] if refused else lines

    def close(self) -> None:
        """Stop the watching thread, once the strays of ended attempts are stopped (local
        processes are stopped by their handles)."""
        self._sweeper.drain()
        self._logwatch.close()

    def _handle(self, proc: Proc, job: Job) -> LocalHandle:
        terminal_id = job.env.get("TERMINAL_ID", "")
        return LocalHandle(proc, job.log, terminal_id, self.wake_fd, self._logwatch, self._sweeper)
