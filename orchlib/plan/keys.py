"""Every key of a plan file, declared once: the field it fills, how it is checked, its
default, the levels it inherits from, and whether it enters a task's spec hash (DESIGN §3).

`schema` reads each level (the plan, its `defaults`, a project, a task) from these
declarations (`level.read`): the keys set there are checked in the order declared, by
their `check` (the value alone) or their `check_in` (the value in its plan: agents, task
graph, checkout, keys read before it; see `level`); a key not set, or set to a bad value,
takes the value of the first level of its `inherited_from` (nearest first) that was read,
else its `default`; a `merge` lays the level's value over the inherited one. The level's
model is built from the `field`s, and `state.stamps.spec_hash` hashes the keys marked `in_spec`.

A new plan key is one declaration here (and its model field): it is then allowed at its
level, checked, defaulted, inherited and, if `in_spec`, hashed. Only the rules between keys
(`parallel` needs `isolation`, a `command` makes a shell task, ...) live in `schema`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchlib.plan import DEFAULT_PARALLEL, ISOLATIONS, SCHEDULES, Budget, Limits, level
from orchlib.plan.agentspec import DEFAULT
from orchlib.plan.budgetschema import budget
from orchlib.plan.checks import (
    RESERVED,
    Issues,
    KeyPath,
    argv,
    choice,
    count,
    duration,
    flag,
    globs,
    ident,
    nonempty,
    number,
    q,
    reserved_plan_id,
    text,
    timestamp,
)
from orchlib.plan.environment import EnvPolicy, nearer
from orchlib.plan.envschema import environment
from orchlib.plan.notifyschema import notify
from orchlib.plan.sandboxschema import mode

Check = Callable[[Issues, Any, KeyPath], Any]
InPlan = Callable[[level.Level, Any, KeyPath], Any]


@dataclass(frozen=True, eq=False)  # a declaration is itself: compared by identity, fast
class PlanKey:
    """One key of a plan file. A check returning None after reporting an issue leaves the
    key unset (so inherited); `field` "": it fills no field of the level's model."""

    name: str
    field: str
    check: Check | None = None
    default: Any = None
    required: bool = False
    inherited_from: tuple[str, ...] = ()  # levels, nearest first: "project", "defaults", "plan"
    in_spec: bool = False
    check_in: InPlan | None = None  # instead of `check`: a check that needs the plan (`level`)
    merge: Callable[[Any, Any], Any] | None = None  # (inherited, own) -> value; else own wins
    nested: bool = False  # a level of its own (defaults, projects, tasks), read by `schema`
    always: bool = False  # checked even when absent (with `default`): nested, computed keys


def _grace(issues: Issues, value: object, path: KeyPath) -> float:
    return duration(issues, value, path) or 0.0


def _plan_id(issues: Issues, value: object, path: KeyPath) -> str | None:
    """A plan name that can also name its folder in `.orch/`."""
    found = ident(issues, value, path)
    if found in (".", ".."):
        issues.add(path, f"{q(found)} cannot name a plan folder")
    elif found is not None and reserved_plan_id(found):
        issues.add(path, f"{q(found)} is a name orchlib uses in .orch/; {RESERVED}")
    return found


_L = Limits()
_HANDED_DOWN = ("project", "defaults")
LIMIT_KEYS = (
    PlanKey("retries", "retries", count, _L.retries, inherited_from=_HANDED_DOWN),
    PlanKey("timeout", "timeout", duration, _L.timeout, inherited_from=_HANDED_DOWN),
    PlanKey("stallTimeout", "stall_timeout", duration, _L.stall_timeout,
            inherited_from=_HANDED_DOWN),
    PlanKey("exitGrace", "exit_grace", _grace, _L.exit_grace, inherited_from=_HANDED_DOWN),
    PlanKey("retryOnError", "retry_on_error", flag, _L.retry_on_error,
            inherited_from=_HANDED_DOWN),
    PlanKey("approve", "approve", flag, _L.approve, inherited_from=_HANDED_DOWN),
)  # fmt: skip

# Where agents run (DESIGN §8): not part of any spec. `sandbox` and `review` are handed down.
DEFAULTS = (
    *LIMIT_KEYS,
    PlanKey("executor", "executor", default="", check_in=level.executor),
    PlanKey("sandbox", "", mode, ""),
    PlanKey("review", "", check_in=level.review),
)

# Read in this order: agents and defaults before the projects, tasks after them, the graph last.
PLAN = (
    PlanKey("allowOutsidePaths", "allow_outside_paths", flag, False),
    PlanKey("agent", "", default=DEFAULT, check_in=level.agent),
    PlanKey("defaults", "", nested=True, always=True, default={}),
    PlanKey("environment", "", environment, EnvPolicy(), merge=nearer),
    PlanKey("planId", "plan_id", _plan_id, required=True),
    PlanKey("agents", "", check_in=level.every_agent),  # the mapping is read before the loop
    PlanKey("projects", "projects", required=True, nested=True, always=True, default=[]),
    PlanKey("tasks", "tasks", required=True, nested=True, always=True, default=[]),
    PlanKey("summary", "summary", text, ""),
    PlanKey("createdAt", "created_at", timestamp, ""),
    PlanKey("context", "context", text, "", in_spec=True),
    PlanKey("schedule", "schedule", choice(SCHEDULES), "dag"),
    PlanKey("notify", "notify", notify, ()),
    PlanKey("sandboxWritable", "sandbox_writable", default=(),
            check_in=level.sandbox_writable),
    PlanKey("budget", "budget", budget, Budget()),  # its own total; not inherited (§15)
    PlanKey("executionOrder", "phases", check_in=level.phases, always=True),
)  # fmt: skip

