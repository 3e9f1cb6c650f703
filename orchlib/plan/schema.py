"""The plan schema: plain data (as loaded from YAML or JSON) to a `Plan`, every problem collected.

`build_plan` never raises on bad data: it returns the plan, or None and the issues with
their key paths. Each level (the plan, its `defaults`, a project, a task) is read by one
loop over its declarations in `keys` (`level.read`); this module adds the levels' structure
and the rules between keys. Graph rules (unknown dependencies, cycles, executionOrder)
live in `graph`; agent rules in `agentspec`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchlib import executorregistry
from orchlib.plan import Limits, Plan, Project, Task, keys, project_root
from orchlib.plan.agentspec import Agents, task_agents
from orchlib.plan.checks import Issues, KeyPath, describe, mapping, no_nul_bytes, q, wrong
from orchlib.plan.graph import Graph
from orchlib.plan.level import Level, Reading, Shape, Values, inherited_value, read
from orchlib.plan.refname import branch_problem, task_branch
from orchlib.plan.reviewschema import racers

EXECUTOR_NAMES = executorregistry.NAMES
PLAN_KEYS, PLAN_OPTIONAL = keys.required(keys.PLAN), keys.optional(keys.PLAN)
PROJECT_KEYS, PROJECT_OPTIONAL = keys.required(keys.PROJECT), keys.optional(keys.PROJECT)
TASK_KEYS, TASK_OPTIONAL = keys.required(keys.TASK), keys.optional(keys.TASK)

DEFAULTS = keys.optional(keys.DEFAULTS)
_AGENT = next(k for k in keys.TASK if k.name == "agent")
PLAN_FIELDS, PROJECT_FIELDS, TASK_FIELDS = (
    keys.model_fields(keys.PLAN),
    keys.model_fields(keys.PROJECT),
    keys.model_fields(keys.TASK),
)
# A task key's model field, for the keys set on a task.
TASK_FIELD_OF = {k.name: k.field for k in keys.TASK if k.field and k not in keys.LIMIT_KEYS}


def _fields(
    fields: tuple[tuple[str, ...], Callable[[Values], Any]], values: Values
) -> dict[str, Any]:
    """A level's model fields from its keys' values."""
    names, get = fields
    return dict(zip(names, get(values), strict=True))


def build_plan(data: object, source: Path, checkout: Path) -> tuple[Plan | None, Issues]:
    """The validated plan of `data`, or None with every issue found."""
    issues = Issues()
    if not isinstance(data, dict):
        empty = "the plan file is empty" if data is None else f"got {describe(data)}"
        issues.add((), f"a plan must be a mapping with planId, projects and tasks; {empty}")
        return None, issues
    # Alone: a NUL would make the path checks below fail (`embedded null byte`).
    no_nul_bytes(issues, data)
    if issues:
        return None, issues
    root = mapping(issues, data, (), PLAN_KEYS, PLAN_OPTIONAL)
    if root is None:
        return None, issues
    plan = _Builder(issues, root, checkout).plan(source)
    return (None if issues else plan), issues


_PLAN, _DEFAULTS = Shape.of(keys.PLAN), Shape.of(keys.DEFAULTS)
_PROJECT, _TASK = Shape.of(keys.PROJECT), Shape.of(keys.TASK)


class _Builder:
    """Reads the plan top-down: plan settings, projects, tasks; the graph checks come last."""

    def __init__(self, issues: Issues, root: dict[str, Any], checkout: Path) -> None:
        agents = Agents(issues, root.get("agents"), ("agents",))
        self.reading = Reading(issues, checkout, agents, Graph(issues), EXECUTOR_NAMES)
        self.issues = issues
        self.top = Level(self.reading, root, (), {})
        self.defaults: Values = {}
        self.limits = {"": Limits()}  # of the defaults (""), of each project, for its tasks
        self.projects: dict[str, Project] = {}
        self.plan_id = ""
        self._fields: dict[int, dict[str, Any]] = {}  # by id(level.base), those dicts live on
        self.branch_ok = True  # False once planId itself makes no git branch name

    def plan(self, source: Path) -> Plan | None:
        read(self.top, _PLAN, self.nested)
        values = self.top.base
        if self.issues:
            return None
        return Plan(source=source, executor=self.defaults["executor"],
                    **_fields(PLAN_FIELDS, values))  # fmt: skip

    def nested(self, name: str, value: object, path: KeyPath) -> Any:
        """The levels inside the plan: its defaults, its projects, its tasks."""
        if name == "defaults":
            m = mapping(self.issues, value, path, (), DEFAULTS)
            level = Level(self.reading, m or {}, path, {})
            read(level, _DEFAULTS)
            self.defaults = level.values()
            self.limits[""] = keys.limits(self.defaults.__getitem__, m or {}, Limits())
            return self.defaults
        found = _list(self.issues, value, path)
        if name == "projects":
            for index, item in enumerate(found):
                self.project(item, (*path, index))
            plan_id = self.top.base.get("planId")
            self.plan_id = plan_id if isinstance(plan_id, str) else ""
            self.branch_ok = self.check_branch(("planId",), "plan id", self.plan_id, "t")
            return self.projects
        tasks = [self.task(item, (*path, index)) for index, item in enumerate(found)]
        return {task.id: task for task in tasks if task is not None}

    def outer(self) -> dict[str, Values]:
        return {"plan": self.top.base, "defaults": self.defaults}

    def project(self, item: object, path: KeyPath) -> None:
        issues = self.issues
        m = mapping(issues, item, path, PROJECT_KEYS, PROJECT_OPTIONAL)
        if m is None:
            return
        level = Level(self.reading, m, path, self.outer())
        read(level, _PROJECT)
        values = level.values()
        name, folder = values["name"], values["path"]
        root = None if folder is None else self.project_root(folder, (*path, "path"))
        values["isolation"], values["parallel"] = _isolation(issues, m, path, values)
        _race_needs_isolation(level, values["isolation"])
        fields = {**_fields(PROJECT_FIELDS, values), "name": name or "", "path": folder or ""}
        project = Project(root=root or self.reading.checkout, **fields)
        if name is not None and _first(issues, self.projects, name, (*path, "name"), "project"):
            self.projects[name] = project
            self.limits[name] = keys.limits(values.__getitem__, m, self.limits[""])
            self.reading.projects[name] = values

    def project_root(self, folder: str, path: KeyPath) -> Path | None:
        checkout = self.reading.checkout
        try:
            root = project_root(checkout, folder)
        except (OSError, RuntimeError, ValueError) as error:
            self.issues.add(path, f"bad project path {q(folder)}: {error}")
            return None
        if not self.top.base["allowOutsidePaths"] and not inside(root, checkout):
            self.issues.add(
                path,
                f"project path {q(folder)} resolves to {root}, outside the checkout "
                f"{checkout.resolve()} (set allowOutsidePaths: true to allow it)",
            )
        return root

    def task(self, item: object, path: KeyPath) -> Task | None:
        issues = self.issues
        m = mapping(issues, item, path, TASK_KEYS, TASK_OPTIONAL)
        if m is None:
            return None
        level = Level(self.reading, m, path, self.outer())
        read(level, _TASK)
        fields = self.task_fields(level)
        scope = level.outer.get("project")
        task_id, title = level.get("id"), level.get("title")
        if task_id is None or title is None or scope is None:
            return None
        if scope["isolation"] and self.branch_ok:
            self.check_branch((*path, "id"), "task id", task_id, task_id)
        return Task(**fields)

    def fields(self, level: Level) -> dict[str, Any]:
        """A task's model fields from its keys (those handed down built once per project)."""
        base = self._fields.get(id(level.base))
        if base is None:
            base = self._fields[id(level.base)] = _fields(TASK_FIELDS, level.base)
        fields = dict(base)
        for name, value in level.own.items():
            if name in TASK_FIELD_OF:
                fields[TASK_FIELD_OF[name]] = value
        return fields

    def check_branch(self, path: KeyPath, what: str, value: str, task_id: str) -> bool:
        """Whether the branch `isolation: worktree` gives a task can exist (DESIGN §10)."""
        isolated = any(project.isolation for project in self.projects.values())
        branch = task_branch(self.plan_id, task_id)
        problem = branch_problem(branch) if isolated and self.plan_id else None
        if problem is not None:
            self.issues.add(path, f"{what} {q(value)} cannot name a git branch (isolation: "
                            f"worktree gives it {q(branch)}): {problem}")  # fmt: skip
        return problem is None

    def task_fields(self, level: Level) -> dict[str, Any]:
        """A task's fields: its keys' values, its agent resolved with its command, its race."""
        issues, path, m = self.issues, level.path, level.m
        inherited = inherited_value(_AGENT, level.outer)
        ran = level.get("command") is not None
        agent, fallback = task_agents(issues, level.own.get("agent"), inherited, ran, path)
        scope = level.outer.get("project")
        _race_needs_isolation(level, scope["isolation"] if scope else "worktree")
        # A bad `race` here races nothing (it does not fall back to the project's).
        raced = level.own.get("race") if "race" in m else level.get("race")
        outer = self.limits[level.get("project") if scope else ""]
        task_limits = keys.limits(level.get, m, outer)
        if raced is not None and task_limits.approve:
            issues.add((*path, "race"), "'race' and 'approve: true' do not combine (a person "
                       "would approve one racer's worktree; race without approve)")  # fmt: skip
        fields = self.fields(level)
        fields.update(agent=agent, agents=fallback, limits=task_limits, index=path[-1],
                      race=racers(raced, self.reading.agents, agent))  # fmt: skip
        return fields


