"""`replace` for orchlib's frozen dataclass records: `dataclasses.replace`, made cheap.

A run copies its records with a change thousands of times (a task's record at each of its
events, its run, its attempt's job). `dataclasses.replace` reads every field through
`fields()` and builds the copy through the generated `__init__`: ~8 µs for a task record.
Where that `__init__` only stores its arguments (no `__post_init__`, no `init=False`
field, no `InitVar`, no `__slots__`), the instance's fields copied with the changes are
the same object at ~1 µs. Any other class, or a name that is not a field, takes
`dataclasses.replace` itself, with its own errors.

The type checker sees `dataclasses.replace`, so mypy still checks every call's field names
and value types.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

__all__ = ["replace"]

_PLAIN: dict[type, frozenset[str] | None] = {}  # a class: its fields, when a copy stands in

if TYPE_CHECKING:
    from dataclasses import replace as replace
else:

    def replace(obj: Any, /, **changes: Any) -> Any:
        """`dataclasses.replace(obj, **changes)`."""
        cls = type(obj)
        try:
            names = _PLAIN[cls]
        except KeyError:
            names = _PLAIN[cls] = plain_fields(cls)
        if names is None or not changes.keys() <= names:
            return dataclasses.replace(obj, **changes)
        copy = object.__new__(cls)
        state, old = copy.__dict__, obj.__dict__
        if len(old) == len(names):  # only the fields (no cached_property value beside them)
            state.update(old)
        else:
            state.update((name, old[name]) for name in names)
        state.update(changes)
        return copy


def plain_fields(cls: type) -> frozenset[str] | None:
    """The fields of a dataclass whose `__init__` stores exactly them; None for any other."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return None
    if any("__slots__" in vars(base) for base in cls.__mro__[:-1]):
        return None
    found = dataclasses.fields(cls)
    if not all(f.init for f in found):
        return None
    names = frozenset(f.name for f in found)
    try:
        params = list(inspect.signature(cls.__init__).parameters)[1:]
    except (TypeError, ValueError):
        return None
    return names if set(params) == names else None  # an InitVar is a parameter, not a field
