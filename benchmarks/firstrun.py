"""First run of a big plan: does dispatching slow down as the plan grows?

The same realistic DAG generator as `noop`, at 1,000 and 10,000 tasks, each run once from
scratch with `doit -n 8` for at most BUDGET seconds (then SIGINT), side by side in one
process so both see the same machine. The dispatch rate is taken from the stamps' mtimes
(tasks finished per second between the first and the last stamp), so plan loading, which
is measured by `noop`, does not count; the wall rate (stamps / whole run) is shown too.
Target (issue 11): the 10,000-task rate is at least 0.8 of the 1,000-task rate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _bench as b

SIZES = (1000, 10000)
PROJECTS = 8
BUDGET = 20.0
TARGET = 1 / 0.8  # 1,000-task rate / 10,000-task rate


def first_run(tmp: Path, n: int, budget: float) -> tuple[float, float, int, float]:
    """(dispatch rate, wall rate, stamps, seconds) of one first run."""
    plan = b.realistic_dag(n, PROJECTS, seed=n)
    co = b.make_checkout(tmp / f"orchlib-{n}", plan)
    b.warm_up(co)
    b.progress(f"orchlib {n}: first run, doit -n 8 (budget {budget:.0f} s)")
    seconds, _ = b.run_budgeted(b.doit_argv("-n", "8"), co, tmp / f"first-{n}.log", budget)
    times = sorted(p.stat().st_mtime for p in b.stamps_dir(co, "bench").glob("*.json"))
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span > 0 else 0.0
    return rate, len(times) / seconds if seconds else 0.0, len(times), seconds


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    table = report.table(
        "First run, doit -n 8, shell tasks `true` (one run each, side by side)",
        "tasks | stamps written | run time | dispatch rate (first → last stamp) | wall rate",
    )
    rates: dict[int, float] = {}
    for n in args.sizes:
        rate, wall, done, seconds = first_run(tmp, n, args.budget)
        rates[n] = rate
        table.add(
            f"{n:,}", f"{done:,}", b.fmt_s(seconds), f"{rate:.1f} tasks/s", f"{wall:.1f} tasks/s"
        )
    if set(SIZES) <= set(rates) and rates[max(SIZES)]:
        ratio = rates[min(SIZES)] / rates[max(SIZES)]
        report.check("first run: 1,000-task rate / 10,000-task rate", ratio, TARGET)
    report.notes.append(
        f"Plan: {PROJECTS} projects, the `noop` benchmark's realistic DAG. Each run is stopped "
        f"after {args.budget:.0f} s; the 1,000-task plan usually finishes first. The target "
        "≤ 1.25× is the issue's 'the 10,000-task rate is at least 0.8 of the 1,000-task rate'."
    )


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds per run")


if __name__ == "__main__":
    sys.exit(b.main("firstrun", "First run of a big plan", body, default_reps=1, extra=options))