def _isolation(issues: Issues, m: dict[str, Any], path: KeyPath, values: Values) -> tuple[str, int]:
    """A project's `isolation` and `parallel` (tasks at once); parallel needs isolation."""
    isolation, parallel = values["isolation"], values["parallel"]
    if "parallel" in m and "isolation" not in m:
        issues.add((*path, "parallel"), "'parallel' needs 'isolation: worktree' (without it, "
                   "a project runs one task at a time in its folder)")  # fmt: skip
    elif parallel == 0:
        issues.add((*path, "parallel"), "must be >= 1, got 0")
    return (isolation, max(1, parallel)) if isolation else ("", 1)


def _race_needs_isolation(level: Level, isolation: str) -> None:
    """A `race` set at this level without `isolation: worktree` is an error here."""
    if "race" in level.own and not isolation:
        level.plan.issues.add((*level.path, "race"), "'race' needs 'isolation: worktree' on the "
                              "project (each racer works in its own worktree)")  # fmt: skip


def _list(issues: Issues, value: object, path: KeyPath) -> list[Any]:
    if isinstance(value, list):
        return value
    wrong(issues, path, "a list", value)
    return []


def _first(issues: Issues, seen: dict[str, Any], name: str, path: KeyPath, what: str) -> bool:
    if name in seen:
        issues.add(path, f"duplicate {what} name {q(name)}")
        return False
    return True


def inside(root: Path, checkout: Path) -> bool:
    """Whether a resolved folder is the checkout or below it."""
    return root.is_relative_to(checkout.resolve())
