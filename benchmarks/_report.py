"""Benchmark reports: figures, tables, targets, statistics, and the machine they ran on."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


# --- reports --------------------------------------------------------------------------------


@dataclass
class Check:
    """One target: `value` (a ratio or an absolute figure) must be <= `limit`."""

    what: str
    value: float
    limit: float
    unit: str = "×"
    at_least: bool = False  # the value must be >= the limit instead (a rate)

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def row(self) -> list[str]:
        shown = fmt_num(self.value, self.unit)
        if shown == fmt_num(self.limit, self.unit) and not self.passed:
            shown = f"{self.value:.4f}{self.unit}"  # rounding must not hide a miss
        return [
            self.what,
            shown,
            f"{'≥' if self.at_least else '≤'} {fmt_num(self.limit, self.unit)}",
            "PASS" if self.passed else "FAIL",
        ]


@dataclass
class Table:
    """A titled table of strings (rendered as Markdown, readable in a terminal too)."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        rows = [self.headers, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.headers))]

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        body = [line(self.headers), sep, *(line(r) for r in self.rows)]
        return f"**{self.title}**\n\n" + "\n".join(body)


@dataclass
class Report:
    """What a benchmark found: tables of figures, checks against targets, notes."""

    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    revisions: tuple[str, str] = ("", "")  # orchlib at the start and at the end

    def table(self, title: str, headers: str) -> Table:
        """A new table; `headers` is one string, columns separated by " | "."""
        t = Table(title, [h.strip() for h in headers.split(" | ")])
        self.tables.append(t)
        return t

    def check(
        self, what: str, value: float, limit: float, unit: str = "×", at_least: bool = False
    ) -> Check:
        c = Check(what, value, limit, unit, at_least)
        self.checks.append(c)
        return c

    def render(self) -> str:
        """The report as Markdown: tables, the targets table, notes, wall time and load."""
        parts = [f"## {self.title}", *(t.render() for t in self.tables)]
        if self.checks:
            targets = Table("Targets", ["check", "measured", "target", "result"])
            targets.rows = [c.row() for c in self.checks]
            parts.append(targets.render())
        if self.notes:
            parts.append("\n".join(f"- {n}" for n in self.notes))
        before = " / ".join(f"{a:.2f}" for a in self.load_before)
        after = " / ".join(f"{a:.2f}" for a in self.load_after)
        start, end = self.revisions
        code = start if start == end else f"{start}, then {end} (it changed during the run)"
        parts.append(
            f"_orchlib {code}; {self.seconds:.0f} s wall; "
            f"load average (1/5/15 min) before: {before}, after: {after}_"
        )
        return "\n\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for c, d in zip(self.checks, data["checks"], strict=True):
            d["passed"] = c.passed
            d["row"] = c.row()
        data["markdown"] = self.render()
        return data


def fmt_num(value: float, unit: str = "") -> str:
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "s":
        return fmt_s(value)
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g}{unit}"


def fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 100:
        return f"{seconds:.2f} s"
    return f"{seconds:.0f} s"


# --- statistics and timing ------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    """95th percentile, nearest rank (the largest value for fewer than 20 samples)."""
    ordered = sorted(values)
    rank = max(1, -(-95 * len(ordered) // 100))
    return ordered[rank - 1]


def repeat(fn: Callable[[], float], reps: int, budget: float, min_reps: int = 2) -> list[float]:
    """Call `fn` (returns one figure) `reps` times, or fewer once `budget` seconds are spent."""
    figures: list[float] = []
    start = time.perf_counter()
    for _ in range(reps):
        figures.append(fn())
        if len(figures) >= min_reps and time.perf_counter() - start > budget:
            break
    return figures


def summary(values: Sequence[float]) -> str:
    """`median (min–max, n=N)` in seconds."""
    lo, hi = min(values), max(values)
    return f"{fmt_s(median(values))} ({fmt_s(lo)}–{fmt_s(hi)}, n={len(values)})"


# --- machine --------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "doit": _version("doit"),
        "orchlib": f"{_version('orchlib')} @ {orchlib_revision()}",
        "make": _first_line(["make", "--version"]),
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def orchlib_repo() -> Path:
    """The source tree of the orchlib this interpreter imports (a baseline's, under
    `run_all.py --baseline`), else the one beside these benchmarks."""
    spec = importlib.util.find_spec("orchlib")
    if spec is None or spec.origin is None:
        return REPO
    return Path(spec.origin).resolve().parent.parent


def orchlib_revision() -> str:
    """The orchlib code measured: commit, plus a digest of uncommitted changes to orchlib/."""
    repo = orchlib_repo()
    rev = _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    try:
        diff = subprocess.run(
            ["git", "-C", str(repo), "diff", "HEAD", "--", "orchlib"],
            capture_output=True,
            check=False,
            timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return rev
    return f"{rev} + uncommitted {hashlib.sha1(diff).hexdigest()[:7]}" if diff else rev


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout.strip().splitlines() or [""])[0]


# --- RESULTS.md: the generated section and the history around it ---------------------------

BEGIN = "<!-- run_all.py: generated section begins (rewritten by each run; edit outside it) -->"
END = "<!-- run_all.py: generated section ends -->"


def write_generated(path: Path, text: str) -> None:
    """Put `text` between the markers of `path`, keeping everything outside them.

    Earlier sessions' findings and history live outside the markers, so a new run never
    loses them. A file without markers keeps its whole text below the new section, under
    a heading saying it is what the file held before.
    """
    section = f"{BEGIN}\n\n{text.strip()}\n\n{END}"
    old = path.read_text() if path.exists() else ""
    start, end = old.find(BEGIN), old.find(END)
    if 0 <= start < end:
        new = old[:start] + section + old[end + len(END) :]
    elif old.strip():
        new = f"{section}\n\n# Kept from before markers existed\n\n{old.strip()}\n"
    else:
        new = section + "\n"
    path.write_text(new)
