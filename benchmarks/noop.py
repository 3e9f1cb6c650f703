"""No-op re-run of a fully done plan: orchlib vs bare doit vs make, at 1,000 and 10,000 tasks.

orchlib: a checkout whose plan has N shell tasks (`true`) over 8 projects with a realistic
DAG (benchmarks/_bench.py `realistic_dag`), run to completion once; then `doit` is timed.
Bare doit: a dodo.py with the same N tasks and the same task_dep edges, each with a
`config_changed` uptodate and a target file, the sqlite3 backend, run once. It runs through
a launcher (`BARE_LAUNCHER`) that leaves out commands from the `doit.COMMAND` entry points:
with orchlib installed, plain `doit` anywhere runs orchlib's `run` command, which imports
all of orchlib. `doit` with those plugins is measured as well, for information.
make: a Makefile whose targets are stamp files with the same prerequisites, built once.
Targets: orchlib <= 0.5x bare doit at 1,000 tasks (issue 25), <= 0.3x at 10,000.
`noop_baseline.py` measures the same beside a baseline commit (default main).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import _bench as b

SIZES = (1000, 10000)
TARGETS = {1000: 0.5, 10000: 0.3}
PROJECTS = 8
SETUP_BUDGET = {1000: 30.0, 10000: 40.0}  # seconds for the real first run, then stamped directly

BARE_DODO = '''\
import json
from pathlib import Path

from doit.tools import config_changed

DOIT_CONFIG = {"backend": "sqlite3", "dep_file": ".doit.sqlite3", "continue": True,
               "verbosity": 2}
SPEC = json.loads(Path("tasks.json").read_text())


def touch(path):
    Path(path).write_text("done\\n")


def task_bench():
    """Trivial tasks: a target file each, uptodate on a config value."""
    for name, deps in SPEC:
        target = "stamps/" + name
        yield {"name": name, "actions": [(touch, [target])], "targets": [target],
               "task_dep": ["bench:" + d for d in deps], "uptodate": [config_changed(name)]}
'''


BARE_LAUNCHER = """\
import sys

from doit.doit_cmd import DoitMain
from doit.plugin import PluginDict


class BareDoit(DoitMain):
    \"\"\"doit's own commands only: no plugin commands from entry points.\"\"\"

    def get_cmds(self):
        cmds = PluginDict()
        for cmd_cls in self.DOIT_CMDS:
            cmds[cmd_cls.get_name()] = cmd_cls
        cmds.update(cmds._from_ini(self.config, "COMMAND"))
        return cmds


sys.exit(BareDoit().run(sys.argv[1:]))
"""


def bare_doit(root: Path, plan: dict[str, Any]) -> Path:
    """A dodo.py with the plan's tasks as trivial doit tasks (same names and task_dep)."""
    (root / "stamps").mkdir(parents=True)
    spec = [[t["id"], t["dependsOn"]] for t in plan["tasks"]]
    (root / "tasks.json").write_text(json.dumps(spec))
    (root / "dodo.py").write_text(BARE_DODO)
    (root / "bare_doit.py").write_text(BARE_LAUNCHER)
    return root


def makefile(root: Path, plan: dict[str, Any]) -> Path:
    """A Makefile whose targets are stamp files with the plan's dependencies as prerequisites."""
    (root / "s").mkdir(parents=True)
    lines = [".PHONY: all", "all: " + " ".join(f"s/{t['id']}" for t in plan["tasks"])]
    for task in plan["tasks"]:
        deps = " ".join(f"s/{d}" for d in task["dependsOn"])
        lines += [f"s/{task['id']}: {deps}".rstrip(), "\t@touch $@"]
    (root / "Makefile").write_text("\n".join(lines) + "\n")
    return root


def setup_orchlib(root: Path, n: int, report: b.Report) -> str:
    """Run the plan once (`doit -n 8`); what cannot finish in the budget is stamped directly."""
    log = root.parent / f"orchlib-{n}-setup.log"
    budget = SETUP_BUDGET[n]
    b.progress(f"orchlib {n}: first run, doit -n 8 (budget {budget:.0f} s)")
    seconds, finished = b.run_budgeted(b.doit_argv("-n", "8"), root, log, budget)
    done = b.count_stamps(root, "bench")
    rate = done / seconds if seconds else 0.0
    if finished and done == n:
        return f"{b.fmt_s(seconds)} ({rate:.0f} tasks/s)"
    stamped = b.stamp_missing(root)
    report.notes.append(
        f"{n:,} tasks: the first real run (`doit -n 8`) was stopped after {seconds:.0f} s "
        f"(budget {budget:.0f} s, then SIGINT) with {done} of {n} tasks done ({rate:.1f} "
        f"tasks/s); the other {stamped} stamps were written through orchlib's stamp API "
        "(`_bench.stamp_missing`: the content a run writes, current spec hash)."
    )
    return f"stopped at {b.fmt_s(seconds)}: {done}/{n} done ({rate:.1f} tasks/s)"


