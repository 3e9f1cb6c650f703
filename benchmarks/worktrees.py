"""Parallel tasks inside one project: `isolation: worktree` with `parallel: 3` vs `parallel: 1`.

One project (a git repository with one commit) and 6 independent shell tasks, each
`sleep 1` and then writing its own file. With `parallel: 3` they run three at a time, each
in its own git worktree, and are merged one at a time; ideally 2 s of sleeping plus
orchlib's and git's overhead. `parallel: 1` runs the same tasks (worktrees and merges too)
one after the other: 6 s plus overhead. Beside them, the same plan without `isolation`
(one at a time in the folder itself, no git) shows what the worktrees and merges cost.
Makespan is read from the stamps (first attempt start, worktree creation included, to the
last stamp, merge included). Target: parallel 3 / parallel 1 <= 0.5 (ideal 0.33).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import _bench as b

TASKS = 6
SLEEP = 1.0
TARGET = 0.5
VARIANTS = {"parallel: 3": 3, "parallel: 1": 1, "no isolation": 0}
HEADERS = "variant | makespan | process wall | makespan - sleeping, per task | merges"


def plan(parallel: int) -> dict[str, Any]:
    project: dict[str, Any] = {"name": "app", "path": "./work/app"}
    if parallel:
        project.update(isolation="worktree", parallel=parallel)
    tasks = [
        {"id": f"t{i}", "project": "app", "title": f"task {i}",
         "command": f"sleep {SLEEP:g} && echo {i} > out{i}.txt"}
        for i in range(1, TASKS + 1)
    ]  # fmt: skip
    return {"planId": "wt", "summary": "worktree benchmark", "projects": [project], "tasks": tasks}


def git(repo: Path, *args: str) -> None:
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example"]
    subprocess.run(["git", *ident, *args], cwd=repo, check=True, capture_output=True)


def fresh_repo(co: Path) -> Path:
    """Forget the last run and start the project again from one commit."""
    b.reset_checkout(co)
    repo = co / "work" / "app"
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "README").write_text("bench\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


def span(co: Path) -> float:
    """First attempt start to last stamp."""
    starts, ends = [], []
    for path in b.stamps_dir(co, "wt").glob("*.json"):
        stamp = json.loads(path.read_text())
        end = datetime.fromisoformat(stamp["finishedAt"].replace("Z", "+00:00")).timestamp()
        starts.append(end - float(stamp["durationSeconds"]))
        ends.append(end)
    return max(ends) - min(starts)


def merge_count(repo: Path) -> int:
    out = subprocess.run(["git", "log", "--merges", "--format=%H"], cwd=repo, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return len(out.split())


def run_once(co: Path, log: Path) -> tuple[float, float, int]:
    repo = fresh_repo(co)
    wall = b.run(b.doit_argv("-n", "8"), co, log).wall
    if b.count_stamps(co, "wt") != TASKS:
        raise RuntimeError(f"not every task was stamped; see {log}")
    return wall, span(co), merge_count(repo)


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    if not b.have("git"):
        report.notes.append("git is not installed: nothing measured.")
        return
    table = report.table(
        f"{TASKS} independent {SLEEP:g} s tasks in one project (median (min–max, n))", HEADERS
    )
    cos = {name: b.make_checkout(tmp / f"p{par}", plan(par)) for name, par in VARIANTS.items()}
    for co in cos.values():
        fresh_repo(co)
        b.warm_up(co)
    walls: dict[str, list[float]] = {name: [] for name in cos}
    spans: dict[str, list[float]] = {name: [] for name in cos}
    merges: dict[str, int] = {}
    for rep in range(args.reps):
        for name, co in cos.items():  # interleaved: load changes hit every variant alike
            b.progress(f"{name}: run {rep + 1} of {args.reps}")
            wall, sp, merges[name] = run_once(co, tmp / f"{VARIANTS[name]}.log")
            walls[name].append(wall)
            spans[name].append(sp)
    for name, par in VARIANTS.items():
        sleeping = SLEEP * TASKS / max(1, par)
        per_task = (b.median(spans[name]) - sleeping) / TASKS
        table.add(name, b.summary(spans[name]), b.summary(walls[name]),
                  b.fmt_s(per_task), merges[name])  # fmt: skip
    ratio = b.median(spans["parallel: 3"]) / b.median(spans["parallel: 1"])
    report.check("makespan parallel: 3 / parallel: 1", ratio, TARGET)
    report.notes.append(
        f"Ideal: {SLEEP * TASKS / 3:g} s vs {SLEEP * TASKS:g} s (ratio 0.33). Each isolated task "
        "adds `git worktree add`, a commit, a `merge --no-ff` and the worktree's removal; merges "
        "of one project run one at a time. 'Makespan - sleeping, per task': the makespan less "
        "the sleeping on the critical path (6 s, or 2 s with parallel: 3), divided by the 6 tasks."
    )


if __name__ == "__main__":
    sys.exit(b.main("worktrees", "Parallel tasks inside one project (git worktrees)", body, 3))
