"""The dask executor on a real cluster: a `dask scheduler` and two `dask worker --resources
agent=2` processes on 127.0.0.1, with real agent processes (DESIGN §8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from conftest import pid_alive
from daskcluster import DaskCluster

from orchlib.errors import ConfigError
from orchlib.executors import dask_cluster
from orchlib.executors.base import Job
from orchlib.executors.dask import DaskExecutor
from orchlib.executors.dask_handle import DaskHandle
from orchlib.executors.dask_worker import Spec, claim_name, run_attempt

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask")]
CLI = "orch-probe-cli"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """Worker A has an agent CLI on its PATH that worker B lacks."""
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / CLI).write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / CLI).chmod(0o755)
    cl = DaskCluster()
    cl.add_worker(env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    cl.add_worker()
    yield cl
    cl.stop()


@pytest.fixture
def ex(cluster: DaskCluster) -> Iterator[DaskExecutor]:
    executor = DaskExecutor(cluster.address)
    cluster.wait_workers(executor.client, 2)
    yield executor
    executor.close()


def sh(script: str, log: Path, **kw: Any) -> Job:
    return Job(("sh", "-c", script), log.parent, kw.pop("env", {}), log, **kw)


def wait_end(handle: DaskHandle, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while handle.poll() is None and time.monotonic() < deadline:
        handle.wait_output(0.5)
    code = handle.poll()
    assert code is not None, "the attempt did not end"
    return code


def wait_until(predicate: Any, timeout: float = 15) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - start


def test_start_streams_output_and_returns_the_exit_code(ex: DaskExecutor, tmp_path: Path) -> None:
    log, go = tmp_path / "a.log", tmp_path / "go"
    script = f'echo "hi $FOO"; cat; [ -n "$PATH" ] && echo path; pwd; \
        while [ ! -e {go} ]; do sleep 0.02; done; echo after; exit 3'
    seen: list[tuple[str, bytes]] = []

    def before_start(handle: DaskHandle) -> None:
        time.sleep(0.3)  # the agent has printed by now: nothing may be in the log yet
        seen.append((handle.host, log.read_bytes()))

    handle = ex.start(sh(script, log, env={"FOO": "bar"}, stdin=b"the prompt\n"), before_start)
    assert seen[0][0].startswith("tcp://127.0.0.1:") and seen[0][1] == b""
    assert handle.host == seen[0][0] and handle.ref["host"] == handle.host
    wait_until(lambda: b"the prompt" in log.read_bytes())  # streamed while it runs
    assert handle.poll() is None
    go.touch()
    assert wait_end(handle) == 3
    assert log.read_text() == f"hi bar\nthe prompt\npath\n{tmp_path}\nafter\n"
    handle.terminate(1)


def test_exit_file_and_a_missing_folder(ex: DaskExecutor, tmp_path: Path) -> None:
    exit_file = tmp_path / "exit"
    handle = ex.start(sh("exit 4", tmp_path / "b.log", exit_file=exit_file), lambda h: None)
    assert wait_end(handle) == 4 and exit_file.read_text() == "4\n"
    job = Job(("true",), tmp_path / "nowhere", {}, tmp_path / "c.log")
    handle = ex.start(job, lambda h: None)
    assert wait_end(handle) == 127
    assert "orchlib: cannot start the agent" in (tmp_path / "c.log").read_text()


def test_send_enter_reaches_an_agent_that_keeps_stdin(ex: DaskExecutor, tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    handle = ex.start(sh("read x; echo got-enter", log, keep_stdin=True), lambda h: None)
    time.sleep(0.2)
    assert handle.poll() is None
    assert handle.send_enter()
    assert wait_end(handle) == 0 and "got-enter" in log.read_text()
    closed = ex.start(sh("sleep 5", tmp_path / "e.log"), lambda h: None)
    assert not closed.send_enter()  # stdin was not kept open
    closed.terminate(0.1)


def test_terminate_stops_the_whole_group(ex: DaskExecutor, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"trap '' TERM; sleep 60 & echo $! $$ > {pids}; wait"
    handle = ex.start(sh(script, tmp_path / "f.log"), lambda h: None)
    wait_until(lambda: pids.exists() and pids.read_text().strip())
    started = time.monotonic()
    handle.terminate(0.5)
    assert handle.poll() is not None and time.monotonic() - started < 5
    for pid in map(int, pids.read_text().split()):
        wait_until(lambda pid=pid: not pid_alive(pid), timeout=3)


def test_attempts_at_once_use_both_workers_up_to_their_agent_slots(
    ex: DaskExecutor, tmp_path: Path
) -> None:
    go, handles = tmp_path / "go", []
    for i in range(4):  # four agent slots: two on each worker
        script = f"echo {i}-1; while [ ! -e {go} ]; do sleep 0.02; done; echo {i}-2"
        handles.append(ex.start(sh(script, tmp_path / f"m{i}.log"), lambda h: None))
    assert len({h.host for h in handles}) == 2
    fifth: list[DaskHandle] = []
    waiting = threading.Thread(
        target=lambda: fifth.append(ex.start(sh("echo 5", tmp_path / "m5.log"), lambda h: None))
    )
    waiting.start()
    time.sleep(1.0)
    assert not fifth  # no slot is free: it waits in Dask's queue, not on a worker
    # ...while a short command (verify) still runs at once where an attempt ran.
    assert ex.run(sh("echo v", tmp_path / "v.log"), timeout=10, host=handles[0].host) == 0
    go.touch()
    for handle in handles:
        assert wait_end(handle) == 0
    for i in range(4):
        assert (tmp_path / f"m{i}.log").read_text() == f"{i}-1\n{i}-2\n"
    waiting.join(timeout=20)
    assert fifth and wait_end(fifth[0]) == 0


def test_a_failing_before_start_stops_the_attempt(ex: DaskExecutor, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def refuse(handle: DaskHandle) -> None:
        raise OSError("state.json is not writable")

    with pytest.raises(OSError, match="not writable"):
        ex.start(sh(f"echo $$ > {pid_file}; exec sleep 30", tmp_path / "r.log"), refuse)
    time.sleep(2.0)  # it was stopped before or after it could write its pid: both are fine
    if pid_file.exists() and pid_file.read_text().strip():
        wait_until(lambda: not pid_alive(int(pid_file.read_text())), timeout=5)


def test_a_rerun_by_dask_never_starts_a_second_agent(ex: DaskExecutor, tmp_path: Path) -> None:
    """What the scheduler's retry after a worker death would run: the claim is already set."""
    marker = tmp_path / "ran"
    spec = Spec("rerun-token", ex.topic, "", ("touch", str(marker)), str(tmp_path), {})
    from distributed import Event

    Event(claim_name(spec.token), client=ex.client).set()
    future = ex.client.submit(run_attempt, spec, pure=False, resources={"agent": 1})
    assert future.result(timeout=20) == {"lost": True}
    assert not marker.exists()
    Event(claim_name(spec.token), client=ex.client).clear()


