"""The task graph of a plan being validated: ids, dependsOn, cycles and executionOrder.

Tasks are added as they are read, their id then their dependsOn; `phases` then runs the
checks that need every task (unknown dependencies, cycles, the given executionOrder) and
returns the phases.
"""

from __future__ import annotations

from orchlib.plan.checks import Issues, KeyPath, items, q, text, wrong
from orchlib.plan.schedule import Phases, check_order, find_cycles, known_list, layers

Pairs = list[tuple[int, str]]


class Graph:
    """Task id -> dependsOn of the first task with each id, in plan order."""

    def __init__(self, issues: Issues) -> None:
        self.issues = issues
        self.deps: dict[str, Pairs] = {}
        self.where: dict[str, KeyPath] = {}
        self.owner: dict[str, KeyPath] = {}  # id -> the task (its path) that holds it
        self.entries: list[tuple[str | None, KeyPath, Pairs]] = []

    def add(self, task_id: str, task: KeyPath) -> None:
        """Record a task's id; a second task with it is reported at its `id`."""
        if task_id in self.deps:
            self.issues.add((*task, "id"), f"duplicate task id {q(task_id)}")
        else:
            self.deps[task_id] = []
            self.owner[task_id] = task

    def depends(
        self, task_id: str | None, task: KeyPath, value: object, path: KeyPath
    ) -> tuple[str, ...]:
        """Record a task's dependsOn (at `path`); returns the dependencies."""
        pairs = _pairs(self.issues, value, path)
        if task_id is not None and self.owner.get(task_id) == task:
            self.deps[task_id] = pairs
            self.where[task_id] = path
        self.entries.append((task_id, path, pairs))
        return tuple(dep for _, dep in pairs)

    def clean(self) -> dict[str, list[str]]:
        """The graph without unknown dependencies and self-dependencies."""
        return {
            task: [dep for _, dep in pairs if dep in self.deps and dep != task]
            for task, pairs in self.deps.items()
        }

    def phases(self, order: object, given: bool) -> Phases | None:
        """Check every dependency, then the executionOrder given, or compute the layers."""
        for task_id, path, pairs in self.entries:
            self._check(task_id, path, pairs)
        graph = self.clean()
        cycles = find_cycles(graph)
        for cycle in cycles:
            at = next(j for j, dep in self.deps[cycle[0]] if dep == cycle[1])
            self.issues.add((*self.where[cycle[0]], at), f"dependency cycle: {' -> '.join(cycle)}")
        if given:
            looped = {task for cycle in cycles for task in cycle}
            return self._given(order, {t: [] if t in looped else d for t, d in graph.items()})
        return None if cycles else layers(graph)

    def _check(self, task_id: str | None, path: KeyPath, pairs: Pairs) -> None:
        seen: set[str] = set()
        for j, dep in pairs:
            if dep == task_id:
                self.issues.add((*path, j), f"task {q(dep)} depends on itself")
            elif dep not in self.deps:
                self.issues.add(
                    (*path, j), f"unknown task {q(dep)} (known: {known_list(self.deps)})"
                )
            elif dep in seen:
                self.issues.add((*path, j), f"dependency {q(dep)} is listed twice")
            seen.add(dep)

    def _given(self, order: object, graph: dict[str, list[str]]) -> Phases | None:
        path: KeyPath = ("executionOrder",)
        phases = items(self.issues, order, path, _phase)
        if not isinstance(order, list) or len(phases) != len(order):
            return None
        for where, message in check_order(phases, graph):
            self.issues.add((*path, *where), message)
        return tuple(phases)


def _pairs(issues: Issues, value: object, path: KeyPath) -> Pairs:
    """(position, task id) of each valid string in a dependsOn list."""
    if not isinstance(value, list):
        wrong(issues, path, "a list of task ids", value)
        return []
    found = ((j, text(issues, dep, (*path, j))) for j, dep in enumerate(value))
    return [(j, dep) for j, dep in found if dep is not None]


def _phase(issues: Issues, value: object, path: KeyPath) -> tuple[str, ...] | None:
    """One executionOrder phase: a non-empty list of task ids."""
    if not isinstance(value, list):
        wrong(issues, path, "a list of task ids", value)
        return None
    ids = items(issues, value, path, text)
    if not value:
        issues.add(path, "a phase must list at least one task")
    return tuple(ids) if value and len(ids) == len(value) else None
