"""Shared helpers of the benchmarks: checkouts in a temp dir, timing, statistics, reports.

Every benchmark is a script `python benchmarks/<name>.py [--reps N] [--json FILE] [--keep]`
that builds what it needs under a fresh temp dir, measures orchlib and its baselines in the
same process run, prints a table with the figures and the ratios against the targets, and
removes the temp dir. `run_all.py` collects the `--json` reports into RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parent.parent
DODO = "from orchlib.dodo import *  # noqa: F403\n"


# --- reports --------------------------------------------------------------------------------


@dataclass
class Check:
    """One target: `value` (a ratio or an absolute figure) must be <= `limit`."""

    what: str
    value: float
    limit: float
    unit: str = "×"

    @property
    def passed(self) -> bool:
        return self.value <= self.limit

    def row(self) -> list[str]:
        return [
            self.what,
            fmt_num(self.value, self.unit),
            f"≤ {fmt_num(self.limit, self.unit)}",
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

    def table(self, title: str, headers: str) -> Table:
        """A new table; `headers` is one string, columns separated by " | "."""
        t = Table(title, [h.strip() for h in headers.split(" | ")])
        self.tables.append(t)
        return t

    def check(self, what: str, value: float, limit: float, unit: str = "×") -> Check:
        c = Check(what, value, limit, unit)
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
        parts.append(
            f"_{self.seconds:.0f} s wall; load average (1/5/15 min) before: {before}, "
            f"after: {after}_"
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


# --- processes ------------------------------------------------------------------------------


def env() -> dict[str, str]:
    """The environment for measured commands: no terminal width or colour surprises."""
    out = dict(os.environ)
    for key in ("COLUMNS", "LINES", "FORCE_COLOR", "PYTHONBREAKPOINT"):
        out.pop(key, None)
    out["NO_COLOR"] = "1"
    return out


def doit_argv(*args: str) -> list[str]:
    """`doit ARGS` with this interpreter (orchlib and bare doit start the same way)."""
    return [sys.executable, "-m", "doit", *args]


class Timing(NamedTuple):
    """One finished command: wall seconds, CPU seconds (it and its children), exit code."""

    wall: float
    cpu: float
    code: int


def run(
    argv: Sequence[str],
    cwd: Path,
    log: Path | None = None,
    ok: Sequence[int] = (0,),
    timeout: float | None = None,
) -> Timing:
    """Run a command to its end. Output goes to `log` (or nowhere); a bad exit code raises."""
    sink = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        before = _children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(
            argv,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env(),
            timeout=timeout,
            check=False,
        )
        elapsed = time.perf_counter() - start
        cpu = _children_cpu() - before
    finally:
        if log:
            sink.close()  # type: ignore[union-attr]
    if proc.returncode not in ok:
        tail = log.read_text(errors="replace")[-3000:] if log else ""
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode} in {cwd}\n{tail}")
    return Timing(elapsed, cpu, proc.returncode)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_budgeted(argv: Sequence[str], cwd: Path, log: Path, budget: float) -> tuple[float, bool]:
    """Run a command for at most `budget` seconds (then SIGINT, SIGKILL); (seconds, finished)."""
    with open(log, "ab") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env=env(), start_new_session=True
        )
        try:
            code = proc.wait(timeout=budget)
            return time.perf_counter() - start, code == 0
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return time.perf_counter() - start, False


def have(program: str) -> bool:
    return shutil.which(program) is not None


# --- checkouts and plans --------------------------------------------------------------------


def make_checkout(root: Path, plan: dict[str, Any]) -> Path:
    """A checkout at `root` with `plan` as plans/<planId>.json."""
    (root / "plans").mkdir(parents=True, exist_ok=True)
    (root / "dodo.py").write_text(DODO)
    (root / "plans" / f"{plan['planId']}.json").write_text(json.dumps(plan, indent=1))
    return root


def reset_checkout(root: Path) -> None:
    """Forget every run: remove `.orch/` (stamps, state, logs, doit DB) and the projects."""
    shutil.rmtree(root / ".orch", ignore_errors=True)
    shutil.rmtree(root / "work", ignore_errors=True)


def projects(count: int) -> list[dict[str, str]]:
    return [{"name": f"p{i:02d}", "path": f"./work/p{i:02d}"} for i in range(count)]


def realistic_dag(
    n: int, n_projects: int, seed: int, command: Sequence[str] = ("true",)
) -> dict[str, Any]:
    """A plan of `n` shell tasks over a few projects, shaped like a real multi-project plan.

    Projects get uneven shares of the work; a task usually follows the previous task of
    its project and often needs one or two recent tasks of other projects.
    """
    rng = random.Random(seed)
    weights = [1.0 + rng.random() * 2 for _ in range(n_projects)]
    last_of: dict[int, str] = {}
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        tid, proj = f"t{i:05d}", rng.choices(range(n_projects), weights)[0]
        deps = set()
        if proj in last_of and rng.random() < 0.6:
            deps.add(last_of[proj])
        window = tasks[max(0, i - 200) : i]
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            if window:
                deps.add(rng.choice(window)["id"])
        tasks.append(
            {
                "id": tid,
                "project": f"p{proj:02d}",
                "title": f"step {i}",
                "description": f"shell step {i}",
                "dependsOn": sorted(deps),
                "command": list(command),
            }
        )
        last_of[proj] = tid
    return {
        "planId": "bench",
        "summary": f"{n} shell tasks",
        "projects": projects(n_projects),
        "tasks": tasks,
    }


def stamps_dir(root: Path, plan_id: str) -> Path:
    return root / ".orch" / plan_id / "stamps"


def count_stamps(root: Path, plan_id: str) -> int:
    folder = stamps_dir(root, plan_id)
    return sum(1 for p in folder.glob("*.json")) if folder.is_dir() else 0


def stamp_snapshot(root: Path, plan_id: str) -> dict[str, int]:
    """Every stamp's mtime: equal snapshots before and after prove a run redid nothing."""
    folder = stamps_dir(root, plan_id)
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}


