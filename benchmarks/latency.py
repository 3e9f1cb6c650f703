"""Latency from an agent printing `[DONE]` to its completion stamp on disk.

A fake agent (a small Python script written to the temp dir) sleeps a while (its "work"),
reads the wall clock right before it prints and flushes its DONE line, writes that time to
a record file, and exits. The stamp's arrival at its path is seen with inotify (IN_MOVED_TO:
stamps are renamed into place) by a thread of this process; the stamp's mtime is reported
too (it is taken when the temp file is written, before the rename, so it reads a little early).

Variants: `parallel` — 24 independent tasks in 24 projects, all running at once, finishing
at spread-out times; `serial` — 24 tasks of one project, one after the other.
Targets: p50 <= 10 ms, p95 <= 20 ms (issue 25; per variant, over every task of every
repetition).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import _bench as b

TASKS = 24
P50, P95 = 10.0, 20.0  # ms (issue 25)
AT_ONCE = "(agent exits at once)"
VARIANTS = ("parallel", "serial", f"parallel {AT_ONCE}")

AGENT = """\
import os, sys, time
work = float(sys.argv[2])
time.sleep(work)
when = time.time()
sys.stdout.write("[DONE:" + os.environ["TERMINAL_ID"] + "] nothing to report\\n")
sys.stdout.flush()
with open(os.path.join(sys.argv[1], os.environ["ORCH_TASK_ID"]), "w") as fh:
    fh.write(repr(when))
if sys.argv[3:] == ["at-once"]:  # no interpreter shutdown: the figure is orchlib's own part
    os._exit(0)
"""


def plan(agent: Path, records: Path, parallel: bool, at_once: bool = False) -> dict[str, Any]:
    n_projects = TASKS if parallel else 1
    tasks = []
    for i in range(TASKS):
        work = 0.3 + (i * 7 % TASKS) * 0.08 if parallel else 0.1  # parallel: 0.3–2.1 s apart
        cmd = [sys.executable, str(agent), str(records), f"{work:.2f}", *(["at-once"] * at_once)]
        tasks.append(
            {
                "id": f"t{i:02d}",
                "project": f"p{i % n_projects:02d}",
                "title": f"agent #{i}",
                "agent": {"command": cmd, "prompt": "stdin"},
            }
        )
    return {
        "planId": "lat",
        "summary": "DONE to stamp",
        "projects": b.projects(n_projects),
        "tasks": tasks,
    }


def one_run(co: Path, records: Path, log: Path) -> tuple[list[float], list[float]]:
    """Run the plan from scratch; (inotify latencies, mtime latencies) in ms, one per task."""
    b.reset_checkout(co)
    for f in records.glob("*"):
        f.unlink()
    stamps = b.stamps_dir(co, "lat")
    watch = b.StampWatch(stamps)
    try:
        b.run(b.doit_argv(), co, log)
    finally:
        watch.close()
    seen, mtime = [], []
    for i in range(TASKS):
        tid = f"t{i:02d}"
        done_at = float((records / tid).read_text())
        seen.append((watch.seen[tid] - done_at) * 1000)
        mtime.append(((stamps / f"{tid}.json").stat().st_mtime_ns / 1e9 - done_at) * 1000)
    return seen, mtime


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    agent = tmp / "agent.py"
    agent.write_text(AGENT)
    table = report.table(
        f"DONE printed → stamp at its path ({TASKS} tasks per run)",
        "variant | runs | samples | p50 | p95 | max | p50 by stamp mtime | run wall",
    )
    for index, variant in enumerate(VARIANTS):
        records = tmp / f"records-{index}"
        records.mkdir()
        parallel, at_once = variant.startswith("parallel"), variant.endswith(AT_ONCE)
        co = b.make_checkout(tmp / f"variant-{index}", plan(agent, records, parallel, at_once))
        b.warm_up(co)
        seen: list[float] = []
        mtime: list[float] = []
        walls: list[float] = []
        for rep in range(args.reps):
            b.progress(f"{variant}: run {rep + 1} of {args.reps}")
            start = len(seen)
            t0 = time.perf_counter()
            s, m = one_run(co, records, tmp / f"variant-{index}.log")
            walls.append(time.perf_counter() - t0)
            seen += s
            mtime += m
            assert len(seen) == start + TASKS
        p50, p95 = b.median(seen), b.p95(seen)
        table.add(
            variant,
            len(walls),
            len(seen),
            f"{p50:.1f} ms",
            f"{p95:.1f} ms",
            f"{max(seen):.1f} ms",
            f"{b.median(mtime):.1f} ms",
            b.fmt_s(b.median(walls)),
        )
        if not at_once:  # the targets are on what a user sees, the agent's exit included
            report.check(f"{variant}: p50 DONE → stamp", p50, P50, "ms")
            report.check(f"{variant}: p95 DONE → stamp", p95, P95, "ms")
    report.notes.append(
        "The agent exits right after its DONE line, so the figures include its exit "
        "(orchlib writes the stamp once the agent has exited, DESIGN §5). parallel: 24 "
        "projects, default slots (one per project), agents finish 0.3–2.1 s after start; "
        "serial: one project, each agent finishes 0.1 s after start. "
        f"'{AT_ONCE}' (informational): the same agents end with `os._exit` right after "
        "their record, skipping the interpreter's shutdown, so the figure is orchlib's own "
        "part: seeing the exit, the checks, the stamp."
    )


if __name__ == "__main__":
    sys.exit(b.main("latency", "Latency: DONE → stamp", body, default_reps=3))
