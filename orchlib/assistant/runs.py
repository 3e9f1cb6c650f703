"""`run` and `stop_run`: a detached `doit` that outlives the server, and its Ctrl-C.

The run is `python -m orchlib [--executor NAME] [TARGET ...]` (the same program as `doit`,
without needing a dodo.py) in its own session, its output in `.orch/mcp-run.log`. Whether a
run is going is the run lock's answer (`state/runlock.py`), so a `doit` started in a
terminal counts as much as one started here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchlib import executorregistry
from orchlib.errors import ConfigError, LockHeld, OrchError
from orchlib.executors.process import is_alive
from orchlib.fsutil import ensure_dir
from orchlib.layout import Layout
from orchlib.state import runlock

LOG = Layout(Path()).mcp_run_log  # relative to the checkout
START_WAIT = 10.0  # until the run is past its preflight (or ended): a bad plan comes back at once
STOP_WAIT = 60.0  # a stopped run terminates its agents' groups, then kills what is left
POLL = 0.02
OUTPUT_LINES = 40


@dataclass
class Runs:
    """The runs one server started (it reaps them) and the lock that orders starting them."""

    root: Path
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    started: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    def start(self, targets: list[str], executor: str | None, plan_ids: list[str]
              ) -> dict[str, object]:  # fmt: skip
        """Start `doit TARGETS` detached; its pid, or how it ended if it ended at once."""
        argv = [sys.executable, "-m", "orchlib", *_executor_args(executor), *_checked(targets)]
        with self.lock:
            _refuse_while_running(self.root)
            proc = self._spawn(argv)
            code = _wait_started(self.root, proc, plan_ids)
        if code is None:
            threading.Thread(target=self._reap, args=(proc,), daemon=True).start()
            return {"pid": proc.pid, "running": True, "log": LOG.as_posix()}
        self.started.pop(proc.pid, None)
        output = self.output()
        if code == 3:  # a bad plan or configuration: nothing ran
            raise OrchError("\n".join(output or [f"doit exited {code}"]))
        return {"pid": proc.pid, "running": False, "exitCode": code, "output": output}

    def stop(self) -> dict[str, object]:
        """SIGINT to the run holding the lock, as Ctrl-C; waits (bounded) until it ends."""
        pid = runlock.holder_pid(Layout(self.root).orch)
        if pid is None:
            raise ConfigError("no run is going (nothing holds .orch/run.lock)")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_WAIT
        while is_alive(pid, "") or runlock.is_running(Layout(self.root).orch):
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"doit (pid {pid}) got SIGINT and still runs after {STOP_WAIT:.0f} s; "
                    "status shows what it is doing"
                )
            time.sleep(POLL)
        proc = self.started.pop(pid, None)
        code = proc.returncode if proc is not None else None
        return {"pid": pid, "stopped": True, "exitCode": code}

    def output(self) -> list[str]:
        """The last lines `doit` printed in `.orch/mcp-run.log`."""
        try:
            text = (self.root / LOG).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-OUTPUT_LINES:]

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.root / LOG
        ensure_dir(log.parent)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the log shows lines as they come
        try:
            proc = subprocess.Popen(
                argv, cwd=self.root, stdin=subprocess.DEVNULL, stdout=fd,
                stderr=subprocess.STDOUT, start_new_session=True, env=env,
            )  # fmt: skip
        except OSError as exc:
            raise ConfigError(f"cannot start doit: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        self.started[proc.pid] = proc
        return proc

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()  # no zombie while the server lives; the run itself outlives the server


def _checked(targets: list[str]) -> list[str]:
    """Task names as they are, refusing what doit would take as an option."""
    for target in targets:
        if not target or target.startswith("-") or "=" in target:
            raise ConfigError(f"target {target!r}: name a plan or PLAN:TASK")
    return targets


def _executor_args(executor: str | None) -> list[str]:
    if not executor:
        return []
    executorregistry.find(executor)  # a one-line ConfigError naming the known ones
    return ["--executor", executor]


def _refuse_while_running(root: Path) -> None:
    pid = runlock.holder_pid(Layout(root).orch)
    if pid is not None or runlock.is_running(Layout(root).orch):
        raise LockHeld(
            f".orch/run.lock: another doit run holds this checkout's run lock "
            f"(pid {pid or 'unknown'}); "
            "watch it with status, or stop it with stop_run"
        )


def _wait_started(root: Path, proc: subprocess.Popen[bytes], plan_ids: list[str]) -> int | None:
    """None once `proc` has passed its preflight (a plan's state names it as its run) or after
    START_WAIT; its exit code if it ended first (a bad plan, a missing agent CLI: exit 3)."""
    from orchlib import state

    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            return code
        for plan_id in plan_ids:
            current = state.load(Layout(root).plan_dir(plan_id))
            if current is not None and current.run.pid == proc.pid:
                return None
        time.sleep(POLL)
    return None
