"""No-op re-run of a done plan: this orchlib beside a baseline commit, both beside bare doit.

The baseline (default `main`) is checked out in a temporary `git worktree` and run from
there (`PYTHONPATH` puts it before the installed orchlib), in the same process run as the
current code and bare doit, interleaved, so the ratios are comparable whatever the load.
Each side gets its own checkout of the same plan (`noop.py`'s realistic DAG): 1,000 tasks
done by a real first run (`doit -n 8`), 10,000 tasks stamped through that side's own stamp
API (a real first run takes minutes). Bare doit: `noop.py`'s dodo.py of 1,000 trivial tasks.
Target (issue 25): orchlib <= 0.5x bare doit at 1,000 tasks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import _bench as b
import noop

TARGET = 0.5
STAMP_ALL = """\
from pathlib import Path
from orchlib.checkout import Checkout
from orchlib.events import now_iso
from orchlib.state import stamps
co = Checkout.load(Path.cwd())
# A baseline older than state/uptodate.py asks the checkout for the spec hash.
spec_of = co.specs.of if hasattr(type(co), "specs") else co.spec_hash
for plan in co.plans.values():
    for phase in plan.phases:
        for tid in phase:
            task = plan.tasks[tid]
            stamps.write(co.stamp_path(plan.plan_id, tid), stamps.Stamp.from_json({
                "taskId": tid, "planId": plan.plan_id, "project": task.project,
                "title": task.title, "summary": "stamped by the benchmark", "attempt": 1,
                "finishedAt": now_iso(), "terminalId": "term-" + tid + "-bench",
                "specHash": spec_of(plan, task), "durationSeconds": 0.0,
                "agent": task.agent.name, "inputs": {}}))
"""


@contextlib.contextmanager
def code_of(source: Path | None) -> Iterator[None]:
    """Commands started inside run the orchlib at `source` (None: the installed one)."""
    old = os.environ.get("PYTHONPATH")
    if source is not None:
        os.environ["PYTHONPATH"] = str(source)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@contextlib.contextmanager
def baseline_tree(rev: str, tmp: Path) -> Iterator[Path]:
    """`rev` checked out in a temporary worktree of this repository."""
    repo = Path(__file__).resolve().parent.parent
    where = tmp / "baseline-src"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(where), rev],
                   check=True)  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(where)],
                       check=False)  # fmt: skip


def revision(source: Path) -> str:
    out = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return out.stdout.strip() or "?"


def done_checkout(root: Path, n: int, source: Path | None) -> Path:
    """A checkout of the plan with every task done, by `source`'s orchlib."""
    plan = b.realistic_dag(n, noop.PROJECTS, seed=n)
    co = b.make_checkout(root, plan)
    for project in plan["projects"]:
        (co / project["path"]).mkdir(parents=True, exist_ok=True)
    log = root.parent / f"{root.name}-setup.log"
    with code_of(source):
        if n <= 1000:
            b.run(b.doit_argv("-n", "8"), co, log, timeout=300)
        else:
            b.run([sys.executable, "-c", STAMP_ALL], co, log, timeout=600)
        b.warm_up(co)
        noop.noop_orchlib(co, log)  # the first no-op brings the state files in line
    return co


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    table = report.table(
        f"No-op re-run: this orchlib beside {args.baseline} (wall time, median (min–max, n))",
        "tasks | this orchlib | baseline | bare doit, 1,000 tasks | this / bare | baseline / bare"
        " | this / baseline | CPU this / baseline",
    )
    with baseline_tree(args.baseline, tmp) as source:
        report.notes.append(f"Baseline: `{args.baseline}` = {revision(source)}.")
        bare = noop.bare_doit(tmp / "doit-1000", b.realistic_dag(1000, noop.PROJECTS, seed=1000))
        pure = [sys.executable, "bare_doit.py"]
        b.run(pure, bare)
        b.run(pure, bare)  # warm-up
        for n in args.sizes:
            b.progress(f"{n} tasks: setting up both checkouts")
            this = done_checkout(tmp / f"this-{n}", n, None)
            base = done_checkout(tmp / f"base-{n}", n, source)
            runs: dict[str, list[b.Timing]] = {"this": [], "base": [], "bare": []}
            b.progress(f"{n} tasks: {args.reps} interleaved repetitions")
            for _ in range(args.reps):
                runs["this"].append(noop.noop_orchlib(this, tmp / "this.log"))
                with code_of(source):
                    runs["base"].append(noop.noop_orchlib(base, tmp / "base.log"))
                runs["bare"].append(b.run(pure, bare))
            wall = {k: b.median([t.wall for t in v]) for k, v in runs.items()}
            cpu = {k: b.median([t.cpu for t in v]) for k, v in runs.items()}
            table.add(
                f"{n:,}",
                b.summary([t.wall for t in runs["this"]]),
                b.summary([t.wall for t in runs["base"]]),
                b.summary([t.wall for t in runs["bare"]]),
                f"{wall['this'] / wall['bare']:.2f}×",
                f"{wall['base'] / wall['bare']:.2f}×",
                f"{wall['this'] / wall['base']:.2f}×",
                f"{cpu['this'] / cpu['base']:.2f}×",
            )
            if n == 1000:
                report.check("this orchlib / bare doit, no-op, 1,000 tasks (wall)",
                             wall["this"] / wall["bare"], TARGET)  # fmt: skip
    report.notes.append(
        "Both sides run with the same interpreter and doit; runs are interleaved (this, "
        "baseline, bare doit). Bare doit is always the 1,000-task dodo.py of noop.py, so "
        "the 10,000-task row shows how the no-op grows with the plan."
    )


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", default="main", help="the commit to compare with")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])


if __name__ == "__main__":
    sys.exit(b.main("noop_baseline", "No-op re-run beside a baseline commit", body,
                    default_reps=15, extra=options))  # fmt: skip
