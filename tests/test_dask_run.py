"""`doit --executor dask` end to end: the real `doit` on a real local cluster (a `dask
scheduler` and two `dask worker --resources agent=2` processes on 127.0.0.1), with the fake
agent (DESIGN §8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("distributed")

from conftest import FAKE_AGENT, Checkout, pid_alive
from daskcluster import DaskCluster

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask")]
PLAN = "dk"
CLI = "orch-fake-cli"
# The shim running the verify is a child of the worker process: note that process's pid.
VERIFY = "awk '{print $4}' /proc/$PPID/stat > verified-by && test -s out.txt"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """Worker A has the fake agent as a CLI on its PATH; worker B lacks it."""
    bin_dir = tmp_path_factory.mktemp("bin")
    cli = bin_dir / CLI
    cli.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_AGENT} "$@"\n')
    cli.chmod(0o755)
    cl = DaskCluster()
    cl.bin_dir = bin_dir  # type: ignore[attr-defined]
    cl.add_worker(env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    cl.add_worker()
    yield cl
    cl.stop()


@pytest.fixture
def workers(cluster: DaskCluster) -> Iterator[dict[str, int]]:
    """The two workers' addresses and pids (a test that kills one brings one back after)."""
    client = cluster.client()
    try:
        yield cluster.wait_workers(client, 2)
        if len(client.run(os.getpid)) < 2:
            cluster.replace_dead()
            cluster.wait_workers(client, 2)
    finally:
        client.close()


def write(co: Checkout, tasks: list[dict[str, Any]], projects: tuple[str, ...] = ("a",),
          **extra: Any) -> None:  # fmt: skip
    rows = [{"name": p, "path": p} for p in projects]
    plan = {
        "planId": PLAN,
        "agent": co.agent(),
        "projects": rows,
        "tasks": [{"project": rows[0]["name"], "title": t["id"], **t} for t in tasks],
        **extra,
    }
    co.write_plan(plan, f"{PLAN}.json")


def on(cluster: DaskCluster, *args: str) -> list[str]:
    return ["--executor", "dask", "--scheduler", cluster.address, *args]


def records(co: Checkout) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in co.state(PLAN)["tasks"]}


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out + err


