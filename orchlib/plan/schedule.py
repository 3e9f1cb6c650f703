"""Dependency-graph algorithms over a plan: Kahn layers, cycle finding, executionOrder checks.

Pure functions over a `task id -> dependsOn` mapping given in plan order. Dependencies
that name no task of the mapping are ignored here: the validator reports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Graph = Mapping[str, Sequence[str]]
Phases = tuple[tuple[str, ...], ...]
OrderIssue = tuple[tuple[int, ...], str]


def layers(tasks: Graph) -> Phases:
    """Kahn layers: each task one layer after its last dependency, ties in plan order."""
    order = {task: index for index, task in enumerate(tasks)}
    waiting = {task: len(_known_deps(tasks, task)) for task in tasks}
    users = _dependents(tasks)
    layer = [task for task, count in waiting.items() if count == 0]
    result: list[tuple[str, ...]] = []
    while layer:
        result.append(tuple(layer))
        layer = sorted(_release(layer, waiting, users), key=order.__getitem__)
    if sum(map(len, result)) != len(tasks):
        raise ValueError(f"dependency cycle: {' -> '.join(find_cycle(tasks) or [])}")
    return tuple(result)


def _known_deps(tasks: Graph, task: str) -> set[str]:
    return {dep for dep in tasks[task] if dep in tasks}


def _dependents(tasks: Graph) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {task: [] for task in tasks}
    for task in tasks:
        for dep in _known_deps(tasks, task):
            users[dep].append(task)
    return users


def _release(layer: list[str], waiting: dict[str, int], users: dict[str, list[str]]) -> list[str]:
    """Count down the dependents of a finished layer; return those now free."""
    free = []
    for task in layer:
        for user in users[task]:
            waiting[user] -= 1
            if waiting[user] == 0:
                free.append(user)
    return free


def find_cycle(tasks: Graph) -> list[str] | None:
    """One dependency cycle as ids with the first repeated at the end, or None.

    Deterministic: a depth-first search from each task in plan order, following
    dependencies in their listed order. A self-dependency counts as a cycle `[t, t]`.
    """
    done: set[str] = set()
    for start in tasks:
        if start not in done:
            cycle = _cycle_from(tasks, start, done)
            if cycle:
                return cycle
    return None


def _cycle_from(tasks: Graph, start: str, done: set[str]) -> list[str] | None:
    """Iterative DFS (plans may be deep chains); `done` collects fully explored tasks."""
    path: list[str] = [start]
    on_path = {start: 0}
    stack = [iter(tasks[start])]
    while stack:
        dep = next((d for d in stack[-1] if d in tasks and d not in done), None)
        if dep is None:
            done.add(path[-1])
            del on_path[path.pop()]
            stack.pop()
        elif dep in on_path:
            return [*path[on_path[dep] :], dep]
        else:
            on_path[dep] = len(path)
            path.append(dep)
            stack.append(iter(tasks[dep]))
    return None


def find_cycles(tasks: Graph) -> list[list[str]]:
    """Disjoint dependency cycles, each once: find one, drop its tasks, search again."""
    graph = {task: list(deps) for task, deps in tasks.items()}
    cycles = []
    while (cycle := find_cycle(graph)) is not None:
        cycles.append(cycle)
        for task in cycle:
            graph.pop(task, None)
    return cycles


def check_order(phases: Sequence[Sequence[str]], tasks: Graph) -> list[OrderIssue]:
    """Problems of a given executionOrder, each as ((phase, position) or (), message).

    Every task must be listed exactly once, only known tasks may be listed, and each
    task must sit in a later phase than all its dependencies. Phases are 1-based in
    messages (as in orchestration.md), 0-based in positions.
    """
    issues: list[OrderIssue] = []
    phase_of: dict[str, int] = {}
    for p, phase in enumerate(phases):
        for i, task in enumerate(phase):
            issues.extend(_check_listed(task, (p, i), phase_of, tasks))
            phase_of.setdefault(task, p)
    missing = [task for task in tasks if task not in phase_of]
    if missing:
        issues.append(((), f"{_ids(missing)} not in any phase"))
    issues.extend(_check_after(phases, phase_of, tasks))
    return issues


def _check_listed(
    task: str, where: tuple[int, int], phase_of: dict[str, int], tasks: Graph
) -> list[OrderIssue]:
    if task not in tasks:
        return [(where, f"unknown task '{task}' (known: {known_list(tasks)})")]
    if task in phase_of:
        return [(where, f"task '{task}' is listed twice (first in phase {phase_of[task] + 1})")]
    return []


def _check_after(
    phases: Sequence[Sequence[str]], phase_of: dict[str, int], tasks: Graph
) -> list[OrderIssue]:
    issues: list[OrderIssue] = []
    for p, phase in enumerate(phases):
        for i, task in enumerate(phase):
            if task not in tasks or phase_of[task] != p:
                continue
            late = [d for d in tasks[task] if d in phase_of and d != task and phase_of[d] >= p]
            issues.extend(((p, i), _too_early(task, p, dep, phase_of[dep])) for dep in late)
    return issues


def _too_early(task: str, phase: int, dep: str, dep_phase: int) -> str:
    return (
        f"task '{task}' (phase {phase + 1}) must come after its dependency "
        f"'{dep}' (phase {dep_phase + 1})"
    )


def _ids(missing: list[str]) -> str:
    shown = ", ".join(f"'{task}'" for task in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    return f"task {shown} is" if len(missing) == 1 else f"tasks {shown}{more} are"


def known_list(ids: Sequence[str] | Mapping[str, object], limit: int = 10) -> str:
    """`t1, t2, t3`, cut after `limit` ids with `, ...`."""
    names = list(ids)
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
