"""The dask executor beside the local one, through real `doit` runs (DESIGN §8).

    python benchmarks/dask_executor.py [--reps N]      # needs orchlib[dask]

Throughput: a plan of 300 short agent tasks (the agent prints its DONE line and exits) over
30 projects, `doit -n 4`, run from scratch with `--executor local` and with `--executor dask
--scheduler local:2` (a LocalCluster of 2 worker processes started by that `doit`), one
after the other in each repetition. Goal: dask ≤ 3× local (wall, median).

Latency over Dask: 24 tasks in 24 projects whose agent records the wall clock right before it
prints DONE; the stamp's arrival is seen with inotify, as `latency.py` does for `local`.
Goals: p50 ≤ 100 ms, p95 ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import _bench as b
from latency import AGENT

TASKS, PROJECTS, SLOTS, RATIO = 300, 30, 4, 3.0
LAT_TASKS, P50, P95 = 24, 100.0, 300.0
DASK = ("--executor", "dask", "--scheduler", "local:2")


def short_plan(agent: Path, records: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(agent), str(records), "0"]
    tasks = [
        {"id": f"t{i:03d}", "project": f"p{i % PROJECTS:02d}", "title": f"short #{i}",
         "agent": {"command": cmd, "prompt": "stdin"}}
        for i in range(TASKS)
    ]  # fmt: skip
    return {"planId": "dx", "summary": "short agents", "tasks": tasks,
            "projects": b.projects(PROJECTS)}  # fmt: skip


def latency_plan(agent: Path, records: Path) -> dict[str, Any]:
    tasks = []
    for i in range(LAT_TASKS):
        work = 0.3 + (i * 7 % LAT_TASKS) * 0.08
        cmd = [sys.executable, str(agent), str(records), f"{work:.2f}"]
        tasks.append({"id": f"t{i:02d}", "project": f"p{i:02d}", "title": f"agent #{i}",
                      "agent": {"command": cmd, "prompt": "stdin"}})  # fmt: skip
    return {"planId": "dl", "summary": "DONE to stamp over Dask", "tasks": tasks,
            "projects": b.projects(LAT_TASKS)}  # fmt: skip


def throughput(co: Path, log: Path, extra: tuple[str, ...]) -> b.Timing:
    b.reset_checkout(co)
    timing = b.run(b.doit_argv("-n", str(SLOTS), *extra), co, log)
    if b.count_stamps(co, "dx") != TASKS:
        raise RuntimeError(f"a run left tasks undone; see {log}")
    return timing


def latencies(co: Path, records: Path, log: Path) -> list[float]:
    b.reset_checkout(co)
    for f in records.glob("*"):
        f.unlink()
    watch = b.StampWatch(b.stamps_dir(co, "dl"))
    try:
        b.run(b.doit_argv(*DASK), co, log)
    finally:
        watch.close()
    return [
        (watch.seen[f"t{i:02d}"] - float((records / f"t{i:02d}").read_text())) * 1000
        for i in range(LAT_TASKS)
    ]


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    agent = tmp / "agent.py"
    agent.write_text(AGENT)
    records = tmp / "records"
    records.mkdir()
    co = b.make_checkout(tmp / "short", short_plan(agent, records))
    b.warm_up(co)
    local: list[b.Timing] = []
    dask: list[b.Timing] = []
    for rep in range(args.reps):
        b.progress(f"repetition {rep + 1}: {TASKS} tasks with local, then with dask local:2")
        local.append(throughput(co, tmp / "local.log", ()))
        dask.append(throughput(co, tmp / "dask.log", DASK))
    table = report.table(
        f"{TASKS} short agent tasks, `doit -n {SLOTS}`, from scratch each repetition",
        "executor | wall, median (min–max, n) | tasks/s | vs local",
    )
    base = b.median([t.wall for t in local])
    for name, runs in (("local", local), ("dask, `--scheduler local:2`", dask)):
        med = b.median([t.wall for t in runs])
        table.add(name, b.summary([t.wall for t in runs]), f"{TASKS / med:.0f}",
                  f"{med / base:.1f}×")  # fmt: skip
    report.check("dask / local, 300 short tasks (wall)", b.median([t.wall for t in dask]) / base,
                 RATIO)  # fmt: skip
    lat_records = tmp / "lat-records"
    lat_records.mkdir()
    lat = b.make_checkout(tmp / "latency", latency_plan(agent, lat_records))
    seen: list[float] = []
    for rep in range(args.reps):
        b.progress(f"latency over dask: run {rep + 1}")
        seen += latencies(lat, lat_records, tmp / "lat.log")
    table = report.table("DONE printed → stamp, over Dask", "runs | samples | p50 | p95")
    table.add(args.reps, len(seen), f"{b.median(seen):.1f} ms", f"{b.p95(seen):.1f} ms")
    report.check("dask: p50 DONE → stamp", b.median(seen), P50, "ms")
    report.check("dask: p95 DONE → stamp", b.p95(seen), P95, "ms")


if __name__ == "__main__":
    sys.exit(b.main("dask", "The dask executor beside local", body, default_reps=3))
