"""What the dashboard reads: the plans, their state.json, stamps and logs, all under `.orch/`.

Every path is built from a plan id and a task id that must be plan identifiers
(`[A-Za-z0-9_.-]+`, not `.` or `..`; a task id must be one of the plan's), and a file is
read only when it is a regular file with one link, reached from `.orch/` through no
symlink (each folder is opened with O_NOFOLLOW, then the file, and the open file is
checked: no race between a check and the read). Nothing here writes, except `answer`,
which is the very code `doit answer` runs.
"""

from __future__ import annotations

import codecs
import json
import os
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from orchlib.checkout import Checkout
from orchlib.errors import OrchError
from orchlib.layout import of_orch
from orchlib.plan.checks import IDENT
from orchlib.redact import Pieces, Secrets
from orchlib.state import stamps, statesync, uptodate
from orchlib.state.files import JOURNAL_FILE, file_id, fold_journal
from orchlib.state.jsonform import from_json, to_json
from orchlib.state.model import Status
from orchlib.state.table import effective_state
from orchlib.state.templates import template_dirs

STATUSES = tuple(s.value for s in Status)
CHUNK = 64 * 1024
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO never blocks


def is_ident(name: str) -> bool:
    """A plan or task id that can name a file: no separator, no `..`."""
    return bool(IDENT.fullmatch(name)) and name not in (".", "..")


