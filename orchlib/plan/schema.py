"""The plan schema: plain data (as loaded from YAML or JSON) to a `Plan`, every problem collected.

`build_plan` never raises on bad data: it returns the plan, or None and the issues with
their key paths. Graph rules (unknown dependencies, cycles, executionOrder) live in
`plangraph`; agent rules in `planagents`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchlib import executorregistry
from orchlib.plan import (
    DEFAULT_PARALLEL,
    ISOLATIONS,
    Limits,
    Plan,
    Project,
    Review,
    Task,
    keys,
    project_root,
)
from orchlib.plan.agentspec import DEFAULT, Agents, Choice, task_agents
from orchlib.plan.checks import (
    RESERVED,
    Issues,
    KeyPath,
    choice,
    count,
    describe,
    get,
    ident,
    mapping,
    no_nul_bytes,
    nonempty,
    q,
    reserved_plan_id,
    text,
    unknown,
    wrong,
)
from orchlib.plan.environment import EnvPolicy, nearer
from orchlib.plan.envschema import environment
from orchlib.plan.graph import Graph
from orchlib.plan.notifyschema import notify
from orchlib.plan.refname import branch_problem, task_branch
from orchlib.plan.reviewschema import race, racers, review
from orchlib.plan.sandboxschema import mode, writable

LIMITS = {k.name: k for k in keys.LIMIT_KEYS}
DEFAULTS = keys.optional(keys.DEFAULTS)
EXECUTOR_NAMES = executorregistry.NAMES
PLAN_KEYS, PLAN_OPTIONAL = keys.required(keys.PLAN), keys.optional(keys.PLAN)
PROJECT_KEYS, PROJECT_OPTIONAL = keys.required(keys.PROJECT), keys.optional(keys.PROJECT)
TASK_KEYS, TASK_OPTIONAL = keys.required(keys.TASK), keys.optional(keys.TASK)


@dataclass(frozen=True)
class _Scope:
    """What a project hands down to its tasks."""

    project: Project
    agent: Choice
    limits: Limits
    environment: EnvPolicy
    sandbox: str = ""
    review: Review | None = None
    race: tuple[str, ...] | int | None = None


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


class _Builder:
    """Reads the plan top-down: plan settings, projects, tasks; the graph checks come last."""

    def __init__(self, issues: Issues, root: dict[str, Any], checkout: Path) -> None:
        self.issues = issues
        self.root = root
        self.checkout = checkout
        self.allow_outside = _read(issues, root, (), _ALLOW_OUTSIDE)
        self.agents = Agents(issues, root.get("agents"), ("agents",))
        self.agent = self.agents.choice(root, (), DEFAULT)
        defaults = mapping(issues, root.get("defaults", {}), ("defaults",), (), DEFAULTS)
        self.limits = limits(issues, defaults, ("defaults",), Limits())
        self.environment = _environment(issues, root, (), EnvPolicy())
        # Where agents run (DESIGN §8): only names the registry knows; not part of any spec.
        self.executor = get(issues, defaults or {}, "executor", ("defaults",),
                            choice(EXECUTOR_NAMES), "")  # fmt: skip
        self.sandbox = get(issues, defaults or {}, "sandbox", ("defaults",), mode, "")
        self.review = review(issues, defaults, ("defaults",), self.agents, None)
        self.scopes: dict[str, _Scope] = {}
        self.graph = Graph(issues)
        self.branch_ok = True  # False once planId itself makes no git branch name

    def plan(self, source: Path) -> Plan | None:
        issues, root = self.issues, self.root
        plan_id = get(issues, root, "planId", (), ident, None)
        if plan_id in (".", ".."):
            issues.add(("planId",), f"{q(plan_id)} cannot name a plan folder")
        elif isinstance(plan_id, str) and reserved_plan_id(plan_id):
            issues.add(("planId",), f"{q(plan_id)} is a name orchlib uses in .orch/; {RESERVED}")
        self.agents.resolve_all()
        for index, item in enumerate(_list(issues, root, "projects")):
            self.project(item, ("projects", index))
        self.plan_id = plan_id if isinstance(plan_id, str) else ""
        self.branch_ok = self.check_branch(("planId",), "plan id", self.plan_id, "t")
        tasks = [self.task(item, i) for i, item in enumerate(_list(issues, root, "tasks"))]
        plan = Plan(
            plan_id=plan_id or "",
            source=source,
            projects={name: scope.project for name, scope in self.scopes.items()},
            tasks={task.id: task for task in tasks if task is not None},
            notify=tuple(get(issues, root, "notify", (), notify, [])),
            allow_outside_paths=self.allow_outside,
            executor=self.executor or "",
            sandbox_writable=writable(
                issues, root.get("sandboxWritable", []), ("sandboxWritable",), self.checkout
            ),
            **plain(issues, root, (), keys.PLAN, skip=(_ALLOW_OUTSIDE,)),
        )
        phases = self.graph.phases(root.get("executionOrder"), "executionOrder" in root)
        return None if issues or phases is None else replace(plan, phases=phases)

    def project(self, item: object, path: KeyPath) -> None:
        issues = self.issues
        m = mapping(issues, item, path, PROJECT_KEYS, PROJECT_OPTIONAL)
        if m is None:
            return
        name = get(issues, m, "name", path, nonempty, None)
        folder = get(issues, m, "path", path, nonempty, None)
        root = None if folder is None else self.project_root(folder, (*path, "path"))
        agent = self.agents.choice(m, path, self.agent)
        isolation, parallel = _isolation(issues, m, path)
        project = Project(
            name=name or "",
            path=folder or "",
            root=root or self.checkout,
            isolation=isolation,
            parallel=parallel,
            **plain(issues, m, path, keys.PROJECT),
        )
        sandbox = get(issues, m, "sandbox", path, mode, self.sandbox)
        scope = _Scope(project, agent, limits(issues, m, path, self.limits),
                       _environment(issues, m, path, self.environment), sandbox,
                       review(issues, m, path, self.agents, self.review),
                       _race(issues, m, path, self.agents, None, isolation))  # fmt: skip
        if name is not None and _first(issues, self.scopes, name, (*path, "name"), "project name"):
            self.scopes[name] = scope

    def project_root(self, folder: str, path: KeyPath) -> Path | None:
        try:
            root = project_root(self.checkout, folder)
        except (OSError, RuntimeError, ValueError) as error:
            self.issues.add(path, f"bad project path {q(folder)}: {error}")
            return None
        if not self.allow_outside and not inside(root, self.checkout):
            self.issues.add(
                path,
                f"project path {q(folder)} resolves to {root}, outside the checkout "
                f"{self.checkout.resolve()} (set allowOutsidePaths: true to allow it)",
            )
        return root

    def task(self, item: object, index: int) -> Task | None:
        issues, path = self.issues, ("tasks", index)
        m = mapping(issues, item, path, TASK_KEYS, TASK_OPTIONAL)
        if m is None:
            return None
        task_id = get(issues, m, "id", path, ident, None)
        deps = self.graph.add(task_id, m.get("dependsOn", []), (*path, "dependsOn"), path)
        scope = self.scope(m, path)
        title = get(issues, m, "title", path, text, None)
        fields = self.task_fields(m, path, scope)
        if task_id is None or title is None or scope is None:
            return None
        if scope.project.isolation and self.branch_ok:
            self.check_branch((*path, "id"), "task id", task_id, task_id)
        return Task(id=task_id, project=scope.project.name, title=title, depends_on=deps, **fields)

    def check_branch(self, path: KeyPath, what: str, value: str, task_id: str) -> bool:
        """Whether the branch `isolation: worktree` gives a task can exist (DESIGN §10)."""
        isolated = any(scope.project.isolation for scope in self.scopes.values())
        branch = task_branch(self.plan_id, task_id)
        problem = branch_problem(branch) if isolated and self.plan_id else None
        if problem is not None:
            self.issues.add(path, f"{what} {q(value)} cannot name a git branch (isolation: "
                            f"worktree gives it {q(branch)}): {problem}")  # fmt: skip
        return problem is None

    def task_fields(self, m: dict[str, Any], path: KeyPath, scope: _Scope | None) -> dict[str, Any]:
        """The optional fields of a task, with the project's (or plan's) agent and limits."""
        issues = self.issues
        fields = plain(issues, m, path, keys.TASK)
        own = self.agents.choice(m, path, None)
        inherited = scope.agent if scope else self.agent
        ran = fields["command"] is not None
        agent, fallback = task_agents(issues, own, inherited, ran, path)
        isolated = scope.project.isolation if scope else "worktree"  # no scope: reported
        raced = _race(issues, m, path, self.agents, scope.race if scope else None, isolated)
        task_limits = limits(issues, m, path, scope.limits if scope else self.limits)
        if raced is not None and task_limits.approve:
            issues.add((*path, "race"), "'race' and 'approve: true' do not combine (a person "
                       "would approve one racer's worktree; race without approve)")  # fmt: skip
        return {
            **fields,
            "agent": agent,
            "agents": fallback,
            "race": racers(raced, self.agents, agent) if agent is not None else (),
            "limits": task_limits,
            "environment": _environment(
                issues, m, path, scope.environment if scope else self.environment
            ),
            "sandbox": get(issues, m, "sandbox", path, mode, (scope or self).sandbox),
            "review": review(issues, m, path, self.agents, (scope or self).review),
            "index": path[-1],
        }

    def scope(self, m: dict[str, Any], path: KeyPath) -> _Scope | None:
        name = get(self.issues, m, "project", path, text, None)
        if name is not None and name not in self.scopes:
            self.issues.add((*path, "project"), unknown("project", name, list(self.scopes)))
        return None if name is None else self.scopes.get(name)


def _isolation(issues: Issues, m: dict[str, Any], path: KeyPath) -> tuple[str, int]:
    """A project's `isolation` and `parallel` (tasks at once); parallel needs isolation."""
    isolation = get(issues, m, "isolation", path, choice(ISOLATIONS), "")
    parallel = get(issues, m, "parallel", path, count, DEFAULT_PARALLEL)
    if "parallel" in m and "isolation" not in m:
        issues.add((*path, "parallel"), "'parallel' needs 'isolation: worktree' (without it, "
                   "a project runs one task at a time in its folder)")  # fmt: skip
    elif parallel == 0:
        issues.add((*path, "parallel"), "must be >= 1, got 0")
    return (isolation, max(1, parallel)) if isolation else ("", 1)


