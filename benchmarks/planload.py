"""Plan validation: `build_plan` of a 1,000- and a 10,000-task plan (no cache involved).

The plans are `realistic_dag`'s, half the tasks agent tasks with a few of the keys a
hand-written plan sets (description, outputs, limits, environment), so every level's keys
are read and inherited. Reported: the best and the median of `--reps` validations, in ms.
Run: `python benchmarks/planload.py [--reps N]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _checkout import realistic_dag

from orchlib.plan.schema import build_plan


def plan(n: int) -> dict[str, Any]:
    """`realistic_dag` with plan, project and task keys beside the bare shell tasks."""
    data = realistic_dag(n, 8, seed=7)
    data["defaults"] = {"retries": 2, "stallTimeout": "15m"}
    data["context"] = "plan context"
    for i, project in enumerate(data["projects"]):
        project["context"] = f"project {i}"
        if i % 2:
            project["agent"] = "codex"
            project["environment"] = {"exclude": ["*TOKEN*"]}
    for i, task in enumerate(data["tasks"]):
        if i % 2:
            del task["command"]
            task["description"] = f"do step {i}"
            task["outputs"] = [f"out/{i}.txt"]
        if i % 5 == 0:
            task["timeout"] = "1h"
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    checkout = Path(tempfile.mkdtemp())
    for n in (1_000, 10_000):
        data = plan(n)
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            built, issues = build_plan(data, checkout / "plans" / "bench.json", checkout)
            times.append((time.perf_counter() - start) * 1000)
            assert built is not None, issues[:3]
        print(f"{n:>6} tasks: best {min(times):7.1f} ms, median {statistics.median(times):7.1f} ms")


if __name__ == "__main__":
    main()
