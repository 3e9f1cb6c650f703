"""Bounded crash loops (issue 16): hundreds of kills on real processes, in CI.

Each loop has a time budget (the whole file stays well under two minutes on two cores)
and a floor on the number of kills it must reach. Invariants after every loop: all
work is done in the end, no task was done twice (one DONE per task across its logs),
no two agents of a task ever overlapped, no agent is left running, no traceback.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout, pid_alive

pytestmark = pytest.mark.crash_loop
PLAN = "loop"
BUDGET = 25.0  # seconds per loop (double starts: half of it)


def write(co: Checkout, count: int, **extra: Any) -> list[str]:
    """A plan of `count` tasks over four projects, each depending on the one 4 before."""
    ids = [f"t{i}" for i in range(count)]
    tasks = [
        {
            "id": t,
            "project": f"p{i % 4}",
            "title": t,
            **({"dependsOn": [ids[i - 4]]} if i >= 4 else {}),
        }
        for i, t in enumerate(ids)
    ]
    plan = {"planId": PLAN, "agent": co.agent(), "defaults": {"retries": 50},
            "projects": [{"name": f"p{i}", "path": f"p{i}"} for i in range(4)],
            "tasks": tasks, **extra}  # fmt: skip
    co.write_plan(plan, "loop.json")
    return ids


def slow_agents(co: Checkout, ids: list[str], rng: random.Random) -> None:
    steps = [[{"progress": [50, "half"]}, {"sleep": rng.uniform(0.05, 0.3)}, {"done": "ok"}]]
    co.scenario({t: steps for t in ids})


def logs_with_done(co: Checkout, task: str) -> int:
    """How many attempt logs of `task` hold its DONE (a task done twice has two)."""
    found = 0
    for log in (co.root / ".orch" / PLAN / "logs").glob(f"{task}.*.log"):
        if "[DONE:" in log.read_text(errors="replace"):
            found += 1
    return found


def overlaps(co: Checkout) -> list[str]:
    """Tasks with two agents alive at once (start of one before the end of another)."""
    found = []
    for task, starts in _starts(co).items():
        for earlier, later in itertools.pairwise(starts):
            if earlier["end"] is not None and later["start"] < earlier["end"] - 0.01:
                found.append(task)
    return found


def _starts(co: Checkout) -> dict[str, list[dict[str, Any]]]:
    by_task: dict[str, list[dict[str, Any]]] = {}
    for record in co.records():
        log = co.root / ".orch" / PLAN / "logs" / f"{record['task']}.{record['attempt']}.log"
        end = log.stat().st_mtime if log.exists() else None
        by_task.setdefault(record["task"], []).append({"start": record["start"], "end": end})
    return {t: sorted(s, key=lambda r: r["start"]) for t, s in by_task.items()}


def settle(co: Checkout, ids: list[str]) -> None:
    """The final run finishes the plan; then every invariant holds."""
    result = co.doit(timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Traceback" not in out
    assert all(co.stamp(t, PLAN) for t in ids)
    assert {t: logs_with_done(co, t) for t in ids} == dict.fromkeys(ids, 1)
    assert overlaps(co) == []
    for record in co.records():
        co.wait_for(lambda pid=record["pid"]: not pid_alive(pid), timeout=10)


def test_random_sigkills_of_doit_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    rng = random.Random(1616)
    kills, deadline, round_ = 0, time.monotonic() + BUDGET, 0
    while time.monotonic() < deadline:
        co = Checkout(tmp_path / f"co{round_}")
        ids = write(co, 12)
        slow_agents(co, ids, rng)
        try:
            for _ in range(15):
                proc = co.start()
                time.sleep(rng.uniform(0.05, 0.8))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                _, err = proc.communicate(timeout=120)
                assert "Traceback" not in err, err
                if all(co.stamp(t, PLAN) for t in ids):  # done: a next start has no work
                    break  # to be killed in (the faster the runs, the fewer kills it met)
            settle(co, ids)
        finally:
            _kill_agents(co)
        round_ += 1
    print(f"doit killed: {kills}")
    assert kills >= 25, kills


def test_randomly_killed_agents_are_retried_never_doubled(tmp_path: Path) -> None:
    rng = random.Random(250)
    kills, deadline, round_ = 0, time.monotonic() + BUDGET, 0
    while time.monotonic() < deadline:
        co = Checkout(tmp_path / f"co{round_}")
        ids = write(co, 24)
        co.scenario({t: [[{"sleep": 0.3}, {"done": "ok"}]] for t in ids})
        try:
            killed = _kill_agents_while_running(co, co.start("-n", "4"), rng)
        finally:
            _kill_agents(co)
        assert {t: logs_with_done(co, t) for t in ids} == dict.fromkeys(ids, 1)
        assert overlaps(co) == []
        # each kill costs one attempt (one that had already printed DONE is not redone)
        assert len(ids) <= len(co.dispatched()) <= len(ids) + killed
        kills += killed
        round_ += 1
    print(f"agents killed: {kills}")
    assert kills >= 50, kills


def _kill_agents_while_running(co: Checkout, run: Any, rng: random.Random) -> int:
    """SIGKILL about half the agents as they start; the run must still finish (exit 0)."""
    kills, seen = 0, set()
    try:
        while run.poll() is None:
            for pid in [pid for pid in _started_pids(co) if pid not in seen]:
                seen.add(pid)
                if rng.random() < 0.5:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                        kills += 1
            time.sleep(0.01)
    finally:
        if run.poll() is None:
            run.kill()
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert "Traceback" not in out + err
    return kills


def test_double_starts_run_each_task_once(tmp_path: Path) -> None:
    rng = random.Random(100)
    starts, deadline, round_ = 0, time.monotonic() + BUDGET / 2, 0
    while time.monotonic() < deadline:
        co = Checkout(tmp_path / f"co{round_}")
        ids = write(co, 8)
        slow_agents(co, ids, rng)
        first, second = co.start(), co.start()
        try:
            results = [p.communicate(timeout=120) for p in (first, second)]
        finally:
            for proc in (first, second):
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            _kill_agents(co)
        codes = sorted(p.returncode for p in (first, second))
        starts += 2
        out = "".join(a + b for a, b in results)
        assert "Traceback" not in out
        assert codes[0] == 0, out
        if codes[1] != 0:
            assert "run.lock" in out, out
        settle(co, ids)
        assert Counter(co.dispatched()) == dict.fromkeys(ids, 1)
        round_ += 1
    assert starts >= 6, starts


def _started_pids(co: Checkout) -> list[int]:
    """Agents started so far; an agent may be appending its record right now (torn line)."""
    if not co.record_file.exists():
        return []
    pids = []
    for line in co.record_file.read_text().splitlines():
        with contextlib.suppress(ValueError):
            pids.append(json.loads(line)["pid"])
    return pids


def _kill_agents(co: Checkout) -> None:
    for pid in _started_pids(co):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
