"""`sandbox: bwrap` vs `sandbox: none`: what the sandbox costs per attempt, and that a no-op
re-run of a sandboxed plan costs nothing extra (DESIGN §14).

1. One process, side by side: `true` started through orchlib's local executor (the gate,
   the log, the exit file) with and without the sandbox, interleaved, `--reps` times each.
2. A whole run: a plan of 100 shell tasks `true` over 8 projects (`doit -n 4`), from no
   state to done, sandboxed and not, interleaved.
3. A no-op re-run of each done plan: the sandbox is only applied when an attempt starts, so
   the two must cost the same. Target: sandboxed / plain <= 1.10 (noise).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import _bench as b

TASKS = 100
PROJECTS = 8
NOOP_TARGET = 1.10


def one_process(tmp: Path, reps: int, report: b.Report) -> None:
    """`true` through LocalExecutor.run, with and without the sandbox."""
    from orchlib.executors.base import Job
    from orchlib.executors.local import LocalExecutor
    from orchlib.executors.sandbox import Sandbox

    work = tmp / "proc" / "project"
    work.mkdir(parents=True)
    logs = tmp / "proc" / ".orch"
    box = Sandbox(writable=(str(work),), readonly=(str(logs),), visible=(str(tmp),))
    ex = LocalExecutor()
    times: dict[str, list[float]] = {"none": [], "bwrap": []}
    b.progress(f"one process: {reps} starts of `true` each way")
    for i in range(reps):
        for mode, sandbox in (("none", None), ("bwrap", box)):
            log = logs / f"{mode}.{i}.log"
            job = Job(("true",), work, {}, log, exit_file=log.with_suffix(".exit"), sandbox=sandbox)
            start = time.perf_counter()
            code = ex.run(job, 30.0)
            times[mode].append(time.perf_counter() - start)
            if code != 0:
                raise RuntimeError(f"`true` exited {code} under sandbox {mode}: {log.read_text()}")
    table = report.table(
        "One `true` started by the local executor (wall, median (min–max, n))",
        "sandbox | wall | extra per attempt",
    )
    extra = b.median(times["bwrap"]) - b.median(times["none"])
    table.add("none", b.summary(times["none"]), "–")
    table.add("bwrap", b.summary(times["bwrap"]), f"{extra * 1000:.1f} ms")


def plan(mode: str) -> dict[str, Any]:
    found = b.realistic_dag(TASKS, PROJECTS, seed=TASKS)
    found["planId"] = "bench"
    found["defaults"] = {"sandbox": mode}
    return found


def whole_runs(tmp: Path, reps: int, report: b.Report) -> dict[str, Path]:
    """100 `true` tasks from nothing to done, each way; the done checkouts are returned."""
    roots = {mode: b.make_checkout(tmp / mode, plan(mode)) for mode in ("none", "bwrap")}
    for root in roots.values():
        b.warm_up(root)
    times: dict[str, list[float]] = {"none": [], "bwrap": []}
    runs = max(2, reps // 10)
    b.progress(f"whole runs: {runs} first runs of {TASKS} tasks each way (doit -n 4)")
    for _ in range(runs):
        for mode, root in roots.items():
            b.reset_checkout(root)
            log = tmp / f"{mode}-first.log"
            times[mode].append(b.run(b.doit_argv("-n", "4"), root, log, timeout=300).wall)
            if b.count_stamps(root, "bench") != TASKS:
                raise RuntimeError(f"the {mode} run did not finish every task; see {log}")
    table = report.table(
        f"A first run of {TASKS} shell tasks `true`, `doit -n 4` (wall, median (min–max, n))",
        "sandbox | wall | per task",
    )
    for mode in ("none", "bwrap"):
        med = b.median(times[mode])
        table.add(mode, b.summary(times[mode]), f"{med / TASKS * 1000:.1f} ms")
    return roots


def noop(tmp: Path, roots: dict[str, Path], reps: int, report: b.Report) -> None:
    """`doit` on each done plan: nothing runs, so the sandbox must not show."""
    times: dict[str, list[float]] = {"none": [], "bwrap": []}
    b.progress(f"no-op re-runs: {reps} each way")
    for _ in range(reps):
        for mode, root in roots.items():
            before = b.stamp_snapshot(root, "bench")
            times[mode].append(b.run(b.doit_argv(), root, tmp / f"{mode}-noop.log").wall)
            if b.stamp_snapshot(root, "bench") != before:
                raise RuntimeError(f"the {mode} no-op re-run redid tasks")
    table = report.table(
        f"No-op re-run of the done {TASKS}-task plan (wall, median (min–max, n))",
        "sandbox | wall",
    )
    for mode in ("none", "bwrap"):
        table.add(mode, b.summary(times[mode]))
    ratio = b.median(times["bwrap"]) / b.median(times["none"])
    report.check("no-op re-run, sandboxed / plain (wall)", ratio, NOOP_TARGET)


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    from orchlib.executors.sandbox import probe

    why = probe()
    if why is not None:
        report.notes.append(f"not measured: {why}")
        return
    one_process(tmp, args.reps, report)
    roots = whole_runs(tmp, args.reps, report)
    noop(tmp, roots, min(args.reps, 15), report)
    report.notes.append(
        "Sandbox: `env --ignore-signal=TERM bwrap --ro-bind / / --dev /dev --proc /proc "
        "--tmpfs /tmp --unshare-pid` plus the binds of the attempt, then `env "
        "--default-signal=TERM` and the command (orchlib/executors/sandbox.py). Runs of the two "
        f"modes are interleaved. Plan: {PROJECTS} projects, realistic DAG (_checkout.py)."
    )


if __name__ == "__main__":
    sys.exit(b.main("sandbox", "sandbox: bwrap vs none", body, default_reps=100))
