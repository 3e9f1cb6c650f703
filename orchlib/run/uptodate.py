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
from typing import Any

from orchlib.checkout import Checkout
from orchlib.fsutil import make_private_dirs, open_private
from orchlib.plan import Plan, Task
from orchlib.state import stamps
from orchlib.state.fingerprints import changed_input, missing_outputs

CACHE_VERSION = 4  # 4: with the last verdicts; 3: JSON (2 was a pickle, never read again)
RACY_SECONDS = 1.0


Entry = stamps.Done  # what a valid stamp says that up-to-dateness needs


Verdicts = dict[str, "str | None"]


class _Cache:
    """What stamps.cache holds (a plain class: a dataclass costs a no-op its creation)."""

    def __init__(
        self,
        spec_key: str = "",
        specs: dict[str, str] | None = None,
        stamps_mtime: int = -1,
        stored: dict[str, list[Any]] | None = None,  # task id: [finishedAt, spec, inputs]
        verdicts: Verdicts | None = None,  # the last pass over exactly these stamps and specs
    ) -> None:
        self.spec_key, self.specs, self.stamps_mtime = spec_key, specs or {}, stamps_mtime
        self.stored, self.verdicts = stored or {}, verdicts
        self.built: dict[str, Entry] | None = None

    @property
    def entries(self) -> dict[str, Entry]:
        """The valid stamps, by task id (built when a pass needs them)."""
        if self.built is None:
            self.built = {k: Entry(v[0], v[1], v[2]) for k, v in self.stored.items()}
        return self.built


def verdicts(co: Checkout, plan: Plan) -> Verdicts:
    """For every task (in dependency order): why it would run now, or None when up to date.

    When neither the stamps nor the specs changed since the last pass, that pass's verdicts
    still hold — but for the tasks whose outputs or inputs are files of the project, which
    are looked at again (all must still be up to date, else the whole pass runs)."""
    cache, dirty = _load(co, plan)
    if not dirty and cache.verdicts is not None and _files_unchanged(plan, cache):
        return dict(cache.verdicts)
    found: Verdicts = {}
    for phase in plan.phases:
        for task_id in phase:
            found[task_id] = _reason(plan, plan.tasks[task_id], cache, found)
            if task_id not in cache.stored:  # rare: say why a stamp on disk does not count
                found[task_id] = _damaged(co, plan, task_id) or found[task_id]
    if dirty or found != cache.verdicts:
        cache.verdicts = found
        _save(co, plan, cache)
    return found


def _files_unchanged(plan: Plan, cache: _Cache) -> bool:
    """Whether every task with outputs or inputs was, and still is, up to date."""
    last = cache.verdicts
    if last is None or last.keys() != plan.tasks.keys():
        return False
    for task in plan.tasks.values():
        if not (task.outputs or task.inputs):
            continue
        if last[task.id] is not None or task.id not in cache.stored:
            return False
        project = plan.projects[task.project]
        if task.outputs and missing_outputs(project, task):
            return False
        if task.inputs and changed_input(project, task, cache.stored[task.id][2]):
            return False
    return True


def _damaged(co: Checkout, plan: Plan, task_id: str) -> str | None:
    damage = stamps.damage(co.stamp_path(plan.plan_id, task_id), task_id)
    return f"its stamp is damaged ({damage}); the task runs again" if damage else None


def _reason(plan: Plan, task: Task, cache: _Cache, found: dict[str, str | None]) -> str | None:
    """`stamps.why_not_done` from the cached stamps; a dependency this pass found not up to
    date runs first."""
    entries = cache.entries
    deps = {dep: entries.get(dep) for dep in task.depends_on}
    runs_first = {dep for dep in task.depends_on if found.get(dep) is not None}
    own = entries.get(task.id)
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
        cache.stored, cache.built, cache.verdicts = _read_stamps(co, plan), None, None
    return cache, dirty


def _spec_key(co: Checkout, plan: Plan) -> str:
    """What the spec hashes depend on: the plan file's digest and the prompt template."""
    if not plan.digest:
        return ""
    digest = hashlib.sha256(co.template_text.encode())
    digest.update(b"\0" + plan.digest.encode())
    return digest.hexdigest()


def _read_stamps(co: Checkout, plan: Plan) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    folder = co.stamp_path(plan.plan_id, "x").parent
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for item in os.scandir(folder):
            task_id = item.name[:-5] if item.name.endswith(".json") else ""
            data = stamps.read(folder / item.name, task_id) if task_id in plan.tasks else None
            if data is not None:
                found[task_id] = [data.finished_at, str(data.spec_hash), dict(data.inputs)]
    return found


def _mtime(folder: os.PathLike[str]) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:  # missing, or a path of the wrong kind (named by the run's checks)
        return -1


def _cache_path(co: Checkout, plan: Plan) -> Any:
    return co.layout.stamps_cache(plan.plan_id)


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
    if not all(_entry(v) for v in entries.values()):
        raise ValueError("another shape")
    verdicts = data.get("verdicts")
    if verdicts is not None and (type(verdicts) is not dict or not all(
            v is None or type(v) is str for v in verdicts.values())):  # fmt: skip
        raise ValueError("another shape")
    return _Cache(spec_key, specs, mtime, entries, verdicts)


def _entry(value: Any) -> bool:
    """Whether a stored stamp is `[finishedAt, specHash, inputs]`."""
    return (type(value) is list and len(value) == 3 and type(value[0]) is str
            and type(value[1]) is str and type(value[2]) is dict)  # fmt: skip


def _to_json(cache: _Cache) -> dict[str, Any]:
    return {"version": CACHE_VERSION, "specKey": cache.spec_key, "specs": cache.specs,
            "stampsMtime": cache.stamps_mtime, "entries": cache.stored,
            "verdicts": cache.verdicts}  # fmt: skip


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
