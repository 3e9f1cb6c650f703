"""A level of a plan being read (the plan, its defaults, a project, a task): its keys read
by their declarations (`Shape`, `read`), and the checks of the keys that need more than
their value: the plan's agents, its task graph, the checkout, the keys of the level read
before them.

`keys` names these checks in its declarations (`check_in`); `schema` builds the levels.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchlib.plan import Review
from orchlib.plan.agentspec import Agents, Choice
from orchlib.plan.checks import Issues, KeyPath, choice, ident, text, unknown
from orchlib.plan.graph import Graph
from orchlib.plan.reviewschema import Raced, race
from orchlib.plan.reviewschema import review as review_value
from orchlib.plan.sandboxschema import writable
from orchlib.plan.schedule import Phases

if TYPE_CHECKING:  # keys names this module's checks: imported for the types only
    from orchlib.plan import keys

Values = dict[str, Any]  # a level's keys by name: its own value, else the inherited one
# Inherited keys grouped by the levels they inherit from: (levels, key names, their getter).
Inherited = tuple[tuple[tuple[str, ...], tuple[str, ...], Callable[[Values], tuple[Any, ...]]], ...]
Nested = Callable[[str, object, KeyPath], Any]  # reads the levels inside the plan


@dataclass(frozen=True)
class Reading:
    """What every level of one plan shares while it is read."""

    issues: Issues
    checkout: Path
    agents: Agents
    graph: Graph
    executors: tuple[str, ...]  # the names `defaults.executor` may take
    projects: dict[str, Values] = field(default_factory=dict)  # the projects read so far
    # What the levels above hand down, by (keys, those levels): the same for many tasks.
    # Each entry keeps the project mapping its key names alive, so its id is never reused
    # by another mapping while the plan is read (a duplicated project name replaces one).
    _handed: dict[tuple[int, int], tuple[Values, object]] = field(default_factory=dict)

    def handed(self, defaults: Values, inherited: Inherited, outer: dict[str, Values]) -> Values:
        """`defaults` with what `outer` hands down to `inherited`: each group of key names
        from the nearest of its levels (levels read whole: they no longer change; the plan's
        and its defaults' are the same for every level, so only the project tells apart)."""
        project = outer.get("project")
        key = (id(inherited), id(project))
        known = self._handed.get(key)
        if known is not None:
            return known[0]
        found = dict(defaults)
        for levels, names, get in inherited:
            above = next((outer[name] for name in levels if name in outer), None)
            if above is not None:
                found.update(zip(names, get(above), strict=True))
        self._handed[key] = (found, project)
        return found


@dataclass(slots=True)
class Level:
    """One mapping being read: its keys' values so far, and the levels it inherits from."""

    plan: Reading
    m: dict[str, Any]
    path: KeyPath
    outer: dict[str, Values]  # "plan", "defaults", "project": the levels above, read
    own: Values = field(default_factory=dict)  # the keys set here with a good value (merged)
    # The keys' defaults with what the levels above hand down (shared: never changed); for
    # the plan and its defaults, which inherit nothing, their values as they are read.
    base: Values = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """A key's value: its own, else handed down, else its default."""
        return self.own[name] if name in self.own else self.base[name]

    def values(self) -> Values:
        """Every key's value, by name."""
        return {**self.base, **self.own}


@dataclass(frozen=True)
class Shape:
    """A level's declarations, indexed once: a plan reads many tasks."""

    order: dict[str, keys.PlanKey]  # by name, in the order declared
    rank: dict[str, int]  # by name: the place declared
    defaults: dict[str, Any]
    always: frozenset[str]
    inherited: Inherited

    @classmethod
    def of(cls, declared: tuple[keys.PlanKey, ...]) -> Shape:
        always = frozenset(k.name for k in declared if k.always)
        by_levels: dict[tuple[str, ...], list[str]] = {}
        for k in declared:
            if k.inherited_from:
                by_levels.setdefault(k.inherited_from, []).append(k.name)
        inherited = tuple((levels, tuple(names), _getter(names))
                          for levels, names in by_levels.items())  # fmt: skip
        rank = {k.name: index for index, k in enumerate(declared)}
        return cls({k.name: k for k in declared}, rank, {k.name: k.default for k in declared},
                   always, inherited)  # fmt: skip


def _getter(names: list[str]) -> Callable[[Values], tuple[Any, ...]]:
    """The values of `names` in a level's values, as a tuple (one name too)."""
    if len(names) == 1:
        return lambda values: (values[names[0]],)
    return operator.itemgetter(*names)


def read(level: Level, shape: Shape, nested: Nested | None = None) -> None:
    """Every declared key of a level: those set checked in the order declared (`own`), the
    others inherited or their default (`base`). A bad value leaves its key unset here."""
    m, order, issues, own = level.m, shape.order, level.plan.issues, level.own
    live = None if shape.inherited else dict(shape.defaults)  # the plan's: read as they go
    if live is not None:
        level.base = live
    present = m.keys() & order.keys()
    # One loop, no call per key: a 10,000-task plan runs it 10,000 times.
    for name in sorted(
        present | shape.always if shape.always else present, key=shape.rank.__getitem__
    ):
        key, path, before = order[name], (*level.path, name), len(issues)
        value = m.get(name, key.default)
        if key.check is not None:
            found = key.check(issues, value, path)
        elif key.check_in is not None:
            found = key.check_in(level, value, path)
        else:
            assert nested is not None  # only the plan has nested levels
            found = nested(name, value, path)
        if found is None and len(issues) > before:
            continue  # unset: handed down from the level above
        if key.merge is not None:
            found = key.merge(inherited_value(key, level.outer), found)
        if name in m:
            own[name] = found
        if live is not None:
            live[name] = found
    if shape.inherited:  # the keys not set here: from the nearest level read, else defaults
        level.base = level.plan.handed(shape.defaults, shape.inherited, level.outer)


def inherited_value(key: keys.PlanKey, outer: dict[str, Values]) -> Any:
    """The value of the nearest level of `key.inherited_from` read, else the default."""
    for above in key.inherited_from:
        if above in outer:
            return outer[above][key.name]
    return key.default


def agent(level: Level, value: object, path: KeyPath) -> Choice | None:
    """An `agent:` value: a profile name, a mapping or a fallback list."""
    return level.plan.agents.value(level.plan.issues, value, path)


def every_agent(level: Level, value: object, path: KeyPath) -> None:
    """`agents`: every entry checked, used or not (the mapping itself was read first)."""
    level.plan.agents.resolve_all()


def executor(level: Level, value: object, path: KeyPath) -> str | None:
    """`defaults.executor`: where agents run (DESIGN §8); only names the registry knows."""
    return choice(level.plan.executors)(level.plan.issues, value, path)


def sandbox_writable(level: Level, value: object, path: KeyPath) -> tuple[Path, ...]:
    """`sandboxWritable`, resolved against the checkout."""
    return writable(level.plan.issues, value, path, level.plan.checkout)


def review(level: Level, value: object, path: KeyPath) -> Review | None:
    """`review`: an agent of the plan's."""
    return review_value(level.plan.issues, value, path, level.plan.agents)


def racers(level: Level, value: object, path: KeyPath) -> Raced:
    """`race`: a number of racers or agents of the plan's."""
    return race(level.plan.issues, value, path, level.plan.agents)


def task_id(level: Level, value: object, path: KeyPath) -> str | None:
    """A task's `id`: a name unique in the plan (the task joins the graph with it)."""
    found = ident(level.plan.issues, value, path)
    if found is not None:
        level.plan.graph.add(found, level.path)
    return found


def depends_on(level: Level, value: object, path: KeyPath) -> tuple[str, ...]:
    """A task's `dependsOn`: task ids, checked against the whole plan at the end."""
    return level.plan.graph.depends(level.own.get("id"), level.path, value, path)


def project(level: Level, value: object, path: KeyPath) -> str | None:
    """A task's `project`: a project of the plan, whose keys the task inherits."""
    name = text(level.plan.issues, value, path)
    known = level.plan.projects
    if name is not None and name not in known:
        level.plan.issues.add(path, unknown("project", name, list(known)))
    elif name is not None:
        level.outer["project"] = known[name]
    return name


def phases(level: Level, value: object, path: KeyPath) -> Phases | None:
    """`executionOrder` as given (checked against dependsOn), else computed; read last."""
    return level.plan.graph.phases(value, "executionOrder" in level.m)
