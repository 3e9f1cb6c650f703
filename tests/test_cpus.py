"""A run's threads share one CPU; every process it starts gets all the CPUs the run had."""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Checkout

from orchlib.executors import cpus, sandbox

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux CPU affinity and at least two CPUs",
)

# The task: write down its own CPUs, then wait until the test has looked at doit's threads.
TASK = """
import json, os, sys, time
out, release = sys.argv[1], sys.argv[2]
with open(out + ".tmp", "w") as fh:
    json.dump(sorted(os.sched_getaffinity(0)), fh)
os.rename(out + ".tmp", out)
deadline = time.monotonic() + 30
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.01)
"""


def _thread_cpus(pid: int) -> dict[str, str]:
    """Each thread of `pid`: its name and the CPUs it may run on (Cpus_allowed_list)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        found[f"{fields['Name'].strip()}-{task.name}"] = fields["Cpus_allowed_list"].strip()
    return found


def test_a_runs_threads_share_one_cpu_and_its_tasks_get_every_cpu(checkout: Checkout) -> None:
    out, release = checkout.root / "cpus.json", checkout.root / "release"
    command = [sys.executable, "-c", TASK, str(out), str(release)]
    checkout.write_plan({
        "planId": "cpu", "summary": "cpus",
        "projects": [{"name": f"p{i}", "path": f"./p{i}"} for i in range(2)],
        "tasks": [
            {"id": "look", "project": "p0", "title": "look", "command": command},
            {"id": "after", "project": "p1", "title": "after", "command": "true",
             "dependsOn": ["look"]},
        ],
    })  # fmt: skip
    proc = checkout.start("-n", "4")
    try:
        checkout.wait_for(out.exists)
        threads = _thread_cpus(proc.pid)
    finally:
        release.touch()
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stdout + stderr
    assert len(threads) >= 3  # the scheduler, a slot, the log watcher, the state writer
    assert len(set(threads.values())) == 1, threads
    pinned = next(iter(threads.values()))
    assert pinned.isdigit(), threads  # one CPU, e.g. "1"
    assert json.loads(out.read_text()) == sorted(os.sched_getaffinity(0))
    assert checkout.stamp("after", "cpu") is not None


def test_threads_started_inside_inherit_the_pin_and_a_fork_takes_every_cpu() -> None:
    every = os.sched_getaffinity(0)
    seen: list[set[int]] = []
    with cpus.one_cpu():
        pinned = os.sched_getaffinity(0)
        worker = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        worker.start()
        worker.join()
        with cpus.one_cpu():  # a second run in the process leaves the first's pin alone
            assert os.sched_getaffinity(0) == pinned
        with cpus.for_children():
            around_fork = os.sched_getaffinity(0)
        after_fork = os.sched_getaffinity(0)
    assert len(pinned) == 1 and pinned <= every
    assert seen == [pinned]
    assert around_fork == every and after_fork == pinned
    assert os.sched_getaffinity(0) == every
    with cpus.for_children():  # no run pinned: nothing changes
        assert os.sched_getaffinity(0) == every


def test_the_sandbox_probe_runs_on_every_cpu_during_a_pinned_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "probe.json"
    fake = tmp_path / "bwrap"
    fake.write_text(
        f"#!{sys.executable}\nimport json, os\n"
        f"open({str(out)!r}, 'w').write(json.dumps(sorted(os.sched_getaffinity(0))))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox, "BWRAP", str(fake))
    with cpus.one_cpu():
        assert len(os.sched_getaffinity(0)) == 1
        assert sandbox.probe() is None
    assert json.loads(out.read_text()) == sorted(os.sched_getaffinity(0))


def _in_a_thread(body: Callable[[], object]) -> object:
    """body's result, run on a thread of its own (whose CPUs the test may change)."""
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(body()))
    worker.start()
    worker.join()
    return result[0]


def test_setting_a_threads_cpus_moves_it_or_says_no_and_leaves_it() -> None:
    every = os.sched_getaffinity(0)
    first, absent = min(every), max(every) + 1

    def move() -> tuple[bool, set[int], bool, set[int], bool, set[int]]:
        to_first = cpus._set({first})
        on_first = os.sched_getaffinity(0)
        to_absent = cpus._set({absent})  # a CPU this machine lacks: the kernel says EINVAL
        after_absent = os.sched_getaffinity(0)
        past_glibc = cpus._set({5000})  # past libc's cpu_set_t: os.sched_setaffinity's answer
        return to_first, on_first, to_absent, after_absent, past_glibc, os.sched_getaffinity(0)

    assert _in_a_thread(move) == (True, {first}, False, {first}, False, {first})
    assert os.sched_getaffinity(0) == every  # another thread's CPUs are its own


def test_a_threads_cpus_are_set_without_holding_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through libc (ctypes lets go of the GIL): os.sched_setaffinity keeps the GIL while the
    kernel moves the thread, and every thread of the run waits."""

    def holds_the_gil(pid: int, mask: object) -> None:
        raise AssertionError("os.sched_setaffinity used for a mask libc takes")

    every = os.sched_getaffinity(0)
    monkeypatch.setattr(os, "sched_setaffinity", holds_the_gil)
    assert _in_a_thread(lambda: (cpus._set({min(every)}), os.sched_getaffinity(0))) == (
        True,
        {min(every)},
    )


def test_the_cpu_mask_given_to_libc_has_exactly_the_cpus_bits() -> None:
    mask = cpus._mask(frozenset({0, 3, 64, 1023}))
    assert mask is not None
    size = 8 * ctypes.sizeof(ctypes.c_ulong)
    bits = {i * size + b for i, word in enumerate(mask) for b in range(size) if word >> b & 1}
    assert bits == {0, 3, 64, 1023}
    assert cpus._mask(frozenset({1024})) is None and cpus._mask(frozenset()) is None
