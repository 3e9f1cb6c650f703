"""Checkouts, plans and stamps for the benchmarks (temp-dir checkouts, never the repo)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import select
import shutil
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DODO = "from orchlib.dodo import *  # noqa: F403\n"


# --- checkouts and plans --------------------------------------------------------------------


def make_checkout(root: Path, plan: dict[str, Any]) -> Path:
    """A checkout at `root` with `plan` as plans/<planId>.json."""
    (root / "plans").mkdir(parents=True, exist_ok=True)
    (root / "dodo.py").write_text(DODO)
    (root / "plans" / f"{plan['planId']}.json").write_text(json.dumps(plan, indent=1))
    return root


def reset_checkout(root: Path) -> None:
    """Forget every run: `.orch/` (stamps, state, logs, doit DB) and the projects go."""
    discard(root / ".orch")
    discard(root / "work")


_DISCARDED: list[Path] = []  # where `discard` puts folders (the benchmark's temp dir)
_discards = itertools.count()


def discard(path: Path) -> None:
    """Remove `path` as far as the next run can tell: renamed into the benchmark's temp dir
    and its files emptied; deleted with the temp dir at the end, never between two runs.

    Deleting a run's ~1,200 files right before the next run makes ext4 skip every freshly
    freed inode on each file the next run creates (`recently_deleted`, for about a minute):
    18-21% of a 300-task run's CPU in `perf`, for make's `touch` too. No user's first run
    pays that, and it falls hardest on whichever side of a comparison runs second. Emptying
    the files keeps their inodes but drops their data: 2.6 GB of agent logs kept whole
    would still be written back to disk while the next run is timed.
    """
    if not _DISCARDED:
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        aside = _DISCARDED[-1] / f"{next(_discards)}-{path.name}"
        path.rename(aside)
        empty_files(aside)


def empty_files(root: Path) -> None:
    """Truncate every regular file under `root` to 0 bytes (symlinks are not followed)."""
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.truncate(path, 0)


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
    from orchlib.checkout import Checkout
    from orchlib.events import now_iso
    from orchlib.state import stamps

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
                        "specHash": co.specs.of(plan, task),
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
