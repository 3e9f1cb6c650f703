"""Watching at scale: 256 agents at once, each printing 10 MB as fast as it can, then DONE.

A plan of N tasks in N projects (`--agents`, default 256), each run by a fake agent (a
small Python script) that writes `--mb` MB (default 10) of 100-byte lines in 1 MiB writes,
then its DONE line, and exits; `doit -n N`. Reported: how many agents were stamped done
within `--budget` seconds (the run is stopped with SIGINT then), the peak RSS of the `doit`
process alone (VmHWM, sampled every 20 ms), its wall and CPU time, and two rates: output
read per second of wall time (the agents' own writing included) and output read and
scanned per CPU second of the `doit` process (its cost per byte).
Targets: every agent done, peak RSS <= 100 MB, read-and-scan rate >= 200 MB/s (wall).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import _bench as b
from memory import AGENT, vm_hwm_kb
from memory import plan as loud_plan

TARGET_MB = 100.0
TARGET_RATE = 200.0  # MB/s


class Run(NamedTuple):
    done: int  # agents stamped done
    peak_mb: float  # VmHWM of the doit process
    wall: float
    doit_cpu: float  # the doit process alone (its agents not included)
    finished: bool  # the run ended by itself within the budget


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid` alone, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(co: Path, log: Path, agents: int, budget: float) -> Run:
    """One run from scratch, sampled while it runs; stopped with SIGINT after `budget` s."""
    b.reset_checkout(co)
    with open(log, "ab") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(
            b.doit_argv("-n", str(agents)), cwd=co, stdout=sink, stderr=subprocess.STDOUT,
            env=b.env(), start_new_session=True,
        )  # fmt: skip
        peak, cpu, stopped = 0, 0.0, False
        while not os.wait4(proc.pid, os.WNOHANG)[0]:
            peak = max(peak, vm_hwm_kb(proc.pid) or 0)
            cpu = cpu_seconds(proc.pid) or cpu
            elapsed = time.perf_counter() - start
            if elapsed > budget and not stopped:
                stopped = True
                os.killpg(proc.pid, signal.SIGINT)
            elif elapsed > budget + 60:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.02)
        wall = time.perf_counter() - start
    return Run(b.count_stamps(co, "scale"), peak / 1024, wall, cpu, not stopped)


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    agent = tmp / "agent.py"
    agent.write_text(AGENT)
    co = b.make_checkout(tmp / "checkout", loud_plan(agent, args.agents, args.mb, "scale"))
    b.warm_up(co)
    runs = []
    for rep in range(args.reps):
        b.progress(f"run {rep + 1} of {args.reps}: {args.agents} agents × {args.mb} MB")
        runs.append(one_run(co, tmp / "doit.log", args.agents, args.budget))
    table = report.table(
        f"{args.agents} concurrent agents × {args.mb} MB of output, `doit -n {args.agents}`",
        "figure | median | worst | runs",
    )
    total = args.agents * args.mb
    done = [r.done for r in runs]
    table.add("agents done", f"{b.median(done):.0f} of {args.agents}", min(done), len(runs))
    peak = [r.peak_mb for r in runs]
    table.add("peak RSS of `doit` (VmHWM)", b.fmt_num(b.median(peak), "MB"),
              b.fmt_num(max(peak), "MB"), len(runs))  # fmt: skip
    wall = [r.wall for r in runs]
    table.add("wall time", b.fmt_s(b.median(wall)), b.fmt_s(max(wall)), len(runs))
    cpu = [r.doit_cpu for r in runs]
    table.add("CPU time of `doit` alone", b.fmt_s(b.median(cpu)), b.fmt_s(max(cpu)), len(runs))
    # Only output that was read counts: a run stopped at its budget read what it stamped.
    rates = [r.done * args.mb / r.wall for r in runs]
    per_cpu = [r.done * args.mb / max(r.doit_cpu, 1e-3) for r in runs]
    table.add("read and scanned per second of wall", f"{b.median(rates):.0f} MB/s",
              f"{min(rates):.0f} MB/s", len(runs))  # fmt: skip
    table.add("read and scanned per CPU second of `doit`", f"{b.median(per_cpu):.0f} MB/s",
              f"{min(per_cpu):.0f} MB/s", len(runs))  # fmt: skip
    table.add("output", f"{total} MB", "", "")
    if not all(r.finished for r in runs):
        report.notes.append(f"a run was stopped at its budget of {args.budget:.0f} s")
    report.check(f"agents not done, {args.agents} × {args.mb} MB", args.agents - min(done), 0, "")
    report.check(f"peak RSS of doit, {args.agents} agents (max)", max(peak), TARGET_MB, "MB")
    report.check("read-and-scan rate (wall, median)", b.median(rates), TARGET_RATE, " MB/s",
                 at_least=True)  # fmt: skip


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", type=int, default=256, help="agents at once")
    parser.add_argument("--mb", type=int, default=10, help="MB each agent prints")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds before SIGINT")


if __name__ == "__main__":
    sys.exit(b.main("scale", "Scale: 256 loud agents at once", body, default_reps=1,
                    extra=options))  # fmt: skip