PROJECT = (
    PlanKey("name", "name", nonempty, required=True),
    PlanKey("path", "path", nonempty, required=True),
    PlanKey("techStack", "tech_stack", text, ""),
    PlanKey("description", "description", text, ""),
    PlanKey("context", "context", text, "", in_spec=True),
    PlanKey("agent", "", inherited_from=("plan",), check_in=level.agent),
    PlanKey("isolation", "isolation", choice(ISOLATIONS), ""),
    PlanKey("parallel", "parallel", count, DEFAULT_PARALLEL),  # with isolation (`schema`)
    *LIMIT_KEYS,
    PlanKey("environment", "", environment, inherited_from=("plan",), merge=nearer),
    PlanKey("sandbox", "", mode, inherited_from=("defaults",)),
    PlanKey("budget", "budget", budget, Budget()),
    PlanKey("review", "", inherited_from=("defaults",), check_in=level.review),
    PlanKey("race", "", check_in=level.racers),
)  # fmt: skip

TASK = (
    PlanKey("id", "id", required=True, check_in=level.task_id),
    PlanKey("project", "project", required=True, check_in=level.project),
    PlanKey("title", "title", text, required=True, in_spec=True),
    PlanKey("description", "description", text, "", in_spec=True),
    PlanKey("dependsOn", "depends_on", default=(), check_in=level.depends_on),
    PlanKey("complexity", "complexity", text, ""),
    PlanKey("estimatedMinutes", "estimated_minutes", number, None),
    # Resolved with `command` in `schema` (a command makes a shell task).
    PlanKey("agent", "agent", inherited_from=("project", "plan"), in_spec=True,
            check_in=level.agent),
    PlanKey("command", "command", argv, None, in_spec=True),
    PlanKey("verify", "verify", argv, None, in_spec=True),
    PlanKey("outputs", "outputs", globs, (), in_spec=True),
    PlanKey("inputs", "inputs", globs, (), in_spec=True),
    *LIMIT_KEYS,
    # How to run, not what to make: a changed policy (or a rotated key) redoes nothing.
    PlanKey("environment", "environment", environment, inherited_from=("project", "plan"),
            merge=nearer),
    # How a task runs, not what it delivers (like `isolation`): not in the spec hash.
    PlanKey("sandbox", "sandbox", mode, "", inherited_from=_HANDED_DOWN),
    PlanKey("budget", "budget", budget, Budget()),
    # What counts as done: a reviewer's say (only when set, so no other task's hash moves).
    PlanKey("review", "review", None, None, inherited_from=_HANDED_DOWN, in_spec=True,
            check_in=level.review),
    # Who races for the task (DESIGN §16): how it runs, not what it delivers.
    PlanKey("race", "race", inherited_from=("project",), check_in=level.racers),
)  # fmt: skip


def required(keys: tuple[PlanKey, ...]) -> tuple[str, ...]:
    """The names a mapping must have."""
    return tuple(k.name for k in keys if k.required)


def optional(keys: tuple[PlanKey, ...]) -> tuple[str, ...]:
    """The names a mapping may have."""
    return tuple(k.name for k in keys if not k.required)


def spec_fields(keys: tuple[PlanKey, ...]) -> tuple[str, ...]:
    """The model fields of these keys that enter the spec hash."""
    return tuple(k.field for k in keys if k.in_spec)


def plain(keys: tuple[PlanKey, ...]) -> tuple[PlanKey, ...]:
    """The optional keys read from their declaration alone: a check, no inheritance."""
    return tuple(k for k in keys if k.check is not None and not k.required and k.field
                 and not k.inherited_from)  # fmt: skip


def model_fields(keys: tuple[PlanKey, ...]) -> tuple[tuple[str, ...], Callable[[Any], Any]]:
    """The fields of the level's model that keys fill (not the limit keys': a `Limits`),
    and a getter of their values from the keys' values by name."""
    filling = [k for k in keys if k.field and k not in LIMIT_KEYS]
    return tuple(k.field for k in filling), operator.itemgetter(*(k.name for k in filling))


_LIMIT_FIELDS = tuple(k.field for k in LIMIT_KEYS)
_LIMIT_NAMES = frozenset(k.name for k in LIMIT_KEYS)


def limits(value: Callable[[str], Any], m: dict[str, Any], outer: Limits) -> Limits:
    """The limits of a level from its keys' values; `outer`'s when mapping `m` sets none."""
    if m.keys().isdisjoint(_LIMIT_NAMES):
        return outer
    return Limits(
        **{field: value(k.name) for field, k in zip(_LIMIT_FIELDS, LIMIT_KEYS, strict=True)}
    )