def noop_orchlib(root: Path, log: Path) -> b.Timing:
    before = b.stamp_snapshot(root, "bench")
    timing = b.run(b.doit_argv(), root, log, timeout=120.0)
    if b.stamp_snapshot(root, "bench") != before:
        raise RuntimeError(f"orchlib re-ran tasks in a done plan; see {log}")
    return timing


def size(tmp: Path, n: int, reps: int, report: b.Report, tables: tuple[b.Table, b.Table]) -> None:
    table, first = tables
    plan = b.realistic_dag(n, PROJECTS, seed=n)
    co = b.make_checkout(tmp / f"orchlib-{n}", plan)
    b.warm_up(co)
    setup = setup_orchlib(co, n, report)
    olog = tmp / f"orchlib-{n}-noop.log"
    b.progress(f"orchlib {n}: warm-up no-op run")
    noop_orchlib(co, olog)

    bare = bare_doit(tmp / f"doit-{n}", plan)
    dlog = tmp / f"doit-{n}.log"
    pure = [sys.executable, "bare_doit.py"]
    b.progress(f"bare doit {n}: first run")
    bare_first = b.run(pure, bare, dlog).wall
    b.run(pure, bare, dlog)  # warm-up
    b.run(b.doit_argv(), bare, dlog)  # warm-up (with orchlib's plugin commands)

    mk = makefile(tmp / f"make-{n}", plan) if b.have("make") else None
    make_first = 0.0
    if mk:
        b.progress(f"make {n}: first build (make -j8)")
        make_first = b.run(["make", "-s", "-j8"], mk).wall
        b.run(["make", "-q"], mk)  # exit 0: everything is up to date

    b.progress(f"{n} tasks: {reps} interleaved no-op repetitions")
    runs: dict[str, list[b.Timing]] = {"orchlib": [], "doit": [], "plugged": [], "make": []}
    for _ in range(reps):
        runs["orchlib"].append(noop_orchlib(co, olog))
        runs["doit"].append(b.run(pure, bare, dlog))
        runs["plugged"].append(b.run(b.doit_argv(), bare, dlog))
        if mk:
            runs["make"].append(b.run(["make", "-s"], mk))
    wall = {k: [t.wall for t in v] for k, v in runs.items()}
    cpu = {k: b.median([t.cpu for t in v]) for k, v in runs.items() if v}
    orch, bare_med = b.median(wall["orchlib"]), b.median(wall["doit"])
    table.add(
        f"{n:,}",
        b.summary(wall["orchlib"]),
        b.summary(wall["doit"]),
        b.summary(wall["make"]) if mk else "make not installed",
        f"{orch / bare_med:.2f}×",
        f"{orch / b.median(wall['make']):.0f}×" if mk else "–",
        f"{cpu['orchlib'] / cpu['doit']:.2f}×",
        f"{b.summary(wall['plugged'])}; orchlib / it = {orch / b.median(wall['plugged']):.2f}×",
    )
    first.add(f"{n:,}", setup, b.fmt_s(bare_first), b.fmt_s(make_first) if mk else "–")
    report.check(f"orchlib / bare doit, no-op, {n:,} tasks (wall)", orch / bare_med, TARGETS[n])
    if n == max(SIZES):
        informational(co, reps, report)


def informational(co: Path, reps: int, report: b.Report) -> None:
    """`doit list --all` and `doit status` on the big plan."""
    table = report.table(
        "Other commands on the 10,000-task plan (informational)",
        "command | wall, median (min–max, n)",
    )
    log = co.parent / "commands.log"
    for argv in (["list", "--all"], ["status"]):
        b.progress(f"doit {' '.join(argv)}")
        times = b.repeat(
            lambda a=argv: b.run(b.doit_argv(*a), co, log, ok=(0, 1)).wall,
            reps=max(2, min(reps, 7)),
            budget=30.0,
        )
        table.add(f"doit {' '.join(argv)}", b.summary(times))


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    table = report.table(
        "No-op re-run of a done plan (wall time, median (min–max, n))",
        "tasks | orchlib `doit` | bare doit | make | orchlib/doit | orchlib/make"
        " | CPU time orchlib/doit | `doit` in the bare folder, orchlib installed (informational)",
    )
    first = report.table(
        "Creating the done state (once, informational)",
        "tasks | orchlib first run | bare doit first run | make -j8 first build",
    )
    for n in args.sizes:
        size(tmp, n, args.reps, report, (table, first))
    report.notes.append(
        f"Plan: {PROJECTS} projects, realistic DAG (each task usually follows the previous "
        "task of its project and needs 0–2 recent tasks of other projects), shell tasks `true`. "
        "Bare doit and make get the same task names and dependency edges. Runs of the tools are "
        "interleaved; CPU time = user+sys of the process and its children. "
        "'Bare doit' is doit without plugin commands; the last column is plain `doit` in the "
        "same folder, where the `run` command is orchlib's (an entry point), so every `doit` "
        "on a machine with orchlib installed imports orchlib."
    )


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(SIZES),
        choices=list(SIZES),
        help="plan sizes to measure",
    )


if __name__ == "__main__":
    sys.exit(b.main("noop", "No-op re-run of a done plan", body, default_reps=15, extra=options))
