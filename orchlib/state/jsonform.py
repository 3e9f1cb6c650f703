"""state.json's JSON form of the state records (docs/state.md): written one project or
task per line, read back tolerating missing or bad fields (they keep their defaults)."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from orchlib.records import replace
from orchlib.state.model import (
    STATE_VERSION,
    PlanState,
    PlanStatus,
    ProjectRecord,
    Question,
    RunInfo,
    Status,
    TaskRecord,
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_SCALARS = frozenset({str, int, float, bool, type(None)})  # most fields: as they are


def _plain(value: object) -> object:
    if type(value) in _SCALARS:  # exact types: an enum of str still becomes its value
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "__dataclass_fields__"):
        return _record_json(value)
    return value


_JSON_NAMES: dict[type, tuple[tuple[str, str], ...]] = {}


def _json_names(cls: type) -> tuple[tuple[str, str], ...]:
    names = _JSON_NAMES.get(cls)
    if names is None:
        names = _JSON_NAMES[cls] = tuple((f.name, _camel(f.name)) for f in fields(cls))
    return names


def _record_json(record: Any) -> dict[str, object]:
    return {key: _plain(getattr(record, name)) for name, key in _json_names(type(record))}


def to_json(state: PlanState) -> dict[str, object]:
    """The JSON object written to state.json."""
    data: dict[str, object] = {"version": STATE_VERSION}
    data.update(_record_json(replace(state, tasks={})))
    data["tasks"] = [_record_json(task) for task in state.tasks.values()]
    return data


JsonCache = dict[tuple[str, str], tuple[object, str]]


def dumps_state(state: PlanState, cache: JsonCache) -> str:
    """state.json's text, one project or task per line; unchanged records reuse their JSON.

    Records are frozen, so the same object always has the same JSON: a run of 1,000 tasks
    re-encodes only the records an event replaced.
    """
    head = {"version": STATE_VERSION, **_record_json(replace(state, tasks={}, projects=()))}
    del head["projects"], head["tasks"]
    projects = ",\n".join(_row(cache, "p", p.name, p) for p in state.projects)
    tasks = ",\n".join(_row(cache, "t", t.id, t) for t in state.tasks.values())
    text = json.dumps(head, ensure_ascii=False)[:-1]
    return f'{text}, "projects": [\n{projects}\n], "tasks": [\n{tasks}\n]}}\n'


def _row(cache: JsonCache, kind: str, key: str, record: object) -> str:
    hit = cache.get((kind, key))
    # Tasks: the same frozen object means the same JSON. Projects are derived anew on each
    # write, so they compare by value (four strings).
    if hit is None or (hit[0] is not record and (kind == "t" or hit[0] != record)):
        hit = cache[(kind, key)] = (record, json.dumps(_record_json(record), ensure_ascii=False))
    return hit[1]


def _typed(*types: type) -> Callable[[object], object]:
    """A reader accepting exactly these JSON types (so True is not an int)."""

    def read(value: object) -> object:
        if type(value) not in types:
            raise TypeError(value)
        return value

    return read


def _as_list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError(value)
    return value


def _as_strs(value: object) -> tuple[str, ...]:
    return tuple(str(_typed(str)(item)) for item in _as_list(value))


def _as_phases(value: object) -> tuple[tuple[str, ...], ...]:
    return tuple(_as_strs(item) for item in _as_list(value))


def _from_fields(cls: type[Any], data: object, **given: object) -> Any:
    """Build a record from JSON, keeping a field's default where the value is missing or bad."""
    if not isinstance(data, dict):
        raise TypeError(data)
    kwargs = dict(given)
    for f in fields(cls):
        key = _camel(f.name)
        if f.name not in kwargs and key in data:
            try:
                kwargs[f.name] = _READERS[str(f.type)](data[key])
            except (TypeError, ValueError, KeyError):
                continue
    return cls(**kwargs)


def _as_questions(value: object) -> tuple[Question, ...]:
    return tuple(_from_fields(Question, item) for item in _as_list(value))


def _as_projects(value: object) -> tuple[ProjectRecord, ...]:
    return tuple(_from_fields(ProjectRecord, item) for item in _as_list(value))


_READERS: dict[str, Callable[[object], object]] = {
    "str": _typed(str),
    "int": _typed(int),
    "bool": _typed(bool),
    "int | None": _typed(int, type(None)),
    "float | None": _typed(float, int, type(None)),
    "float": _typed(float, int),
    "str | None": _typed(str, type(None)),
    "tuple[str, ...]": _as_strs,
    "Status": lambda value: Status(value),
    "PlanStatus": lambda value: PlanStatus(value),
    "tuple[Question, ...]": _as_questions,
    "tuple[ProjectRecord, ...]": _as_projects,
    "tuple[tuple[str, ...], ...]": _as_phases,
    "RunInfo": lambda value: _from_fields(RunInfo, value),
    "Mapping[str, object]": lambda value: dict(_typed(dict)(value)),  # type: ignore[call-overload]
}


def from_json(data: Mapping[str, object]) -> PlanState:
    """A PlanState from state.json's object; bad or missing fields fall back to defaults."""
    tasks: dict[str, TaskRecord] = {}
    items = data.get("tasks")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            tasks[item["id"]] = _from_fields(TaskRecord, item)
    plan_id = data.get("planId")
    plan_id = plan_id if isinstance(plan_id, str) else ""
    state: PlanState = _from_fields(PlanState, dict(data), plan_id=plan_id, tasks=tasks)
    return state


def task_json(record: TaskRecord) -> str:
    """One task record as a line of JSON (its state.json form)."""
    return json.dumps(_record_json(record), ensure_ascii=False)


def task_from_json(line: bytes | str) -> TaskRecord | None:
    """A task record from one line of JSON; None when the line is not one."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    record: TaskRecord = _from_fields(TaskRecord, data)
    return record