def test_a_plan_runs_across_both_workers(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    tasks = [{"id": f"t{i:02d}", "project": f"p{i % 4}"} for i in range(12)]
    write(checkout, tasks, projects=("p0", "p1", "p2", "p3"))
    checkout.scenario({t["id"]: [[{"sleep": 0.3}, {"done": "ok"}]] for t in tasks})
    result = checkout.doit(*on(cluster, "-n", "4"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(checkout.stamp(t["id"], PLAN) for t in tasks)
    hosts = {rec["host"] for rec in records(checkout).values()}
    assert hosts == set(workers)  # both workers ran tasks
    status = checkout.doit("status").stdout
    assert all(f"on {h}" in status for h in workers)  # each attempt's worker


def test_no_op_rerun_never_contacts_the_cluster(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    write(checkout, [{"id": "t1"}])
    assert checkout.doit(*on(cluster)).returncode == 0
    started = time.monotonic()
    again = checkout.doit("--executor", "dask", "--scheduler", "tcp://127.0.0.1:1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert time.monotonic() - started < 5
    assert checkout.dispatched() == ["t1"]


def test_question_answer_verify_and_outputs_behave_as_local(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    tasks = [
        {"id": "ask"},
        {"id": "made", "project": "b", "outputs": ["out.txt"], "verify": ["sh", "-c", VERIFY]},
    ]
    write(checkout, tasks, projects=("a", "b"))
    checkout.scenario({
        "ask": [[{"question": "which colour?"}], [{"done": "painted"}]],
        "made": [[{"write": ["out.txt", "x"]}, {"done": "made it"}]],
    })  # fmt: skip
    first = checkout.doit(*on(cluster))
    assert first.returncode != 0 and "which colour?" in first.stdout + first.stderr
    assert checkout.stamp("made", PLAN) is not None
    by = int((checkout.root / "b" / "verified-by").read_text())  # the worker process
    assert by == workers[records(checkout)["made"]["host"]]  # verify ran where its agent did
    assert checkout.doit("answer", f"{PLAN}:ask", "blue").returncode == 0
    second = checkout.doit(*on(cluster))
    assert second.returncode == 0, second.stdout + second.stderr
    prompt = [r["prompt"] for r in checkout.records() if r["task"] == "ask"][-1]
    assert "which colour?" in prompt and "blue" in prompt


def test_a_worker_killed_mid_attempt_loses_nothing_and_costs_no_retry(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    go = checkout.root / "go"
    write(checkout, [{"id": "slow"}, {"id": "quick", "project": "b"}], projects=("a", "b"),
          defaults={"retries": 0})  # fmt: skip
    checkout.scenario({
        "slow": [[{"progress": [10, "working"]}, {"wait_file": str(go)}, {"done": "slow done"}]],
        "quick": [[{"done": "quick done"}]],
    })  # fmt: skip
    run = checkout.start(*on(cluster, "-n", "2"))
    checkout.wait_for(lambda: checkout.stamp("quick", PLAN) is not None)
    checkout.wait_for(lambda: records(checkout).get("slow", {}).get("host") in workers)
    # state.json names the host before the agent runs: wait for the agent itself
    checkout.wait_for(lambda: "slow" in checkout.dispatched())
    first = records(checkout)["slow"]
    agent = next(r["pid"] for r in checkout.records() if r["task"] == "slow")
    os.kill(workers[first["host"]], signal.SIGKILL)
    checkout.wait_for(lambda: len([r for r in checkout.records() if r["task"] == "slow"]) == 2)
    assert not pid_alive(agent)  # its group died with its worker
    go.touch()
    code, out = finish(run)
    assert code == 0, out
    assert "worker lost" in out
    again = records(checkout)["slow"]
    assert again["status"] == "DONE" and again["host"] != first["host"]
    assert Counter(checkout.dispatched()) == {"slow": 2, "quick": 1}  # Dask re-ran nothing
    assert checkout.stamp("quick", PLAN) is not None


def test_sigint_stops_the_remote_agents(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    write(checkout, [{"id": "a1"}, {"id": "b1", "project": "b"}], projects=("a", "b"))
    checkout.scenario({
        "a1": [[{"progress": [10, "x"]}, {"hang": True}]],
        "b1": [[{"spawn_child": "child.pid"}, {"progress": [10, "x"]}, {"hang": True}]],
    })  # fmt: skip
    run = checkout.start(*on(cluster, "-n", "2"))
    checkout.wait_for(
        lambda: len(checkout.records()) == 2 and (checkout.root / "b" / "child.pid").exists()
    )
    child = int((checkout.root / "b" / "child.pid").read_text())
    os.kill(run.pid, signal.SIGINT)
    code, out = finish(run)
    assert code == 130, out
    assert "Traceback" not in out
    pids = [r["pid"] for r in checkout.records()] + [child]
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if pid_alive(p)]


def test_preflight_names_the_worker_lacking_the_cli(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    plan = {
        "planId": PLAN,
        "agent": {"command": [CLI, str(checkout.scenario_file), str(checkout.record_file)]},
        "projects": [{"name": "a", "path": "a"}],
        "tasks": [{"id": "t1", "project": "a", "title": "t1"}],
    }
    checkout.write_plan(plan, f"{PLAN}.json")
    path = f"{cluster.bin_dir}:{os.environ['PATH']}"  # type: ignore[attr-defined]
    result = checkout.doit(*on(cluster), env={"PATH": path})
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [x for x in (result.stdout + result.stderr).splitlines() if "lacks" in x]
    assert len(lines) == 1
    assert lines[0].startswith("orchlib: dask worker tcp://127.0.0.1:")
    assert lines[0].endswith(f"lacks agent CLI {CLI!r} on PATH")
    assert checkout.dispatched() == []


def test_the_executor_comes_from_the_plan_and_the_environment(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    write(checkout, [{"id": "t1"}], defaults={"executor": "dask"})
    result = checkout.doit(env={"ORCH_DASK_SCHEDULER": cluster.address})
    assert result.returncode == 0, result.stdout + result.stderr
    assert records(checkout)["t1"]["host"] in workers
    write(checkout, [{"id": "t1"}, {"id": "t2"}])
    result = checkout.doit(env={"ORCH_EXECUTOR": "dask", "ORCH_DASK_SCHEDULER": cluster.address})
    assert result.returncode == 0, result.stdout + result.stderr
    assert records(checkout)["t2"]["host"] in workers


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--executor", "dask"), "orchlib: the dask executor needs a scheduler: --scheduler"),
        (("--executor", "nope"), "--executor 'nope' is not one of local, dask"),
        (("--executor", "dask", "--scheduler", "local:0"), "local:N needs a worker count"),
    ],
)
def test_a_wrong_executor_setting_is_one_line(
    checkout: Checkout, args: tuple[str, ...], line: str
) -> None:
    write(checkout, [{"id": "t1"}])
    result = checkout.doit(*args)
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert line in out and "Traceback" not in out
    assert checkout.dispatched() == []


def test_after_doit_is_killed_the_next_run_takes_the_done_in_the_log(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    write(checkout, [{"id": "t1"}], defaults={"exitGrace": "60s"})
    checkout.scenario({"t1": [[{"done": "finished before the crash"}, {"hang": True}]]})
    run = checkout.start(*on(cluster))
    log = checkout.root / ".orch" / PLAN / "logs" / "t1.1.log"
    checkout.wait_for(lambda: log.exists() and "[DONE:" in log.read_text())
    agent = checkout.records()[0]["pid"]
    os.killpg(run.pid, signal.SIGKILL)  # doit and nothing else: the agent is on a worker
    run.communicate()
    checkout.wait_for(lambda: not pid_alive(agent), timeout=12)  # its worker stopped it
    again = checkout.doit(*on(cluster))
    assert again.returncode == 0, again.stdout + again.stderr
    assert checkout.dispatched() == ["t1"]  # not dispatched a second time
    assert checkout.stamp("t1", PLAN)["summary"] == "finished before the crash"


def test_ctrl_c_with_a_local_cluster_is_one_clean_interrupt(checkout: Checkout) -> None:
    """A terminal's Ctrl-C reaches the whole process group, `local:N` workers included."""
    write(checkout, [{"id": "t1"}])
    checkout.scenario({"t1": [[{"progress": [10, "x"]}, {"hang": True}]]})
    run = checkout.start("--executor", "dask", "--scheduler", "local:1")
    checkout.wait_for(lambda: len(checkout.records()) == 1, timeout=60)
    os.killpg(run.pid, signal.SIGINT)
    code, out = finish(run)
    assert code == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    agent = checkout.records()[0]["pid"]
    checkout.wait_for(lambda: not pid_alive(agent), timeout=5)


def test_a_task_whose_worker_keeps_dying_fails_after_the_fourth_loss(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    # The command kills the worker running it (its shim's parent): every attempt is lost.
    kill = "kill -9 $(awk '{print $4}' /proc/$PPID/stat); sleep 30"
    plan = {
        "planId": PLAN,
        "projects": [{"name": "a", "path": "a"}],
        "tasks": [{"id": "t1", "project": "a", "title": "t1", "command": ["sh", "-c", kill]}],
        "defaults": {"retries": 0},
    }
    checkout.write_plan(plan, f"{PLAN}.json")
    stop = threading.Event()

    def respawn() -> None:  # the cluster's operator brings dead workers back
        while not stop.wait(0.5):
            cluster.replace_dead()

    helper = threading.Thread(target=respawn)
    helper.start()
    try:
        result = checkout.doit(*on(cluster), timeout=120)
    finally:
        stop.set()
        helper.join()
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert out.count("worker lost") >= 4, out
    assert "(4 times)" in records(checkout)["t1"]["error"]


def test_elapsed_counts_running_time_not_time_queued_for_a_worker(checkout: Checkout) -> None:
    """Two 2 s tasks share one worker slot: the second waits ~2 s for it, which is not work
    (DESIGN §15). Its elapsed everywhere (console, state.json, stamp) is its 2 s."""
    one = DaskCluster()
    try:
        one.add_worker(agents=1)
        client = one.client()
        one.wait_workers(client, 1)
        client.close()
        write(checkout, [{"id": "t1"}, {"id": "t2", "project": "b"}], projects=("a", "b"))
        checkout.scenario({t: [[{"sleep": 2}, {"done": t}]] for t in ("t1", "t2")})
        result = checkout.doit(*on(one, "-n", "2"), timeout=90)
    finally:
        one.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    starts = sorted(r["start"] for r in checkout.records())
    assert starts[1] - starts[0] >= 1.9, "the second task waited for the only slot"
    for task in ("t1", "t2"):
        record, stamp = records(checkout)[task], checkout.stamp(task, PLAN)
        assert stamp is not None
        # ~2 s of sleep plus the start of a Python process; never the 2 s queued too.
        assert 1.9 <= stamp["durationSeconds"] < 3.5, stamp
        assert record["duration"] == stamp["durationSeconds"] == record["worked"]
    assert result.stdout.count("DONE in 2s") + result.stdout.count("DONE in 3s") == 2, result.stdout


def test_a_reviewed_task_is_approved_and_stamped_on_the_cluster(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    write(checkout, [{"id": "t1", "verify": "test -f a.txt"}], defaults={"review": "fake"},
          agents={"fake": checkout.agent()})  # fmt: skip
    checkout.scenario({"t1": [[{"write": ["a.txt", "alpha\n"]}, {"done": "a.txt made"}]],
                       "t1.review": [[{"say": "[APPROVE:{tid}] a.txt holds alpha"}]]})  # fmt: skip
    result = checkout.doit(*on(cluster))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "review by fake: APPROVE" in result.stdout
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["review"]["verdict"] == "approve"
    assert [r["task"] for r in checkout.records()] == ["t1", "t1.review"]
    assert (checkout.root / ".orch" / PLAN / "logs" / "t1.1.review.log").is_file()
    assert records(checkout)["t1"]["host"] in workers


def test_a_race_has_one_winner_on_the_cluster(
    checkout: Checkout, cluster: DaskCluster, workers: dict[str, int]
) -> None:
    from test_worktrees import NO_GIT_CONFIG, make_repo, merges

    repo = checkout.root / "a"
    make_repo(repo, {"README": "a\n"})
    project = {"name": "a", "path": "a", "isolation": "worktree", "parallel": 2}
    task = {"id": "t1", "project": "a", "title": "t1", "race": 2, "verify": "grep -q good out.txt"}
    checkout.write_plan({"planId": PLAN, "agent": checkout.agent(), "projects": [project],
                         "defaults": {"retries": 0}, "tasks": [task]}, f"{PLAN}.json")  # fmt: skip
    checkout.scenario({"t1": [[{"write": ["out.txt", "bad\n"]}, {"done": "bad"}],
                              # the winner thinks a while: the loser starts (and fails its
                              # verify) first, however a loaded machine orders the starts
                              [{"sleep": 1.5}, {"write": ["out.txt", "good\n"]},
                               {"done": "good"}]]})  # fmt: skip
    result = checkout.doit(*on(cluster, "-n", "2"), env=NO_GIT_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["attempt"] == 2
    assert stamp["race"] == {"winner": stamp["agent"], "racers": 2}
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1+2'"]
    assert (repo / "out.txt").read_text() == "good\n"
    assert records(checkout)["t1"]["host"] in workers
    assert sorted(r["attempt"] for r in checkout.records()) == [1, 2]
