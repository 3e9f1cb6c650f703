"""The dask executor (DESIGN §8): attempts run on the workers of a Dask distributed cluster.

Each attempt is one Dask task (`dask_worker.run_attempt`) needing one `agent` resource.
Its output arrives as Dask events on this run's topic and is appended to the attempt's log
here, so markers, logs and adoption work on the log as with `local`. The cluster is
reached on first use only: a run that dispatches nothing never contacts it.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchlib.errors import ConfigError, OrchError
from orchlib.executors.base import Handle, Job
from orchlib.executors.dask_cluster import Cluster, connect, never_reruns, preflight
from orchlib.executors.dask_handle import DaskHandle, EndedHandle
from orchlib.executors.dask_worker import Spec, claim_name, control, run_attempt
from orchlib.executors.local import LocalExecutor
from orchlib.executors.logwatch import LogWatch
from orchlib.records import replace

LEASE_EVERY = 2.0  # the lease moves this often; workers give up on it after 10 s


class DaskExecutor:
    """Runs attempts on a Dask cluster: `tcp://host:port`, or `local:N` worker processes."""

    name = "dask"

    def __init__(
        self,
        scheduler: str = "",
        wake_fd: int | None = None,
        stopped: Callable[[], bool] | None = None,
    ) -> None:
        if not scheduler:
            raise ConfigError(
                "the dask executor needs a scheduler: --scheduler tcp://HOST:PORT or local:N "
                "(or ORCH_DASK_SCHEDULER)"
            )
        self.scheduler, self.wake_fd = scheduler, wake_fd
        self._stopped = stopped or (lambda: False)
        self.topic = f"orchlib-{secrets.token_hex(6)}"
        self._cluster: Cluster | None = None
        self._handles: dict[str, DaskHandle] = {}
        self._lock = threading.Lock()  # connecting
        self._hlock = threading.Lock()  # the attempts
        self._closing = threading.Event()
        self._claims = True
        self.logwatch = LogWatch(wake_fd)  # follows every attempt's log from one thread

    @property
    def client(self) -> Any:
        """The connected client (connecting, subscribing and starting the lease on first use)."""
        with self._lock:
            if self._cluster is None:
                self._cluster = connect(self.scheduler)
                client = self._cluster.client
                self._claims = not never_reruns(client)
                client.subscribe_topic(self.topic, self._on_event)
                client.subscribe_topic("all", self._on_cluster_event)
                threading.Thread(target=self._keep_lease, daemon=True).start()
            return self._cluster.client

    def start(self, job: Job, before_start: Callable[[Handle], None] | None = None) -> DaskHandle:
        """Submit the attempt and wait until it runs on a worker; before_start sees the host
        before any of its output reaches the log."""
        if job.near:  # a verify: where its attempt ran (elsewhere if that worker is gone)
            handle = self._submit(job, resources=None, workers=[job.near], loose=True)
        else:
            handle = self._submit(job, resources={"agent": 1}, workers=None)
        while not handle.started():
            handle.wait_output(0.5)
            if self._interrupted():
                handle.terminate(0)
                break
        if handle.poll() is None and before_start is not None:
            try:
                before_start(handle)
            except BaseException:
                handle.terminate(0)
                raise
        handle.open_gate()
        return handle

    def run(self, job: Job, timeout: float | None, host: str | None = None) -> int:
        """A short command (verify) to its end, on `host` if given; -1 if it could not finish."""
        handle = self._submit(job, resources=None, workers=[host] if host else None)
        handle.open_gate()
        deadline = None if timeout is None else time.monotonic() + timeout
        while handle.poll() is None and not self._interrupted():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            handle.wait_output(0.5 if left is None else min(left, 0.5))
        handle.terminate(2.0)
        return handle.poll() if handle.poll() is not None else -1  # type: ignore[return-value]

    def adopt(self, ref: Mapping[str, object]) -> Handle | None:
        """An attempt of a killed run. A remote one is never followed (its worker stops
        agents whose orchestrator is gone; we make sure): it has ended, and its log holds
        what it printed. A local one (the run before used `local`) is the local executor's."""
        if ref.get("executor", "local") == "local":
            return LocalExecutor(self.wake_fd, self._stopped).adopt(ref)
        host, token = str(ref.get("host", "")), str(ref.get("token", ""))
        if host and token:
            with contextlib.suppress(OrchError):  # unreachable: the worker stops it anyway
                self.control(host, token, "stop", 2.0)
        return EndedHandle(ref)

    def preflight(
        self, checkout_root: Path, clis: Sequence[str], sandbox: bool = False
    ) -> list[str]:
        """One line per worker lacking the checkout, an agent CLI or a working bwrap."""
        return preflight(self.client, checkout_root, clis, sandbox)

    def control(self, host: str, token: str, action: str, grace: float = 5.0) -> bool:
        """Ask the attempt's worker to send Enter or stop it; False when it could not."""
        try:
            answers = self.client.run(control, token, action, grace, workers=[host])
        except Exception:  # the worker is gone: so is the group
            return False
        return bool(answers.get(host, False))

    def forget(self, handle: DaskHandle, finished: bool) -> None:
        """Drop an attempt; a finished one's claim too (a lost one's stays: it is what stops
        Dask from running that agent again). `finished` only from a thread that may block."""
        with self._hlock:
            self._handles.pop(handle.token, None)
        if finished and self._claims and not self._closing.is_set():
            with contextlib.suppress(Exception):
                self._event(claim_name(handle.token)).clear()

    def close(self) -> None:
        """Stop what still runs, release the cluster (a LocalCluster ends here)."""
        self._closing.set()
        for handle in self._running():
            handle.terminate(2.0)
        if self._cluster is not None:
            client = self._cluster.client
            for topic in (self.topic, "all"):  # else the scheduler writes to a closed comm
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(topic)
            with contextlib.suppress(Exception):  # a shared scheduler keeps no run's output
                client.run_on_scheduler(_forget_topic, self.topic)
            self._cluster.close()
        self.logwatch.close()

    def _submit(
        self, job: Job, resources: dict[str, int] | None, workers: Any, loose: bool = False
    ) -> DaskHandle:
        token = secrets.token_hex(8)
        handle = DaskHandle(self, job, token)
        env = {k: str(v) for k, v in job.env.items()}
        argv, cwd = tuple(job.argv), str(job.cwd)
        spec = Spec(token, self.topic, self.lease, argv, cwd, env, job.stdin, job.keep_stdin)
        spec = replace(spec, claim=self._claims, policy=job.policy, logins=job.logins,
                       sandbox=job.sandbox)  # fmt: skip
        with self._hlock:
            self._handles[token] = handle
        handle.future = self.client.submit(
            run_attempt,
            spec,
            key=f"orchlib-{job.key}-{token}",
            pure=False,
            resources=resources,
            workers=workers,
            allow_other_workers=loose,
        )
        handle.future.add_done_callback(handle.on_done)
        return handle

    @property
    def lease(self) -> str:
        return f"{self.topic}-lease"

    def _event(self, name: str) -> Any:
        from distributed import Event

        return Event(name, client=self.client)

    def _interrupted(self) -> bool:
        fd = self.wake_fd
        return self._stopped() or (fd is not None and bool(select.select([fd], [], [], 0)[0]))

    def _running(self) -> list[DaskHandle]:
        with self._hlock:  # Dask's threads add and drop attempts as we look
            return list(self._handles.values())

    def _on_event(self, event: tuple[float, Mapping[str, Any]]) -> None:
        msg = event[1]
        handle = self._handles.get(str(msg.get("t")))
        if handle is not None:
            handle.on_event(msg)

    def _on_cluster_event(self, event: tuple[float, Mapping[str, Any]]) -> None:
        """A worker left the cluster: its attempts are lost (their groups died with it)."""
        msg = event[1]
        if msg.get("action") != "remove-worker":
            return
        for handle in self._running():
            if handle.host == msg.get("worker") and handle.poll() is None:
                handle.lose()
                handle._release()  # so Dask does not run it again elsewhere

    def _keep_lease(self) -> None:
        """Move the lease while we live: a worker stops agents whose lease stands still."""
        from distributed import Variable

        lease, beat = Variable(self.lease, client=self.client), 0
        while not self._closing.wait(0 if beat == 0 else LEASE_EVERY):
            beat += 1
            with contextlib.suppress(Exception):
                lease.set(beat)


def _forget_topic(topic: str, dask_scheduler: Any) -> None:
    """Drop the run's events from the scheduler (it keeps the last 1,000 of every topic).
    Dask has no public call for it; where its internals differ, they are simply kept."""
    dask_scheduler._broker._topics.pop(topic, None)
