"""The dask executor beside the local one: many short attempts, and printed line → our log.

    python benchmarks/executors.py [--tasks 300] [--at-once 4] [--workers 2]

Both executors run the same short agent (`sh` printing a timestamped DONE-like line) the
same number of times, `--at-once` attempts at a time: `local` through `process.spawn` (the
agent writes its log itself), `dask` through `DaskExecutor` on a `local:N` cluster of
`--workers` worker processes (the output comes back as Dask events and is written to the
log here). Reported: the wall time of each and their ratio (goal ≤ 3×), and for dask the
delay from the agent printing its line to the line being in our log, p50 and p95 (goal
≤ 100 ms / ≤ 300 ms; DONE → stamp adds only the local work after that).

`dask_executor.py` measures the same through real `doit` runs (`--executor local` and
`--executor dask --scheduler local:2`) and DONE → stamp as `latency.py` does; this script is
the executor-level half of it, without doit.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchlib.executors.base import Job
from orchlib.executors.dask import DaskExecutor
from orchlib.executors.process import spawn

AGENT = "python3 -c \"import time; print('[DONE:x] at', repr(time.time()), flush=True)\""


def run_local(job: Job) -> float | None:
    proc = spawn(job.argv, cwd=job.cwd, env={}, log=job.log)
    assert proc.popen is not None
    proc.popen.wait()
    return None


def run_dask(ex: DaskExecutor) -> Callable[[Job], float | None]:
    def one(job: Job) -> float | None:
        handle = ex.start(job, lambda h: None)
        seen = None
        while True:
            text = job.log.read_text()
            if seen is None and "[DONE:x] at" in text and text.endswith("\n"):
                seen = time.time() - float(text.split()[-1])
            if handle.poll() is not None:
                break
            handle.wait_output(1.0)
        handle.terminate(1.0)
        return seen

    return one


def drive(
    run: Callable[[Job], float | None], root: Path, tasks: int, at_once: int
) -> tuple[float, list[float]]:
    """Run `tasks` jobs, `at_once` at a time; wall seconds and the latencies seen."""
    lock, delays, todo = threading.Lock(), [], list(range(tasks))

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            job = Job(("sh", "-c", AGENT), root, {}, root / f"{i}.log")
            delay = run(job)
            if delay is not None:
                with lock:
                    delays.append(delay)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(at_once)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, delays


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--at-once", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="orch-bench-executors-"))
    try:
        (root / "local").mkdir()
        (root / "dask").mkdir()
        local_wall, _ = drive(run_local, root / "local", args.tasks, args.at_once)
        ex = DaskExecutor(f"local:{args.workers}")
        try:
            ex.client.wait_for_workers(args.workers)
            drive(run_dask(ex), root / "dask", args.at_once, args.at_once)  # warm the workers
            dask_wall, delays = drive(run_dask(ex), root / "dask", args.tasks, args.at_once)
        finally:
            ex.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = dask_wall / local_wall
    print(f"| {args.tasks} short attempts, {args.at_once} at once | wall | goal |")
    print("| --- | --- | --- |")
    print(f"| local | {local_wall:.2f} s | |")
    print(f"| dask, local:{args.workers} | {dask_wall:.2f} s ({ratio:.1f}× local) | ≤ 3× |")
    print(f"| dask: printed → in our log, p50 | {pct(delays, 50):.1f} ms | ≤ 100 ms |")
    print(f"| dask: printed → in our log, p95 | {pct(delays, 95):.1f} ms | ≤ 300 ms |")
    print(f"({len(delays)} latencies; statistics.median {statistics.median(delays) * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
