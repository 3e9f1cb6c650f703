"""`run_all.py --baseline REV`: measure REV and this tree side by side, print issue 25's table.

REV is checked out with `git worktree add --detach` in a temp dir and installed (editable)
in a venv of its own beside it, with exactly the other distributions this interpreter has
(`pip freeze`): doit's start-up depends on what is installed. Each benchmark script of *this* tree
then runs twice in a row: with the venv's interpreter (its `doit` imports REV's orchlib,
entry points included: they come from REV's install) and with this interpreter. Each
report names the orchlib commit it measured (`_report.orchlib_revision` asks the importing
interpreter), and the run refuses to go on when the venv does not import REV's tree.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _bench as b
from run_all import run_one

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = ["throughput", "noop", "latency", "firstrun", "scale", "memory"]
# Shorter settings where the figure needs less (a baseline may hang at scale).
EXTRA = {"noop": ("--sizes", "1000"), "scale": ("--budget", "120")}

Report = dict[str, Any]


def _check(report: Report | None, prefix: str) -> float | None:
    for check in (report or {}).get("checks", []):
        if check["what"].startswith(prefix):
            return float(check["value"])
    return None


def _cell(report: Report | None, label: str, column: int = 1) -> str | None:
    for table in (report or {}).get("tables", []):
        for row in table["rows"]:
            if row[0].startswith(label):
                return str(row[column])
    return None


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{unit}"


def _throughput(r: Report | None) -> str:
    ratio = _check(r, "orchlib / make")
    wall = _cell(r, "orchlib `doit")
    return f"{_fmt(ratio, '.1f', '×')} ({(wall or '–').split(' (')[0]})"


def _noop(r: Report | None) -> str:
    return _fmt(_check(r, "orchlib / bare doit, no-op, 1,000"), ".2f", "×")


def _latency(r: Report | None) -> str:
    parts = [_fmt(_check(r, f"{v}: {p} DONE"), ".0f") for v in ("parallel", "serial")
             for p in ("p50", "p95")]  # fmt: skip
    return f"{parts[0]} / {parts[1]} ms (serial {parts[2]} / {parts[3]})"


def _firstrun(r: Report | None) -> str:
    ratio = _check(r, "first run")
    return _fmt(None if not ratio else 1 / ratio, ".2f")


def _scan_rate(r: Report | None) -> str:
    wall = _cell(r, "read and scanned per second of wall")
    cpu = _cell(r, "read and scanned per CPU second")
    return f"{wall or '–'} ({cpu or '–'} per CPU s of doit)"


def _scale(r: Report | None) -> str:
    done, rss = _cell(r, "agents done"), _cell(r, "peak RSS")
    wall = _cell(r, "wall time")
    return f"{done or '–'} done in {wall or '–'}, {rss or '–'}"


def _memory(r: Report | None) -> str:
    peak, rate = _check(r, "peak RSS"), _cell(r, "output read")
    speed = re.search(r"\((.*)\)", rate or "")
    return f"{_fmt(peak, '.0f', ' MB')}" + (f" ({speed[1]})" if speed else "")


ROWS: list[tuple[str, str, Callable[[Report | None], str], str]] = [
    ("300 independent shell tasks, `-n 8`, vs `make -j8`", "throughput", _throughput, "≤ 2×"),
    ("no-op re-run, 1,000 tasks, vs bare doit", "noop", _noop, "≤ 0.5×"),
    ("DONE printed → stamp on disk, p50 / p95", "latency", _latency, "≤ 10 / 20 ms"),
    ("first run, 10,000 vs 1,000 tasks, rate ratio", "firstrun", _firstrun, "≥ 0.8"),
    ("agent output read and scanned (256 × 10 MB)", "scale", _scan_rate, "≥ 200 MB/s"),
    ("256 agents × 10 MB at once", "scale", _scale, "all done, ≤ 100 MB"),
    ("peak RSS, 64 agents × 10 MB (output rate)", "memory", _memory, "≤ 100 MB at 256"),
]


def table(rev: str, base: dict[str, Report | None], now: dict[str, Report | None]) -> str:
    """Issue 25's table for the benchmarks that ran."""
    out = b.Table(f"Baseline {rev} beside this tree (side by side, one run)",
                  ["measure", f"baseline ({_revision(base)})", f"now ({_revision(now)})",
                   "goal"])  # fmt: skip
    for label, name, cell, goal in ROWS:
        if name in base or name in now:
            out.add(label, cell(base.get(name)), cell(now.get(name)), goal)
    load = [r["load_before"][0] for r in (*base.values(), *now.values()) if r]
    note = f"\n\nLoad average (1 min) before the benchmarks: {min(load):.1f}–{max(load):.1f} "
    note += f"on {os.cpu_count()} CPUs." if load else ""
    return out.render() + (note if load else "")