Raced = tuple[str, ...] | int | None  # a `race` value: agent names, a count, or none


def _race(issues: Issues, m: dict[str, Any], path: KeyPath, agents: Agents, outer: Raced,
          isolation: str) -> Raced:  # fmt: skip
    """This level's `race`; one set here without `isolation: worktree` is an error here."""
    value = race(issues, m, path, agents, outer)
    if value is not None and "race" in m and not isolation:
        issues.add((*path, "race"), "'race' needs 'isolation: worktree' on the project (each "
                   "racer works in its own worktree)")  # fmt: skip
    return value


def _environment(issues: Issues, m: dict[str, Any], path: KeyPath, outer: EnvPolicy) -> EnvPolicy:
    """`outer` with this level's `environment` fields laid over it (DESIGN §13)."""
    layer = get(issues, m, "environment", path, environment, None)
    return outer if layer is None else nearer(outer, layer)


def _list(issues: Issues, root: dict[str, Any], key: str) -> list[Any]:
    value = root.get(key, [])
    if isinstance(value, list):
        return value
    wrong(issues, (key,), "a list", value)
    return []


def _first(issues: Issues, seen: dict[str, Any], name: str, path: KeyPath, what: str) -> bool:
    if name in seen:
        issues.add(path, f"duplicate {what} {q(name)}")
        return False
    return True


