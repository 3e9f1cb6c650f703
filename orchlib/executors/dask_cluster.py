"""Reaching a Dask cluster: connect to a scheduler or start a LocalCluster, give every worker
an `agent` resource, and check each worker can run the plan before anything is dispatched."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchlib.errors import ConfigError
from orchlib.executors import sandbox as sandboxes
from orchlib.fsutil import make_private_dirs, write_private
from orchlib.layout import ORCH

LOCAL_AGENTS = 2  # agents per worker of a `local:N` cluster (and one thread more, for verify)
CONNECT_TIMEOUT = "10s"
WORKERS_WAIT = 10.0
PROBE_DIR = ORCH


@dataclass
class Cluster:
    """A connected client, and the LocalCluster we started (None for an existing cluster)."""

    client: Any
    local: Any = None
    address: str = ""

    def close(self) -> None:
        """Disconnect; a LocalCluster's workers end here (they end with `doit`)."""
        with contextlib.suppress(Exception):
            self.client.close()
        if self.local is not None:
            with contextlib.suppress(Exception):
                self.local.close()


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "the dask executor needs the 'distributed' package: pip install 'orchlib[dask]'"
        ) from None
    return distributed


def connect(scheduler: str) -> Cluster:
    """`local:N` starts N local worker processes; anything else is a scheduler address."""
    distributed = _distributed()
    if scheduler.startswith("local:"):
        return _start_local(distributed, scheduler)
    address = scheduler if "://" in scheduler else f"tcp://{scheduler}"
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot reach the dask scheduler at {address}: {exc}") from None
    _give_agent_slots(client)
    return Cluster(client, None, address)


def _start_local(distributed: Any, scheduler: str) -> Cluster:
    count = scheduler.removeprefix("local:")
    if not count.isdigit() or int(count) < 1:
        raise ConfigError(f"--scheduler {scheduler!r}: local:N needs a worker count N of 1 or more")
    # Our own scheduler may be strict: a worker death fails the task instead of re-running it.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # inherited by the workers
    with _no_ctrl_c():
        local = _local_cluster(distributed, int(count))
    client = distributed.Client(local, set_as_default=False)
    return Cluster(client, local, local.scheduler_address)


def _local_cluster(distributed: Any, count: int) -> Any:
    return distributed.LocalCluster(
        n_workers=count,
        threads_per_worker=LOCAL_AGENTS + 1,
        processes=True,
        resources={"agent": LOCAL_AGENTS},
        host="127.0.0.1",
        dashboard_address=None,
        # Its HTTP endpoints still listen: on a free port, never clashing with 8787.
        scheduler_kwargs={"allowed_failures": 0, "dashboard_address": ":0"},
        silence_logs=40,  # logging.ERROR
    )


@contextlib.contextmanager
def _no_ctrl_c() -> Iterator[None]:
    """Start the workers with SIGINT ignored (they inherit it): Ctrl-C in a terminal reaches
    the whole process group, and stopping the run is `doit`'s job, not a traceback each."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _give_agent_slots(client: Any) -> None:
    """Workers started without `--resources agent=N` get one agent slot (also later ones)."""
    from orchlib.executors.dask_slots import AgentSlots

    client.register_plugin(AgentSlots(), name=AgentSlots.name)


def preflight(client: Any, root: Path, clis: Sequence[str], sandbox: bool = False) -> list[str]:
    """One line per worker that cannot run the plan: no workers, no checkout, a missing CLI."""
    try:  # workers started with the scheduler may still be coming up
        client.wait_for_workers(1, timeout=WORKERS_WAIT)
    except (TimeoutError, OSError):
        return [
            f"no dask workers at {client.scheduler.address} after {WORKERS_WAIT:g}s: "
            "start some with `dask worker`"
        ]
    probe_dir = root / PROBE_DIR
    make_private_dirs(probe_dir)
    marker = probe_dir / f"dask-probe-{secrets.token_hex(6)}"
    token = secrets.token_hex(8)
    write_private(marker, token.encode())
    try:
        extra = (True,) if sandbox else ()  # the probe's call stays as it was without one
        answers = client.run(probe, str(marker), token, list(clis), *extra, on_error="return")
    finally:
        with contextlib.suppress(OSError):
            marker.unlink()
    problems = []
    for worker, lacks in sorted(answers.items()):
        if isinstance(lacks, BaseException):
            lacks = [f"a working orchlib[dask] ({type(lacks).__name__}: {lacks})"]
        if lacks:
            problems.append(f"dask worker {worker} lacks " + "; ".join(lacks))
    return problems


def probe(marker: str, token: str, clis: Sequence[str], sandbox: bool = False) -> list[str]:
    """What this worker's host lacks to run the plan (run on each worker)."""
    missing, root = [], Path(marker).parent.parent
    try:
        seen = Path(marker).read_text() == token
    except OSError:
        seen = False
    if not seen:
        missing.append(
            f"the checkout at {root} (shared file system needed; {socket.gethostname()} "
            f"cannot read {PROBE_DIR}/{Path(marker).name})"
        )
    if not _found("setpriv"):
        missing.append("setpriv on PATH (util-linux: it ties an agent's life to its worker)")
    missing += [f"agent CLI {cli!r} on PATH" for cli in clis if not _found(cli)]
    refused = sandboxes.probe() if sandbox else None
    return [*missing, f"a working sandbox ({refused})"] if refused else missing


def _found(cli: str) -> bool:
    return shutil.which(cli) is not None or os.access(cli, os.X_OK)


def never_reruns(client: Any) -> bool:
    """True when the scheduler fails a task whose worker died instead of running it again
    (allowed-failures 0, as in a `local:N` cluster): attempts need no claim then."""
    try:
        return client.run_on_scheduler(_allowed_failures) == 0  # type: ignore[no-any-return]
    except Exception:  # a scheduler that refuses to run our code: assume it re-runs
        return False


def _allowed_failures(dask_scheduler: Any) -> int:
    return int(dask_scheduler.allowed_failures)