class Source:
    """The checkout as the dashboard sees it: read-only, confined to `.orch/`."""

    def __init__(self, checkout: Checkout) -> None:
        self.checkout = checkout
        self.orch = checkout.orch_dir.resolve()
        self.layout = of_orch(self.orch)
        self._usage: dict[Path, tuple[object, object]] = {}

    def plan_ids(self) -> list[str]:
        """The checkout's plans, then plans that only have state on disk."""
        known = list(self.checkout.plans)
        try:
            entries = sorted(e.name for e in os.scandir(self.orch) if e.is_dir())
        except OSError:
            entries = []
        seen = set(known)
        extra = [n for n in entries if n not in seen and self._state_path(n) is not None]
        return known + extra

    def open(self, path: Path) -> BinaryIO | None:
        """`path` open for reading when it may be served: a regular file with one link under
        `.orch/`, reached through no symlink; else None."""
        try:
            parts = path.relative_to(self.orch).parts  # lexical: `..` is refused below
        except ValueError:
            return None
        if not parts or any(p in (".", "..") for p in parts):
            return None
        try:
            folder = os.open(self.orch, _DIR)
        except OSError:
            return None
        try:
            for part in parts[:-1]:
                inner = os.open(part, _DIR | os.O_NOFOLLOW, dir_fd=folder)
                os.close(folder)
                folder = inner
            fd = os.open(parts[-1], _FILE, dir_fd=folder)
        except OSError:
            return None
        finally:
            os.close(folder)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)  # a hard link can be any file of the user's
            return None
        return os.fdopen(fd, "rb")

    def inside(self, path: Path) -> Path | None:
        """`path` when it may be served (see `open`), else None."""
        handle = self.open(path)
        if handle is None:
            return None
        handle.close()
        return path

    def read_json(self, path: Path) -> dict[str, Any] | None:
        """The JSON object in `path` when it may be served and is one; else None."""
        handle = self.open(path)
        if handle is None:
            return None
        try:
            with handle:
                data = json.loads(handle.read())
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    def state(self, plan_id: str) -> dict[str, Any] | None:
        """state.json of the plan; a plan that never ran gets its pending state from the plan."""
        path = self._state_path(plan_id)
        data = self.read_json(path) if path is not None else None
        if data is not None and path is not None and self.inside(path.parent / JOURNAL_FILE):
            data = to_json(fold_journal(path.parent, from_json(data)))  # starts not yet in it
        if data is not None:
            return self._with_usage(plan_id, data)
        plan = self.checkout.plans.get(plan_id)
        if plan is None:
            return None
        orch = self.checkout.orch_dir  # only up-to-date tasks show DONE (DESIGN §6)
        verdicts = uptodate.verdicts(orch, plan, self.checkout.specs, save=False)
        return to_json(effective_state(plan, None, statesync.done_stamps(orch, plan, verdicts)))

    def state_id(self, plan_id: str) -> object:
        """Changes whenever the plan's state.json is replaced or its journal of starts grows
        (None while there is no state.json)."""
        path = self._state_path(plan_id)
        return None if path is None else (file_id(path), file_id(path.parent / JOURNAL_FILE))

    def task_ids(self, plan_id: str) -> set[str]:
        """The tasks of the plan: of its plan file, and of its state.json as the run wrote it."""
        plan = self.checkout.plans.get(plan_id)
        found = set(plan.tasks) if plan is not None else set()
        path = self._state_path(plan_id)
        tasks = (self.read_json(path) or {}).get("tasks") if path is not None else None
        for task in tasks if isinstance(tasks, list) else []:
            if isinstance(task, dict) and isinstance(task.get("id"), str):
                found.add(task["id"])
        return found

    def log_file(
        self, plan_id: str, task_id: str, attempt: int | None, review: bool = False
    ) -> tuple[BinaryIO, int] | None:
        """The transcript of an attempt (the latest by default), open, and its number;
        `review`: its reviewer's transcript (DESIGN §16)."""
        if not (is_ident(plan_id) and is_ident(task_id)) or plan_id not in self.plan_ids():
            return None
        if task_id not in self.task_ids(plan_id):
            return None  # a log under a name no task of the plan has is nobody's to read
        logs = self.layout.logs(plan_id)
        number = attempt or self._latest_attempt(plan_id, task_id, logs)
        if not number:
            return None
        handle = self.open(
            self.layout.log(plan_id, task_id, number, "review.log" if review else "log")
        )
        return (handle, number) if handle is not None else None

    def answer(self, plan_id: str, task_id: str, text: str) -> str:
        """Answer the task's open question: `doit answer`'s code, on the plans as they are now.

        The plans are loaded afresh: the state is rewritten for the plan it belongs to, so
        a plan edited since the server started must not be answered with its old copy.
        """
        from orchlib import state

        checkout = Checkout.load(self.checkout.root)
        plan = checkout.plans.get(plan_id)
        if plan is None or task_id not in plan.tasks:
            raise UnknownTask(f"{plan_id}:{task_id}: no such plan task")
        folder = checkout.plan_dir(plan_id)
        return state.answer(folder, plan, task_id, text, template_dirs(checkout.root))

    def decide(self, plan_id: str, task_id: str, feedback: str) -> str:
        """Approve the task waiting for approval (no feedback) or reject it with `feedback`:
        `doit approve` / `doit reject`'s code, on the plans as they are now."""
        from orchlib.run import approval

        checkout = Checkout.load(self.checkout.root)
        plan = checkout.plans.get(plan_id)
        if plan is None or task_id not in plan.tasks:
            raise UnknownTask(f"{plan_id}:{task_id}: no such plan task")
        name = f"{plan_id}:{task_id}"
        if feedback:
            return approval.reject(checkout, name, feedback)
        return approval.approve(checkout, name)

    def _state_path(self, plan_id: str) -> Path | None:
        """The plan's state.json, when there is one that may be served."""
        if not is_ident(plan_id):
            return None
        return self.inside(self.layout.state_file(plan_id))

    def _latest_attempt(self, plan_id: str, task_id: str, logs: Path) -> int:
        data = self.state(plan_id) or {}
        for task in data.get("tasks") or []:
            if isinstance(task, dict) and task.get("id") == task_id:
                attempt = task.get("attempt")
                if isinstance(attempt, int) and attempt > 0:
                    return attempt
        numbers = [n for n in _attempt_numbers(logs, task_id)]
        return max(numbers, default=0)

    def _with_usage(self, plan_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Add `usage` (the agent CLI's own figures, e.g. `cost_usd`) from the stamp of each
        DONE task whose record has none: state.json does not carry them, the stamp does."""
        tasks = data.get("tasks")
        for task in tasks if isinstance(tasks, list) else []:
            if (
                isinstance(task, dict)
                and task.get("status") == Status.DONE.value
                and "usage" not in task
            ):
                usage = self._stamp_usage(plan_id, str(task.get("id", "")))
                if usage:
                    task["usage"] = usage
        return data

    def _stamp_usage(self, plan_id: str, task_id: str) -> object:
        if not is_ident(task_id):
            return None
        path = self.layout.stamp(plan_id, task_id)
        seen = file_id(path)
        cached = self._usage.get(path)
        if cached is not None and cached[0] == seen:
            return cached[1]
        data = self.read_json(path)
        try:
            stamp = stamps.Stamp.from_json(data) if data and data.get("taskId") == task_id else None
        except stamps.StampError:
            stamp = None
        usage = stamp.usage if stamp else None
        self._usage[path] = (seen, usage)
        return usage


class UnknownTask(OrchError):
    """An answer for a plan task that does not exist."""


def summary(plan_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A plan's line in `GET /api/plans`: id, summary, status and task counts."""
    tasks = data.get("tasks")
    records = [t for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else []
    counts = Counter(str(t.get("status", "PENDING")) for t in records)
    return {
        "id": plan_id,
        "planId": plan_id,
        "summary": str(data.get("summary", "")),
        "status": str(data.get("status", "pending")),
        "counts": {**{s: 0 for s in STATUSES}, **counts},
        "total": len(records),
        "done": counts.get("DONE", 0),
    }


def _attempt_numbers(logs: Path, task_id: str) -> Iterator[int]:
    prefix = f"{task_id}."
    try:
        names = os.listdir(logs)
    except OSError:
        return
    for name in names:
        middle = name[len(prefix) : -len(".log")]
        if name.startswith(prefix) and name.endswith(".log") and middle.isdigit():
            yield int(middle)


def chunks(
    handle: BinaryIO, start: int, end: int, secrets: Secrets | None = None
) -> Iterator[bytes]:
    """The bytes of an open file from `start` to `end`, 64 KiB at a time (a 1 GB log never
    sits in memory); with `secrets`, as UTF-8 text with their values redacted (DESIGN §13).
    Closes the file."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pieces = Pieces(secrets or Secrets())
    with handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            data = handle.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data if secrets is None else pieces.feed(decoder.decode(data)).encode()
    if secrets is not None:
        yield pieces.feed(decoder.decode(b"", final=True), final=True).encode()
