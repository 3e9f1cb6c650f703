"""Where a no-op re-run's time goes, against the floor every `doit` pays (issue 25).

The no-op target compares orchlib's `doit` in a done 1,000-task checkout with bare doit on
1,000 trivial tasks (`noop.py`). Both start the same interpreter and import the same doit
before either reads a dodo.py: that floor F is in both figures. With orchlib's own work O
(importing orchlib, loading the plan, checking 1,000 stamps, ...) and bare doit's own work
B, the ratio is (F + O) / (F + B); it is at most 0.5 only when O <= (B - F) / 2. This
measures F, O and B (CPU and wall, interleaved) and orchlib's imports within O, and prints
what O would have to be.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import _bench as b
import noop

TASKS = 1000
STEPS = {
    "python": ["-c", "pass"],  # the interpreter and site (with an editable install: its finder)
    "doit import": ["-c", "import doit.doit_cmd"],  # what any `doit` imports before a dodo.py
}


def import_share(co: Path) -> tuple[float, float]:
    """Seconds of orchlib's and of everything's imports in one no-op run (-X importtime)."""
    argv = [sys.executable, "-X", "importtime", "-m", "doit"]
    out = subprocess.run(argv, cwd=co, env=b.env(), capture_output=True, text=True, check=True)
    own = total = 0
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| +(\S+)", line)
        if match:
            total += int(match[1])
            own += int(match[1]) if match[2].startswith("orchlib") else 0
    return own / 1e6, total / 1e6


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    plan = b.realistic_dag(TASKS, noop.PROJECTS, seed=TASKS)
    co = b.make_checkout(tmp / "orchlib", plan)
    b.warm_up(co)
    noop.setup_orchlib(co, TASKS, report)
    bare = noop.bare_doit(tmp / "doit", plan)
    log = tmp / "runs.log"
    commands = {name: ([sys.executable, *argv], co) for name, argv in STEPS.items()}
    commands["bare doit"] = ([sys.executable, "bare_doit.py"], bare)
    commands["orchlib doit"] = (b.doit_argv(), co)
    for argv, cwd in commands.values():  # warm-up: bytecode compiled, DBs written
        b.run(argv, cwd, log)
        b.run(argv, cwd, log)
    b.progress(f"{args.reps} interleaved repetitions of {len(commands)} commands")
    runs: dict[str, list[b.Timing]] = {name: [] for name in commands}
    for _ in range(args.reps):
        for name, (argv, cwd) in commands.items():
            runs[name].append(b.run(argv, cwd, log))
    shares = [import_share(co) for _ in range(max(3, args.reps // 3))]
    cpu = {name: b.median([t.cpu for t in timings]) for name, timings in runs.items()}
    wall = {name: b.median([t.wall for t in timings]) for name, timings in runs.items()}
    table = report.table(
        f"A no-op run's parts, {TASKS:,} tasks (median of {args.reps}, interleaved)",
        "part | CPU | wall",
    )
    floor_c, floor_w = cpu["doit import"], wall["doit import"]
    rows = [
        ("Python start-up (`python -c pass`)", cpu["python"], wall["python"]),
        ("F: Python + doit imports (`import doit.doit_cmd`)", floor_c, floor_w),
        ("bare doit no-op", cpu["bare doit"], wall["bare doit"]),
        ("B: bare doit's own work (bare doit − F)", cpu["bare doit"] - floor_c,
         wall["bare doit"] - floor_w),
        ("orchlib `doit` no-op", cpu["orchlib doit"], wall["orchlib doit"]),
        ("O: orchlib's own work (orchlib − F)", cpu["orchlib doit"] - floor_c,
         wall["orchlib doit"] - floor_w),
    ]  # fmt: skip
    for label, c, w in rows:
        table.add(label, b.fmt_s(c), b.fmt_s(w))
    own = b.median([s[0] for s in shares])
    table.add("… of O: importing orchlib's modules (-X importtime, self)", "–", b.fmt_s(own))
    need_c = (cpu["bare doit"] - floor_c - floor_c) / 2
    need_w = (wall["bare doit"] - floor_w - floor_w) / 2
    table.add("O needed for 0.5× ((B − F) / 2)", b.fmt_s(need_c), b.fmt_s(need_w))
    report.notes.append(
        f"orchlib / bare doit = {cpu['orchlib doit'] / cpu['bare doit']:.2f}× (CPU), "
        f"{wall['orchlib doit'] / wall['bare doit']:.2f}× (wall); with O = 0 it would be "
        f"{floor_c / cpu['bare doit']:.2f}× (CPU), {floor_w / wall['bare doit']:.2f}× (wall): "
        "the floor F alone is about half of bare doit's time."
    )


if __name__ == "__main__":
    sys.exit(b.main("noop_floor", "A no-op run against the floor", body, default_reps=15))
