"""A real Dask cluster on 127.0.0.1 for the tests: `dask scheduler` and `dask worker`
processes, started and stopped as a user would (no nanny: a worker is one process to kill)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

QUIET = {"DASK_LOGGING__DISTRIBUTED": "error"}
DASK = os.path.join(os.path.dirname(sys.executable), "dask")  # the venv's, as installed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaskCluster:
    """A scheduler plus workers, each a separate process; `address` is the scheduler's."""

    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: dict[int, tuple[int | None, Mapping[str, str]]] = {}  # pid: how started
        self.scheduler = self._spawn(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"], {}
        )  # fmt: skip

    def _spawn(self, argv: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env={**os.environ, **QUIET, **env}, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def add_worker(
        self, agents: int | None = 2, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a worker (with `--resources agent=N` unless agents is None)."""
        argv = [DASK, "worker", self.address, "--nthreads", "3", "--no-nanny",
                "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "60"]  # fmt: skip
        if agents is not None:
            argv += ["--resources", f"agent={agents}"]
        proc = self._spawn(argv, env or {})
        self.workers[proc.pid] = (agents, env or {})
        return proc

    def replace_dead(self) -> None:
        """Start a worker like each one a test killed."""
        for proc in list(self.procs):
            if proc.pid in self.workers and proc.poll() is not None:
                agents, env = self.workers.pop(proc.pid)
                self.procs.remove(proc)
                self.add_worker(agents, env)

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout="30s", set_as_default=False)

    def wait_workers(self, client: Any, count: int, timeout: float = 60) -> dict[str, int]:
        """Wait until exactly `count` workers are up; their addresses and pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = client.run(os.getpid)
            if len(pids) == count:
                return dict(pids)
            time.sleep(0.1)
        raise AssertionError(f"expected {count} dask workers, have {len(client.run(os.getpid))}")

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first, the scheduler last
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