def limits(issues: Issues, m: object, path: KeyPath, base: Limits, only: bool = False) -> Limits:
    """`base` with the limit keys of mapping `m` applied (`only`: m holds nothing else)."""
    if only:
        m = mapping(issues, m, path, (), tuple(LIMITS))
    if not isinstance(m, dict):
        return base
    changes: dict[str, Any] = {}
    for key, declared in LIMITS.items():
        if key in m:
            before = len(issues)
            value = _checked(declared)(issues, m[key], (*path, key))
            if len(issues) == before:
                changes[declared.field] = value
    return replace(base, **changes) if changes else base


_ALLOW_OUTSIDE = next(k for k in keys.PLAN if k.name == "allowOutsidePaths")


def plain(
    issues: Issues,
    m: dict[str, Any],
    path: KeyPath,
    declared: tuple[keys.PlanKey, ...],
    skip: tuple[keys.PlanKey, ...] = (),
) -> dict[str, Any]:
    """The fields of the optional keys read from their declaration alone (a check, no
    inheritance), checked value or default."""
    return {k.field: _read(issues, m, path, k) for k in keys.plain(declared) if k not in skip}


def _read(issues: Issues, m: dict[str, Any], path: KeyPath, key: keys.PlanKey) -> Any:
    return get(issues, m, key.name, path, _checked(key), key.default)


def _checked(key: keys.PlanKey) -> keys.Check:
    assert key.check is not None  # only keys declared with a check are read this way
    return key.check


def inside(root: Path, checkout: Path) -> bool:
    """Whether a resolved folder is the checkout or below it."""
    return root.is_relative_to(checkout.resolve())