def test_preflight_names_the_worker_that_lacks_a_cli(ex: DaskExecutor, tmp_path: Path) -> None:
    workers = ex.client.run(os.getpid)
    lines = ex.preflight(tmp_path, [CLI, "sh"])
    assert len(lines) == 1, lines
    assert lines[0].startswith("dask worker tcp://127.0.0.1:")
    assert lines[0].endswith(f"lacks agent CLI {CLI!r} on PATH")
    assert lines[0].split()[2] in workers
    assert not list((tmp_path / ".orch").iterdir())  # the probe marker is gone again


def test_preflight_names_a_worker_that_cannot_see_the_checkout(
    ex: DaskExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The marker is written where the workers do not look: as if on a disk they lack.
    real = dask_cluster.probe

    def elsewhere(marker: str, token: str, clis: list[str]) -> list[str]:
        return real(marker + ".not-shared", token, clis)

    monkeypatch.setattr(dask_cluster, "probe", elsewhere)
    lines = ex.preflight(tmp_path, [])
    assert len(lines) == 2
    assert all(f"lacks the checkout at {tmp_path} (shared file system needed" in x for x in lines)


def test_run_a_short_command_on_a_given_worker(ex: DaskExecutor, tmp_path: Path) -> None:
    workers = sorted(ex.client.run(os.getpid))
    log = tmp_path / "v.log"
    assert ex.run(sh("echo checked; exit 2", log), timeout=20, host=workers[1]) == 2
    assert log.read_text() == "checked\n"
    for near in workers * 2:  # a verify job starts where its attempt ran
        job = Job(("true",), tmp_path, {}, tmp_path / "near.log", near=near)
        handle = ex.start(job, lambda h: None)
        assert handle.host == near and wait_end(handle) == 0
        handle.terminate(1)
    started = time.monotonic()
    assert ex.run(sh("sleep 30", tmp_path / "w.log"), timeout=0.5) != 0
    assert time.monotonic() - started < 10


def test_bad_scheduler_specs_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"local:N needs a worker count N of 1 or more"):
        _ = DaskExecutor("local:zero").client
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", "0.5s")
    with pytest.raises(ConfigError, match=r"^cannot reach the dask scheduler at tcp://127.0.0.1:"):
        _ = DaskExecutor("127.0.0.1:1").client


