"""records.replace: dataclasses.replace's result, by a cheaper copy where that is the same."""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import InitVar, dataclass, field
from functools import cached_property
from pathlib import Path

import pytest

from orchlib.layout import Layout
from orchlib.records import plain_fields, replace
from orchlib.state.model import Question, Status, TaskRecord
from orchlib.state.stamps import Stamp


@dataclass(frozen=True)
class Plain:
    name: str
    tags: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Cached:
    root: str

    @cached_property
    def upper(self) -> str:
        return self.root.upper()


@dataclass(frozen=True)
class Normalized:
    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name.strip())


@dataclass
class WithInitVar:
    x: int
    scale: InitVar[int]


@dataclass(frozen=True, slots=True)
class Slotted:
    a: int
    b: int = 0


def test_a_copy_equals_dataclasses_replace_and_leaves_the_original() -> None:
    record = TaskRecord(id="t1", title="Auth", status=Status.IN_PROGRESS, attempt=2,
                        questions=(Question("which db?"),))  # fmt: skip
    fast = replace(record, status=Status.DONE, summary="done")
    assert fast == dataclasses.replace(record, status=Status.DONE, summary="done")
    assert type(fast) is TaskRecord and fast is not record
    assert record.status is Status.IN_PROGRESS and record.summary != "done"
    assert fast.__dict__ == dataclasses.replace(record, status=Status.DONE, summary="done").__dict__
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.summary = "x"  # type: ignore[misc]
    stamp = Stamp("t1", "2024-01-15T10:00:00Z", summary="ok")
    assert replace(stamp, summary="better") == Stamp("t1", "2024-01-15T10:00:00Z", summary="better")


def test_a_default_factory_field_is_shared_as_dataclasses_replace_shares_it() -> None:
    notes = ["a"]
    one = Plain("x", notes=notes)
    assert replace(one, name="y").notes is notes
    assert dataclasses.replace(one, name="y").notes is notes


def test_a_cached_property_value_is_not_carried_into_the_copy() -> None:
    one = Cached("a")
    assert one.upper == "A"
    other = replace(one, root="b")
    assert other.upper == "B"
    assert "upper" not in replace(one, root="c").__dict__


def test_post_init_init_var_slots_and_bad_names_take_dataclasses_replace() -> None:
    layout = replace(Layout(Path("/a")), root=Path("/b"))
    assert layout.orch == Path("/b/.orch")  # __post_init__ ran
    assert plain_fields(Layout) is None
    assert replace(Normalized("a"), name=" b ").name == "b"
    assert plain_fields(WithInitVar) is None
    with pytest.raises(ValueError, match="InitVar"):
        replace(WithInitVar(1, 2), x=2)
    assert plain_fields(Slotted) is None
    assert replace(Slotted(1, 2), b=3) == Slotted(1, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        replace(Plain("x"), nope=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        replace(object(), name="x")  # type: ignore[type-var]


def test_orchlib_copies_records_through_records_replace_only() -> None:
    """One way to copy a record: a module importing dataclasses.replace would pay 8 µs a copy."""
    package = Path(__file__).resolve().parent.parent / "orchlib"
    found = []
    for path in package.rglob("*.py"):
        if path.name == "records.py" and path.parent == package:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "dataclasses":
                found += [f"{path.name}: {a.name}" for a in node.names if a.name == "replace"]
            if isinstance(node, ast.Attribute) and node.attr == "replace":
                base = node.value
                if isinstance(base, ast.Name) and base.id == "dataclasses":
                    found.append(f"{path.name}: dataclasses.replace")
    assert found == []