def _revision(reports: dict[str, Report | None]) -> str:
    revs = {r["revisions"][0] for r in reports.values() if r}
    return ", ".join(sorted(revs)) or "?"


@contextmanager
def installed(rev: str, tmp: Path) -> Iterator[str]:
    """An interpreter whose orchlib is REV's (a worktree and a venv under tmp)."""
    tree, venv = tmp / "baseline", tmp / "venv"
    _git("worktree", "add", "--detach", str(tree), rev)
    try:
        b.progress(f"installing {rev} into {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        # The same distributions as this interpreter's, REV's orchlib instead of ours: what
        # is installed changes doit's start-up (it imports cloudpickle when present).
        freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                                capture_output=True, text=True, check=True).stdout  # fmt: skip
        reqs = tmp / "requirements.txt"
        reqs.write_text("".join(f"{line}\n" for line in freeze.splitlines()
                                if not line.lower().startswith("orchlib")))  # fmt: skip
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(reqs)], check=True, capture_output=True)
        subprocess.run([*pip, "--no-deps", "-e", str(tree)], check=True, capture_output=True)
        # Run from tmp, as the benchmarks' `doit`s do: the cwd must not shadow the install.
        probe = [python, "-c", "import orchlib; print(orchlib.__file__)"]
        where = subprocess.run(probe, capture_output=True, text=True, check=True, cwd=tmp)
        if not Path(where.stdout.strip()).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"the baseline venv imports orchlib from {where.stdout}, not {tree}")
        yield python
    finally:
        _git("worktree", "remove", "--force", str(tree))


def _git(*argv: str) -> None:
    subprocess.run(["git", "-C", str(REPO), *argv], check=True, capture_output=True)


def compare(rev: str, names: list[str], output: Path) -> int:
    """Run `names` for REV and for this tree, alternating; print and write the table."""
    base: dict[str, Report | None] = {}
    now: dict[str, Report | None] = {}
    errors: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="orchlib-bench-baseline-") as tmp_name:
        tmp = Path(tmp_name)
        with installed(rev, tmp) as python:
            for name in names:
                extra = EXTRA.get(name, ())
                for side, py, into in (("base", python, base), ("now", sys.executable, now)):
                    folder = tmp / side
                    folder.mkdir(exist_ok=True)
                    into[name], error = run_one(name, folder, py, extra)
                    if error:
                        errors.append(f"{name} ({side}): {error[-500:]}")
    text = table(rev, base, now)
    info = b.machine()
    info["total benchmark time"] = f"{time.perf_counter() - start:.0f} s"
    machine = b.Table("Machine", ["item", "value"])
    machine.rows = [[k, v] for k, v in info.items()]
    reports = [r["markdown"] for r in now.values() if r]
    base_reports = [r["markdown"] for r in base.values() if r]
    b.write_generated(output, "\n\n".join([
        f"Generated by `python benchmarks/run_all.py --baseline {rev}` ({info['date']}). "
        "How each benchmark works: [README.md](README.md).",
        text, machine.render(), "# This tree", *reports, f"# Baseline {rev}", *base_reports,
    ]))  # fmt: skip
    print(text)
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0
