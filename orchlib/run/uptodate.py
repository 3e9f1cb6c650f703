"""Which tasks of a plan are up to date, decided in one pass over the stamps, with a cache.

doit asks a task's `uptodate` check only when it reaches the task; a run of a finished
10,000-task plan should not build doit machinery for all of them. `verdicts()` walks the
plan once in dependency order and says, for every task, why it would run (or None).

The cache (`.orch/<planId>/stamps.cache`) keeps what the stamps say and the tasks' spec
hashes. It is only trusted while the stamps folder's mtime is unchanged (stamps are
written by rename, so any new, removed or replaced stamp changes it), and only saved
when that mtime is old enough that a later change cannot share its clock tick. It is
plain JSON, checked value by value when read: a file in `.orch/` is data, never code
(DESIGN §3), and one of another shape is only a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from orchlib.checkout import Checkout
from orchlib.fsutil import make_private_dirs, open_private
from orchlib.plan import Plan, Task
from orchlib.state import stamps

CACHE_VERSION = 3  # 3: JSON (2 was a pickle, never read again)
RACY_SECONDS = 1.0


Entry = stamps.Done  # what a valid stamp says that up-to-dateness needs


@dataclass
class _Cache:
    spec_key: str = ""
    specs: dict[str, str] = field(default_factory=dict)
    stamps_mtime: int = -1
    entries: dict[str, Entry] = field(default_factory=dict)


def verdicts(co: Checkout, plan: Plan) -> dict[str, str | None]:
    """For every task (in dependency order): why it would run now, or None when up to date."""
    cache, dirty = _load(co, plan)
    found: dict[str, str | None] = {}
    for phase in plan.phases:
        for task_id in phase:
            found[task_id] = _reason(plan, plan.tasks[task_id], cache, found)
            if task_id not in cache.entries:  # rare: say why a stamp on disk does not count
                found[task_id] = _damaged(co, plan, task_id) or found[task_id]
    if dirty:
        _save(co, plan, cache)
    return found


def _damaged(co: Checkout, plan: Plan, task_id: str) -> str | None:
    damage = stamps.damage(co.stamp_path(plan.plan_id, task_id), task_id)
    return f"its stamp is damaged ({damage}); the task runs again" if damage else None


def entries(co: Checkout, plan: Plan) -> dict[str, Entry]:
    """Every valid stamp of the plan, by task id (from the cache when it holds)."""
    return _load(co, plan)[0].entries


def _reason(plan: Plan, task: Task, cache: _Cache, found: dict[str, str | None]) -> str | None:
    """`stamps.why_not_done` from the cached stamps; a dependency this pass found not up to
    date runs first."""
    deps = {dep: cache.entries.get(dep) for dep in task.depends_on}
    runs_first = {dep for dep in task.depends_on if found.get(dep) is not None}
    own = cache.entries.get(task.id)
    return stamps.why_not_done(plan, task, own, cache.specs[task.id], deps, runs_first)


def _load(co: Checkout, plan: Plan) -> tuple[_Cache, bool]:
    path = _cache_path(co, plan)
    cache = _read_cache(path)
    dirty = False
    key = _spec_key(co, plan)
    if not key or cache.spec_key != key or set(cache.specs) != set(plan.tasks):
        cache.spec_key, dirty = key, True
        cache.specs = {t.id: co.spec_hash(plan, t) for t in plan.tasks.values()}
    mtime = _mtime(co.stamp_path(plan.plan_id, "x").parent)
    if cache.stamps_mtime != mtime or mtime < 0:
        cache.stamps_mtime, dirty = mtime, True
        cache.entries = _read_stamps(co, plan)
    return cache, dirty


def _spec_key(co: Checkout, plan: Plan) -> str:
    """What the spec hashes depend on: the plan file's digest and the prompt template."""
    if not plan.digest:
        return ""
    digest = hashlib.sha256(co.template_text.encode())
    digest.update(b"\0" + plan.digest.encode())
    return digest.hexdigest()


def _read_stamps(co: Checkout, plan: Plan) -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    folder = co.stamp_path(plan.plan_id, "x").parent
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for item in os.scandir(folder):
            task_id = item.name[:-5] if item.name.endswith(".json") else ""
            data = stamps.read(folder / item.name, task_id) if task_id in plan.tasks else None
            if data is not None:
                found[task_id] = Entry(data.finished_at, str(data.spec_hash), dict(data.inputs))
    return found


def _mtime(folder: os.PathLike[str]) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:  # missing, or a path of the wrong kind (named by the run's checks)
        return -1


def _cache_path(co: Checkout, plan: Plan) -> Any:
    return co.plan_dir(plan.plan_id) / "stamps.cache"


def _read_cache(path: Any) -> _Cache:
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
        return _from_json(data)
    except (OSError, ValueError, TypeError, AttributeError, RecursionError):
        return _Cache()  # a missing, torn or foreign cache is only a miss


def _from_json(data: Any) -> _Cache:
    """The cache a parsed file holds; ValueError (or TypeError) when it has another shape."""
    if type(data) is not dict or data.get("version") != CACHE_VERSION:
        raise ValueError("another version")
    spec_key, specs, mtime, entries = (data["specKey"], data["specs"], data["stampsMtime"],
                                       data["entries"])  # fmt: skip
    if type(spec_key) is not str or type(mtime) is not int or type(specs) is not dict:
        raise ValueError("another shape")
    if not all(type(v) is str for v in specs.values()) or type(entries) is not dict:
        raise ValueError("another shape")
    return _Cache(spec_key, specs, mtime, {k: _entry(v) for k, v in entries.items()})


def _entry(value: Any) -> Entry:
    finished_at, spec, inputs = value
    if type(finished_at) is not str or type(spec) is not str or type(inputs) is not dict:
        raise ValueError("another shape")
    return Entry(finished_at, spec, inputs)


def _to_json(cache: _Cache) -> dict[str, Any]:
    entries = {k: [e.finished_at, e.spec, e.inputs] for k, e in cache.entries.items()}
    return {"version": CACHE_VERSION, "specKey": cache.spec_key, "specs": cache.specs,
            "stampsMtime": cache.stamps_mtime, "entries": entries}  # fmt: skip


def _save(co: Checkout, plan: Plan, cache: _Cache) -> None:
    if cache.stamps_mtime < 0 or time.time_ns() - cache.stamps_mtime < RACY_SECONDS * 1e9:
        cache.stamps_mtime = -2  # too fresh to trust: the stamps are read again next time
    path = _cache_path(co, plan)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        make_private_dirs(path.parent)
        with os.fdopen(open_private(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as fh:
            fh.write(json.dumps(_to_json(cache), separators=(",", ":")))
        os.replace(temp, path)
    except (OSError, ValueError, TypeError):
        with contextlib.suppress(OSError):
            os.unlink(temp)