def test_worker_sigkill_ends_as_worker_lost_with_no_orphan_and_no_rerun(
    cluster: DaskCluster, ex: DaskExecutor, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    script = f"echo $$ >> {starts}; sleep 60 & echo $! >> {starts}; wait"
    handle = ex.start(sh(script, tmp_path / "g.log"), lambda h: None)
    wait_until(lambda: starts.exists() and len(starts.read_text().split()) == 2)
    agent_pids = [int(p) for p in starts.read_text().split()]
    os.kill(ex.client.run(os.getpid)[handle.host], signal.SIGKILL)
    assert wait_end(handle, timeout=15) == -1 and handle.lost
    for pid in agent_pids:  # the group died with its worker
        wait_until(lambda pid=pid: not pid_alive(pid), timeout=6)
    # A worker started without `--resources` gets one agent slot and takes new attempts.
    cluster.add_worker(agents=None)
    cluster.wait_workers(ex.client, 2)
    slots = ex.client.run_on_scheduler(
        lambda dask_scheduler: {a: w.resources for a, w in dask_scheduler.workers.items()}
    )
    assert sorted(s.get("agent") for s in slots.values()) == [1, 2]
    time.sleep(1.0)
    assert len(starts.read_text().split()) == 2  # Dask did not run the agent again
    again = ex.start(sh("echo fine", tmp_path / "h.log"), lambda h: None)
    assert wait_end(again) == 0


ORCHESTRATOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from orchlib.executors.base import Job
    from orchlib.executors.dask import DaskExecutor

    address, pids = sys.argv[1], Path(sys.argv[2])
    ex = DaskExecutor(address)
    script = f"sleep 60 & echo $! $$ > {pids}; wait"
    ex.start(Job(("sh", "-c", script), pids.parent, {}, pids.parent / "o.log"), lambda h: None)
    print("started", flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize(
    ("how", "local"), [(signal.SIGKILL, False), (signal.SIGSTOP, False), (signal.SIGKILL, True)]
)
def test_agents_of_a_gone_orchestrator_are_stopped(
    cluster: DaskCluster, tmp_path: Path, how: signal.Signals, local: bool
) -> None:
    """SIGKILL: the scheduler drops its client at once (with `local:N`, the workers die with
    it). SIGSTOP (a hung or cut-off orchestrator): its lease stops moving, and the worker
    gives up on it after 10 s."""
    pids = tmp_path / "pids"
    address = "local:1" if local else cluster.address
    orch = subprocess.Popen(
        [sys.executable, "-c", ORCHESTRATOR, address, str(pids)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert orch.stdout is not None and orch.stdout.readline() == "started\n"
        wait_until(lambda: pids.exists() and pids.read_text().strip())
        agent_pids = [int(p) for p in pids.read_text().split()]
        os.kill(orch.pid, how)
        limit = 5 if how == signal.SIGKILL else 16
        for pid in agent_pids:
            wait_until(lambda pid=pid: not pid_alive(pid), timeout=limit)
    finally:
        orch.kill()
        orch.communicate()


def test_local_cluster_workers_end_with_the_executor(tmp_path: Path) -> None:
    ex = DaskExecutor("local:1")
    handle = ex.start(sh("echo local", tmp_path / "l.log"), lambda h: None)
    assert wait_end(handle) == 0 and (tmp_path / "l.log").read_text() == "local\n"
    workers = ex.client.run(os.getpid)
    assert len(workers) == 1 and os.getpid() not in workers.values()
    strict = ex.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    assert strict == 0  # our own scheduler never re-runs an attempt whose worker died
    ex.close()
    for pid in workers.values():
        wait_until(lambda pid=pid: not pid_alive(pid), timeout=10)


def test_finished_attempts_leave_no_descriptor_open(ex: DaskExecutor, tmp_path: Path) -> None:
    def one(i: int) -> None:
        handle = ex.start(sh(f"echo {i}", tmp_path / f"n{i}.log"), lambda h: None)
        wait_end(handle)
        handle.terminate(1)

    one(0)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(1, 11):
        one(i)
    assert len(os.listdir("/proc/self/fd")) <= before + 1


def test_an_interrupt_wakes_a_waiting_run(cluster: DaskCluster, tmp_path: Path) -> None:
    wake_r, wake_w = os.pipe()
    ex = DaskExecutor(cluster.address, wake_fd=wake_r)
    try:
        handle = ex.start(sh("sleep 30", tmp_path / "i.log"), lambda h: None)
        handle.wait_output(0)  # a wake-up may be pending from the start: they are allowed
        threading.Timer(0.3, os.write, (wake_w, b"x")).start()
        started = time.monotonic()
        handle.wait_output(20)
        assert 0.2 < time.monotonic() - started < 5 and handle.poll() is None
        handle.terminate(0.5)
        assert handle.poll() is not None
    finally:
        ex.close()
        os.close(wake_r)
        os.close(wake_w)


def test_preflight_without_workers_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lonely = DaskCluster()
    monkeypatch.setattr(dask_cluster, "WORKERS_WAIT", 0.5)
    ex = DaskExecutor(lonely.address)
    try:
        lines = ex.preflight(tmp_path, [])
        want = f"no dask workers at {lonely.address} after 0.5s: start some with `dask worker`"
        assert lines == [want]
    finally:
        ex.close()
        lonely.stop()


def test_a_closed_executor_leaves_no_output_on_the_scheduler(
    cluster: DaskCluster, tmp_path: Path
) -> None:
    ex = DaskExecutor(cluster.address)
    handle = ex.start(sh("echo secret-output", tmp_path / "s.log"), lambda h: None)
    wait_end(handle)
    handle.terminate(1)
    with cluster.client() as client:
        assert client.get_events(ex.topic)  # the scheduler keeps a topic's last events...
        ex.close()
        assert not client.get_events(ex.topic)  # ...until the run is over


def test_the_executor_imports_distributed_only_when_it_connects() -> None:
    code = (
        "import sys; from orchlib.executors.dask import DaskExecutor; DaskExecutor('local:1'); "
        "print('distributed' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # a run with nothing to do pays nothing for Dask
