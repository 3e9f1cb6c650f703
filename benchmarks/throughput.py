"""Throughput: 300 independent shell tasks running `true`, orchlib `doit -n 8` vs `make -j8`.

orchlib: a plan of 300 tasks without dependencies over 30 projects, each `command: [true]`,
run from a fresh state (no `.orch/`; the last run's moved aside, `_checkout.discard`)
every repetition. make: 300 targets, each runs `true` and touches its stamp file, built
from scratch with `make -j8` every repetition.
Target: orchlib <= 2x make (wall time, median; issue 25).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import _bench as b

TASKS = 300
PROJECTS = 30
SLOTS = 8
TARGET = 2.0
BUDGET = 120.0  # seconds of orchlib runs; fewer repetitions once spent (at least 2)


def plan() -> dict[str, Any]:
    tasks = [
        {
            "id": f"t{i:03d}",
            "project": f"p{i % PROJECTS:02d}",
            "title": f"true #{i}",
            "command": ["true"],
        }
        for i in range(TASKS)
    ]
    return {
        "planId": "tp",
        "summary": "independent no-op tasks",
        "tasks": tasks,
        "projects": b.projects(PROJECTS),
    }


def makefile(root: Path) -> Path:
    names = [f"s/t{i:03d}" for i in range(TASKS)]
    lines = [".PHONY: all", "all: " + " ".join(names)]
    for name in names:
        lines += [f"{name}:", "\t@true", "\t@touch $@"]
    root.mkdir(parents=True)
    (root / "Makefile").write_text("\n".join(lines) + "\n")
    return root


def run_orchlib(co: Path, log: Path) -> b.Timing:
    b.reset_checkout(co)
    timing = b.run(b.doit_argv("-n", str(SLOTS)), co, log)
    done = b.count_stamps(co, "tp")
    if done != TASKS:
        raise RuntimeError(f"orchlib run left {done} of {TASKS} stamps; see {log}")
    return timing


def run_make(mk: Path) -> b.Timing:
    b.discard(mk / "s")
    (mk / "s").mkdir()
    timing = b.run(["make", "-s", f"-j{SLOTS}"], mk)
    if len(list((mk / "s").iterdir())) != TASKS:
        raise RuntimeError("make did not build every stamp")
    return timing


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    co = b.make_checkout(tmp / "orchlib", plan())
    log = tmp / "orchlib.log"
    mk = makefile(tmp / "make") if b.have("make") else None
    b.warm_up(co)
    orch: list[b.Timing] = []
    make: list[b.Timing] = []
    spent = 0.0
    for rep in range(args.reps):
        b.progress(f"repetition {rep + 1}: orchlib doit -n {SLOTS}, make -j{SLOTS}")
        orch.append(run_orchlib(co, log))
        spent += orch[-1].wall
        if mk:
            make.append(run_make(mk))
        if rep >= 1 and spent > BUDGET:
            break
    table = report.table(
        f"{TASKS} independent `true` tasks, {SLOTS} at a time (from scratch each repetition)",
        "runner | wall, median (min–max, n) | tasks/s | CPU (median) | vs make",
    )
    base = b.median([t.wall for t in make]) if make else None
    for name, runs in ((f"orchlib `doit -n {SLOTS}`", orch), (f"`make -j{SLOTS}`", make)):
        if not runs:
            continue
        med = b.median([t.wall for t in runs])
        table.add(
            name,
            b.summary([t.wall for t in runs]),
            f"{TASKS / med:.0f}",
            b.fmt_s(b.median([t.cpu for t in runs])),
            f"{med / base:.1f}×" if base else "–",
        )
    if base:
        ratio = b.median([t.wall for t in orch]) / base
        report.check("orchlib / make, 300 tasks, -n 8 vs -j8 (wall)", ratio, TARGET)
    else:
        report.notes.append("make is not installed: no baseline, no ratio.")
    report.notes.append(
        f"orchlib plan: {TASKS} tasks without dependencies over {PROJECTS} projects "
        "(one task per project at a time), `command: [true]`; `.orch/` moved aside before each "
        "run. make: each target runs `true`, then `touch`es its stamp; stamps moved aside "
        "before each run. What is moved aside is deleted after the last run (`b.discard`: "
        "deleting it in between slows the next run's file creations on ext4). CPU = "
        "user+sys of the process and its children."
    )


if __name__ == "__main__":
    sys.exit(b.main("throughput", f"Throughput: {TASKS} shell tasks", body, default_reps=5))
