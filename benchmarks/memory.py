"""Orchestrator memory: 64 agents at once, each printing 10 MB of output and then DONE.

A plan of 64 tasks in 64 projects, each run by a fake agent (a small Python script in the
temp dir) that writes 10 MB of 100-byte lines to stdout as fast as it can, then its DONE
line, and exits; `doit -n 64`. The peak RSS of the `doit` process alone is its VmHWM,
sampled from /proc/<pid>/status every 20 ms while it runs (VmHWM only grows, so the last
sample is the peak). ru_maxrss from wait4() is shown too: it also covers the agents, so it
is an upper bound. Target: peak RSS <= 150 MB. Wall time is reported.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import _bench as b

AGENTS = 64
MB_EACH = 10
TARGET_MB = 150.0
TIMEOUT = 300.0  # seconds; a hung run is killed

AGENT = """\
import os, sys
line = b"agent output: building, testing, reporting ... " + b"." * 51 + b"\\n"  # 100 bytes
chunk = line * 640
total, out = int(sys.argv[1]) * 1024 * 1024, sys.stdout.buffer
for _ in range(total // len(chunk)):
    out.write(chunk)
out.write(line * ((total % len(chunk)) // len(line)))
out.write(b"[DONE:" + os.environ["TERMINAL_ID"].encode() + b"] printed the lot\\n")
out.flush()
"""


def plan(
    agent: Path, agents: int = AGENTS, mb: int = MB_EACH, plan_id: str = "mem"
) -> dict[str, Any]:
    """`agents` tasks in as many projects, each run by the loud `agent` printing `mb` MB."""
    cmd = [sys.executable, str(agent), str(mb)]
    tasks = [
        {"id": f"a{i:03d}", "project": f"p{i:02d}", "title": f"{mb} MB of output"}
        for i in range(agents)
    ]
    return {
        "planId": plan_id,
        "summary": "loud agents",
        "agent": {"command": cmd, "prompt": "stdin"},
        "projects": b.projects(agents),
        "tasks": tasks,
    }


def vm_hwm_kb(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


class Run(NamedTuple):
    peak_mb: float  # VmHWM of the doit process
    maxrss_mb: float  # ru_maxrss from wait4: doit or any of its reaped agents
    wall: float
    cpu: float  # doit and its agents


def one_run(co: Path, log: Path) -> Run:
    """One run from scratch; the doit process is sampled while it runs and reaped by wait4."""
    b.reset_checkout(co)
    with open(log, "ab") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(
            b.doit_argv("-n", str(AGENTS)),
            cwd=co,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=b.env(),
            start_new_session=True,
        )
        peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, vm_hwm_kb(proc.pid) or 0)
            if time.perf_counter() - start > TIMEOUT:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"doit exited {proc.returncode}; see {log}")
    if b.count_stamps(co, "mem") != AGENTS:
        raise RuntimeError(f"not every agent was stamped; see {log}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(peak / 1024, usage.ru_maxrss / 1024, wall, cpu)


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    agent = tmp / "agent.py"
    agent.write_text(AGENT)
    co = b.make_checkout(tmp / "checkout", plan(agent))
    b.warm_up(co)
    runs = []
    for rep in range(args.reps):
        b.progress(f"run {rep + 1} of {args.reps}: {AGENTS} agents × {MB_EACH} MB")
        runs.append(one_run(co, tmp / "doit.log"))
    table = report.table(
        f"{AGENTS} concurrent agents × {MB_EACH} MB of output, `doit -n {AGENTS}`",
        "figure | median | max | runs",
    )

    def row(label: str, values: list[float], fmt: Callable[[float], str]) -> None:
        table.add(label, fmt(b.median(values)), fmt(max(values)), len(values))

    peak = [r.peak_mb for r in runs]
    row("peak RSS of `doit` (VmHWM)", peak, lambda v: b.fmt_num(v, "MB"))
    row("ru_maxrss (doit or any agent)", [r.maxrss_mb for r in runs], lambda v: b.fmt_num(v, "MB"))
    row("wall time", [r.wall for r in runs], b.fmt_s)
    row("CPU time (doit + agents)", [r.cpu for r in runs], b.fmt_s)
    wall = [r.wall for r in runs]
    total = AGENTS * MB_EACH
    table.add("output read", f"{total} MB ({total / b.median(wall):.0f} MB/s)", "", "")
    report.check("peak RSS of doit, 64 agents × 10 MB (max over runs)", max(peak), TARGET_MB, "MB")


if __name__ == "__main__":
    sys.exit(b.main("memory", "Memory: 64 loud agents", body, default_reps=2))
