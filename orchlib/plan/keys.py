"""Every key of a plan file, declared once: the field it fills, its check, its default, the
levels that hand it down, and whether it enters a task's spec hash (DESIGN §3).

`schema` reads the plan from these declarations and `state.stamps.spec_hash` hashes the
keys marked `in_spec`, so a key added here is validated, defaulted and hashed alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchlib.plan import DEFAULT_PARALLEL, SCHEDULES, Budget, Limits
from orchlib.plan.budgetschema import budget
from orchlib.plan.checks import (
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
    text,
    timestamp,
)

Check = Callable[[Issues, Any, KeyPath], Any]


@dataclass(frozen=True)
class PlanKey:
    """One key of a plan file. `check` None: read by its own code in `schema` (a list, a
    graph, an agent, a nested mapping); `field` "": it fills no field of the model."""

    name: str
    field: str
    check: Check | None
    default: Any = None
    required: bool = False
    inherited_from: tuple[str, ...] = ()  # "defaults" (the plan's), "project"
    in_spec: bool = False


def _grace(issues: Issues, value: object, path: KeyPath) -> float:
    return duration(issues, value, path) or 0.0


_L = Limits()
_HANDED_DOWN = ("defaults", "project")
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

PLAN = (
    PlanKey("planId", "plan_id", ident, required=True),
    PlanKey("projects", "projects", None, required=True),
    PlanKey("tasks", "tasks", None, required=True),
    PlanKey("summary", "summary", text, ""),
    PlanKey("createdAt", "created_at", timestamp, ""),
    PlanKey("executionOrder", "phases", None),
    PlanKey("agent", "", None),
    PlanKey("agents", "", None),
    PlanKey("defaults", "", None),
    PlanKey("context", "context", text, "", in_spec=True),
    PlanKey("schedule", "schedule", choice(SCHEDULES), "dag"),
    PlanKey("notify", "notify", None),
    PlanKey("allowOutsidePaths", "allow_outside_paths", flag, False),
    PlanKey("environment", "", None),
    PlanKey("sandboxWritable", "sandbox_writable", None, ()),
    PlanKey("budget", "budget", budget, Budget()),  # its own total; not inherited (§15)
)

PROJECT = (
    PlanKey("name", "name", nonempty, required=True),
    PlanKey("path", "path", nonempty, required=True),
    PlanKey("techStack", "tech_stack", text, ""),
    PlanKey("description", "description", text, ""),
    PlanKey("context", "context", text, "", in_spec=True),
    PlanKey("agent", "", None, inherited_from=("plan",)),
    PlanKey("isolation", "isolation", None, ""),
    PlanKey("parallel", "parallel", None, DEFAULT_PARALLEL),
    *LIMIT_KEYS,
    PlanKey("environment", "", None, inherited_from=("plan",)),
    PlanKey("sandbox", "", None, inherited_from=("defaults",)),
    PlanKey("budget", "budget", budget, Budget()),
    PlanKey("review", "", None, inherited_from=("defaults",)),
    PlanKey("race", "", None),
)

TASK = (
    PlanKey("id", "id", ident, required=True),
    PlanKey("project", "project", text, required=True),
    PlanKey("title", "title", text, required=True, in_spec=True),
    PlanKey("description", "description", text, "", in_spec=True),
    PlanKey("dependsOn", "depends_on", None, ()),
    PlanKey("complexity", "complexity", text, ""),
    PlanKey("estimatedMinutes", "estimated_minutes", number, None),
    PlanKey("agent", "agent", None, inherited_from=("plan", "project"), in_spec=True),
    PlanKey("command", "command", argv, None, in_spec=True),
    PlanKey("verify", "verify", argv, None, in_spec=True),
    PlanKey("outputs", "outputs", globs, (), in_spec=True),
    PlanKey("inputs", "inputs", globs, (), in_spec=True),
    *LIMIT_KEYS,
    # How to run, not what to make: a changed policy (or a rotated key) redoes nothing.
    PlanKey("environment", "environment", None, inherited_from=("plan", "project")),
    # How a task runs, not what it delivers (like `isolation`): not in the spec hash.
    PlanKey("sandbox", "sandbox", None, "", inherited_from=_HANDED_DOWN),
    PlanKey("budget", "budget", budget, Budget()),
    # What counts as done: a reviewer's say (only when set, so no other task's hash moves).
    PlanKey("review", "review", None, None, inherited_from=_HANDED_DOWN, in_spec=True),
    # Who races for the task (DESIGN §16): how it runs, not what it delivers.
    PlanKey("race", "race", None, (), inherited_from=("project",)),
)

DEFAULTS = (*LIMIT_KEYS, PlanKey("executor", "executor", None, ""),
            PlanKey("sandbox", "", None, ""), PlanKey("review", "", None))  # fmt: skip


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
