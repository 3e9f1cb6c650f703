"""Shared helpers of the benchmarks: processes, timing, the common entry point.

Every benchmark is a script `python benchmarks/<name>.py [--reps N] [--json FILE] [--keep]`
that builds what it needs under a fresh temp dir, measures orchlib and its baselines in the
same process run, prints a table with the figures and the ratios against the targets, and
removes the temp dir. `run_all.py` collects the `--json` reports into RESULTS.md.
Reports live in `_report.py`, checkouts and plans in `_checkout.py`; both are re-exported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from _checkout import (
    _DISCARDED,
    StampWatch,
    count_stamps,
    discard,
    empty_files,
    make_checkout,
    projects,
    realistic_dag,
    reset_checkout,
    stamp_missing,
    stamp_snapshot,
    stamps_dir,
)
from _report import (
    Check,
    Report,
    Table,
    fmt_num,
    fmt_s,
    machine,
    median,
    orchlib_revision,
    p95,
    repeat,
    summary,
    write_generated,
)

# This process imports orchlib (`stamp_missing`): no bytecode files in the checkout.
sys.dont_write_bytecode = True

__all__ = [
    "Check", "Report", "StampWatch", "Table", "Timing", "count_stamps", "discard", "doit_argv",
    "empty_files", "env", "fmt_num", "fmt_s", "have", "machine", "main", "make_checkout", "median",
    "orchlib_revision", "p95", "progress", "projects", "realistic_dag", "repeat",
    "reset_checkout", "run", "run_budgeted", "stamp_missing", "stamp_snapshot", "stamps_dir",
    "summary", "warm_up", "workdir", "write_generated",
]  # fmt: skip


# --- processes ------------------------------------------------------------------------------


_PYCACHE: list[Path] = []  # the current benchmark's bytecode cache folder


def env() -> dict[str, str]:
    """The environment for measured commands: no terminal width or colour surprises.

    Bytecode is cached as in a normal install (compiled once, by the warm-up run), but
    under the benchmark's temp dir (PYTHONPYCACHEPREFIX): the checkout is never written to,
    and an environment with PYTHONDONTWRITEBYTECODE=1 does not recompile every module of
    orchlib on every run.
    """
    out = dict(os.environ)
    for key in ("COLUMNS", "LINES", "FORCE_COLOR", "PYTHONBREAKPOINT", "PYTHONDONTWRITEBYTECODE"):
        out.pop(key, None)
    out["NO_COLOR"] = "1"
    if _PYCACHE:
        out["PYTHONPYCACHEPREFIX"] = str(_PYCACHE[-1])
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
    timeout: float | None = 600.0,
) -> Timing:
    """Run a command to its end. Output goes to `log` (or nowhere).

    An exit code outside `ok` raises (with the log's tail), and so does a run longer than
    `timeout` seconds (subprocess.TimeoutExpired; the command is killed).
    """
    sink = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env=env())
        code, cpu, elapsed, timed_out = _reap(proc, start, timeout)
    finally:
        if log:
            sink.close()  # type: ignore[union-attr]
    if timed_out:
        raise subprocess.TimeoutExpired(list(argv), timeout or 0.0)
    if code not in ok:
        tail = log.read_text(errors="replace")[-3000:] if log else ""
        raise RuntimeError(f"{' '.join(argv)} exited {code} in {cwd}\n{tail}")
    return Timing(elapsed, cpu, code)


def _reap(
    proc: subprocess.Popen[bytes], start: float, timeout: float | None
) -> tuple[int, float, float, bool]:
    """Wait for `proc` exactly: (exit code, CPU seconds, wall seconds, timed out).

    A blocking `wait4` returns the moment the child ends, with its own resource usage
    (`Popen.wait(timeout=...)` polls with sleeps of up to 50 ms, which would quantise every
    wall time to 50 ms). A timer thread kills the child when `timeout` runs out.
    """
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    watchdog = threading.Timer(timeout, kill) if timeout else None
    if watchdog:
        watchdog.daemon = True
        watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if watchdog:
            watchdog.cancel()
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, elapsed, expired.is_set()


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


def warm_up(checkout: Path) -> None:
    """Untimed `doit list` and `doit status`: fills the bytecode cache (see `env`)."""
    for argv in (["list", "--all"], ["status"]):
        run(doit_argv(*argv), checkout, ok=range(256))


def have(program: str) -> bool:
    return shutil.which(program) is not None


# --- the entry point ------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(name: str, keep: bool) -> Iterator[Path]:
    """A fresh temp dir for one benchmark, removed afterwards unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix=f"orchlib-bench-{name}-"))
    _PYCACHE.append(path / "pycache")
    _DISCARDED.append(path / "discarded")
    _DISCARDED[-1].mkdir()
    try:
        yield path
    finally:
        _PYCACHE.remove(path / "pycache")
        _DISCARDED.pop()
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
    first = orchlib_revision()
    start = time.perf_counter()
    with workdir(name, args.keep) as tmp:
        body(tmp, report, args)
    report.seconds = time.perf_counter() - start
    report.load_after = os.getloadavg()
    report.revisions = (first, orchlib_revision())
    print(report.render(), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    missed = [c for c in report.checks if not c.passed]
    return 1 if args.strict and missed else 0


def progress(message: str) -> None:
    """A progress line on stderr (the report itself goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
