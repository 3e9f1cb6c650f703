"""The cache of validated plans: `.orch/cache/plan-<slug>.json`, plain JSON data.

A file in `.orch/` can be written by anything that can write the checkout (an agent of a
project at `path: .`, for one), so reading the cache must never run code (DESIGN §3, §13).
The file holds only values: each record is the list of its fields, and the field types
of `Plan` (not the file) say what each value becomes, so the file cannot name a class or
a function. A damaged, foreign or stale file is only a miss; a plan that would not come
back equal is never written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import json
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any

from orchlib.fsutil import make_private_dirs
from orchlib.layout import Layout
from orchlib.plan import Plan, project_root

FORMAT = 2  # 1 was a pickle (plan-<slug>.pickle): never read, removed when the cache is written
Decoder = Callable[[Any, "_Refs"], Any]


class Foreign(ValueError):
    """A cache file whose data does not have the shape of a plan."""


class Unsupported(TypeError):
    """A field type the cache cannot carry (the plan is then not cached)."""


def cache_file(checkout: Path, name: str) -> Path:
    """Where the cached plan of the plan file shown as `name` lives."""
    slug = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Layout(checkout).plan_cache(slug)


def cached(checkout: Path, name: str, key: str) -> Plan | None:
    """The cached plan for `key`, if there is one and its project folders resolve the same."""
    try:
        data = json.loads(cache_file(checkout, name).read_bytes())
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        if data.get("key") != key or data.get("schema") != schema():
            return None
        plan = decode(data.get("plan"))
        same = all(project_root(checkout, p.path) == p.root for p in plan.projects.values())
    except Exception:  # missing, torn, foreign, or a model the cache cannot carry: a miss
        return None
    return plan if same else None


def store(checkout: Path, name: str, key: str, plan: Plan) -> None:
    """Write the cache atomically; failing to cache never fails a load."""
    try:
        data = {"format": FORMAT, "key": key, "schema": schema(), "plan": encode(plan)}
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        if decode(json.loads(text)["plan"]) != plan:
            return  # a value this form cannot carry: no cache rather than a wrong one
    except Exception:  # e.g. a field type it cannot read back (a name only for type checkers)
        return
    import tempfile  # only when the cache is written

    target = cache_file(checkout, name)
    try:
        make_private_dirs(target.parent)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".plan-", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, target)
    except OSError:
        Path(temp).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # an older version's pickle: never read, so removed
        target.with_suffix(".pickle").unlink(missing_ok=True)


def encode(plan: Plan) -> dict[str, Any]:
    """The plan as JSON data: a record is the list of its fields, a tuple a list; a record
    met more than once (a shared agent or limits) is written once, then named by number."""
    shared: list[Any] = []
    index: dict[str, int] = {}
    root = _encode(plan, shared, index, top=True)
    return {"root": root, "shared": shared}


_SCALARS = frozenset({str, int, float, bool, type(None)})  # most fields: as they are
_RECORD_FIELDS: dict[type, tuple[str, ...] | None] = {}  # a class's fields (None: no record)


def _record_fields(kind: type) -> tuple[str, ...] | None:
    """The field names of a record class in order; None for any other class."""
    try:
        return _RECORD_FIELDS[kind]
    except KeyError:
        record = dataclasses.is_dataclass(kind)
        names = tuple(f.name for f in dataclasses.fields(kind)) if record else None
        return _RECORD_FIELDS.setdefault(kind, names)


def _encode(value: Any, shared: list[Any], index: dict[str, int], top: bool = False) -> Any:
    kind = type(value)
    if kind in _SCALARS:  # the common kinds first, by exact type
        return value
    if kind is tuple:
        return [_encode(item, shared, index) for item in value]
    names = _record_fields(kind)
    if names is not None:
        fields = [_encode(getattr(value, name), shared, index) for name in names]
        if top:
            return fields
        key = kind.__qualname__ + json.dumps(fields)
        if key not in index:
            index[key] = len(shared)
            shared.append(fields)
        return index[key]
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return _encode(value.value, shared, index)
    if isinstance(value, tuple):
        return [_encode(item, shared, index) for item in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _encode(v, shared, index, top=True) for k, v in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    raise Unsupported(f"cannot cache a {type(value).__name__}")


def decode(data: Any) -> Plan:
    """The plan `encode` wrote; Foreign when the data has another shape."""
    if type(data) is not dict or type(data.get("shared")) is not list:
        raise Foreign("not an encoded plan")
    plan = _plan_decoder()(data.get("root"), _Refs(data["shared"]))
    if not isinstance(plan, Plan):
        raise Foreign("not a plan")
    return plan


class _Refs:
    """The shared records of one file, each decoded once (by the type of its first use)."""

    def __init__(self, table: list[Any]) -> None:
        self.table = table
        self.done: dict[type, dict[int, Any]] = {}


@functools.cache
def schema() -> str:
    """A digest of every record's field names and types: a file of another shape is foreign."""
    _plan_decoder()
    parts = sorted(f"{c.__module__}:{c.__qualname__}{_fields(c)}" for c in _RECORDS)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _fields(cls: type) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in dataclasses.fields(cls)]