def stamp_missing(root: Path) -> int:
    """Write a valid stamp for every task that has none, through orchlib's own stamp API.

    The fallback when a real run cannot finish within the benchmark's budget: the result
    is the done state a finished run leaves (stamps in dependency order, current spec hash).
    """
    from orchlib import stamps
    from orchlib.checkout import Checkout
    from orchlib.events import now_iso

    co = Checkout.load(root)
    written = 0
    for plan in co.plans.values():
        for phase in plan.phases:
            for tid in phase:
                if co.stamp(plan.plan_id, tid) is not None:
                    continue
                task = plan.tasks[tid]
                stamps.write(
                    co.stamp_path(plan.plan_id, tid),
                    {
                        "taskId": tid,
                        "planId": plan.plan_id,
                        "project": task.project,
                        "title": task.title,
                        "summary": "stamped by the benchmark setup",
                        "finishedAt": now_iso(),
                        "attempt": 1,
                        "terminalId": f"term-{tid}-bench",
                        "specHash": co.spec_hash(plan, task),
                        "durationSeconds": 0.0,
                        "agent": task.agent.name,
                        "inputs": {},
                    },
                )
                written += 1
    return written


class StampWatch:
    """Records when each stamp appears at its path (inotify on the stamps folder).

    A stamp is written to a temp file and renamed into place, so its arrival is the
    IN_MOVED_TO (or IN_CREATE) event of `<taskId>.json`; the wall clock is read when the
    event is read. Linux only.
    """

    IN_CREATE, IN_MOVED_TO = 0x100, 0x80

    def __init__(self, folder: Path) -> None:
        import ctypes
        import ctypes.util

        folder.mkdir(parents=True, exist_ok=True)
        self.seen: dict[str, float] = {}
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = self.IN_CREATE | self.IN_MOVED_TO
        if self._libc.inotify_add_watch(self._fd, os.fsencode(folder), mask) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            now = time.time()
            if self._fd not in ready:
                return
            buf = os.read(self._fd, 1 << 16)
            pos = 0
            while pos < len(buf):
                _wd, _mask, _cookie, size = struct.unpack_from("iIII", buf, pos)
                name = buf[pos + 16 : pos + 16 + size].rstrip(b"\0").decode()
                pos += 16 + size
                if name.endswith(".json") and not name.startswith("."):
                    self.seen.setdefault(name[: -len(".json")], now)

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._fd, self._stop_r, self._stop_w):
            os.close(fd)


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
        "orchlib": f"{_version('orchlib')} @ {_git_rev()}",
        "make": _first_line(["make", "--version"]),
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_rev() -> str:
    rev = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(REPO), "status", "--porcelain", "--", "orchlib"])
    return rev + (" + uncommitted orchlib changes" if dirty not in ("", "?") else "")


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout.strip().splitlines() or [""])[0]


# --- the entry point ------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(name: str, keep: bool) -> Iterator[Path]:
    """A fresh temp dir for one benchmark, removed afterwards unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix=f"orchlib-bench-{name}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(
    name: str,
    title: str,
    body: Callable[[Path, Report, argparse.Namespace], None],
    default_reps: int,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse the common options, run `body` in a temp dir, print (and save) the report."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--reps", type=int, default=default_reps, help="repetitions per figure")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    if extra:
        extra(parser)
    args = parser.parse_args()
    report = Report(name, title, load_before=os.getloadavg())
    start = time.perf_counter()
    with workdir(name, args.keep) as tmp:
        body(tmp, report, args)
    report.seconds = time.perf_counter() - start
    report.load_after = os.getloadavg()
    print(report.render(), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    missed = [c for c in report.checks if not c.passed]
    return 1 if args.strict and missed else 0


def progress(message: str) -> None:
    """A progress line on stderr (the report itself goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