_RECORDS: set[type] = set()  # the record classes the plan's decoder reaches (grows once)


@functools.cache
def _plan_decoder() -> Decoder:
    return _record(Plan, top=True)


def _decoder(tp: Any) -> Decoder | None:
    """How a JSON value becomes a value of type `tp` (None: as it is)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in (str, int, float, bool, type(None), Any) or origin is typing.Literal:
        return None
    if origin in (typing.Union, types.UnionType):
        return _optional([a for a in args if a is not type(None)])
    if origin is tuple:
        return _tuple(args)
    if origin in (Mapping, dict) and args and args[0] is str:
        return _mapping(args[1])
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return lambda v, refs: tp(_text(v))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v, refs: tp(v)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _record(tp)
    raise Unsupported(f"cannot cache a field of type {tp!r}")


def _optional(choices: list[Any]) -> Decoder | None:
    decoders = [_decoder(c) for c in choices]
    if all(d is None for d in decoders):
        return None
    if len(decoders) != 1:
        raise Unsupported(f"cannot cache a union of {choices!r}")
    inner = decoders[0]
    assert inner is not None
    if inner is _plain_tuple:
        return _optional_plain_tuple
    return lambda v, refs: None if v is None else inner(v, refs)


def _tuple(args: tuple[Any, ...]) -> Decoder:
    if len(args) == 2 and args[1] is Ellipsis:
        inner = _decoder(args[0])
        if inner is None:
            return _plain_tuple
        return lambda v, refs: tuple([inner(x, refs) for x in _list(v)])
    parts = [_decoder(a) or (lambda x, refs: x) for a in args]
    return lambda v, refs: tuple(
        [d(x, refs) for d, x in zip(parts, _list(v, len(parts)), strict=True)]
    )


def _mapping(value_type: Any) -> Decoder:
    inner = _decoder(value_type)
    if inner is None:
        return lambda v, refs: _map(v)
    return lambda v, refs: {k: inner(x, refs) for k, x in _map(v).items()}


def _record(cls: type, top: bool = False) -> Decoder:
    """A record from the list of its fields or the number of a shared one, built without
    running code of its own when it has none (no __post_init__, no slots), as unpickling did."""
    _RECORDS.add(cls)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    decoders = [(i, _decoder(hints[name])) for i, name in enumerate(names)]
    # The common field kinds inline (a function call per field is most of the cost).
    tuples = [i for i, d in decoders if d is _plain_tuple]
    optional_tuples = [i for i, d in decoders if d is _optional_plain_tuple]
    convert = [(i, d) for i, d in decoders if d and d not in (_plain_tuple, _optional_plain_tuple)]
    plain = not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__")
    size = len(names)

    def build(values: Any, refs: _Refs) -> Any:
        if type(values) is not list or len(values) != size:
            raise Foreign(f"{cls.__name__}: a list of {size} fields was expected")
        for index in tuples:  # the list is the parser's own: converted in place
            if type(values[index]) is not list:
                raise Foreign("a list was expected")
            values[index] = tuple(values[index])
        for index in optional_tuples:
            if values[index] is not None:
                values[index] = _plain_tuple(values[index], refs)
        for index, inner in convert:
            values[index] = inner(values[index], refs)
        if not plain:
            return cls(*values)
        obj: Any = object.__new__(cls)
        obj.__dict__.update(zip(names, values, strict=False))  # the length is checked above
        return obj

    def shared(value: Any, refs: _Refs) -> Any:
        if type(value) is list:  # written in place
            return build(value, refs)
        if type(value) is not int or not 0 <= value < len(refs.table):
            raise Foreign("a shared record was expected")
        done = refs.done.setdefault(cls, {})
        found = done.get(value)
        if found is None:
            found = done[value] = build(refs.table[value], refs)
        return found

    return build if top else shared


def _plain_tuple(value: Any, refs: _Refs) -> tuple[Any, ...]:
    if type(value) is not list:
        raise Foreign("a list was expected")
    return tuple(value)


def _optional_plain_tuple(value: Any, refs: _Refs) -> tuple[Any, ...] | None:
    return None if value is None else _plain_tuple(value, refs)


def _list(value: Any, length: int | None = None) -> list[Any]:
    if type(value) is not list or (length is not None and len(value) != length):
        raise Foreign("a list of another length was expected")
    return value


def _map(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise Foreign("a map was expected")
    return value


def _text(value: Any) -> str:
    if type(value) is not str:
        raise Foreign("text was expected")
    return value
