"""Which ready task starts next: per project folder, in executionOrder, the longest
remaining path first (a critical-path rank), within each project's capacity."""

from __future__ import annotations

import heapq
from typing import Any

from orchlib.checkout import Checkout
from orchlib.plan import AgentSpec, Plan, TaskMeta


def project_capacity(co: Checkout) -> dict[str, int]:
    """How many tasks may run at once in each project folder: `parallel` when isolated, else 1.

    Plans sharing a folder share its limit; the smallest one holds (a task working in the
    folder itself must not meet a merge into it).
    """
    capacity: dict[str, int] = {}
    for plan in co.plans.values():
        for project in plan.projects.values():
            root = str(project.root)
            capacity[root] = min(capacity.get(root, project.parallel), project.parallel)
    return capacity


def agent_key(spec: AgentSpec) -> str:
    """The capacity key of an agent's `maxParallel` (beside the project folders' keys)."""
    return f"agent:{spec.name}"


def agent_capacity(co: Checkout) -> dict[str, int]:
    """How many attempts of each capped agent may run at once across the run (`maxParallel`).

    An agent named alike in two plans (or inline twice) shares one cap: the smallest holds.
    """
    capacity: dict[str, int] = {}
    for plan in co.plans.values():
        for task in plan.tasks.values():
            for spec in task.agents or (task.agent,):
                if spec.max_parallel:
                    key = agent_key(spec)
                    capacity[key] = min(capacity.get(key, spec.max_parallel), spec.max_parallel)
    return capacity


def critical_ranks(plan: Plan) -> dict[str, float]:
    """Longest remaining path from each task to the end, in estimated minutes (1 when unknown).

    A path follows the plan's dependencies and its projects' order: a project runs its tasks
    in executionOrder order, so a task also comes before its project's tasks of later phases.
    """
    ranks: dict[str, float] = {}
    later: dict[str, float] = {}  # per project: the highest rank among its later tasks
    for phase in reversed(plan.phases):
        here: dict[str, float] = {}
        for task_id in phase:
            task = plan.tasks[task_id]
            after = [ranks[d] for d in plan.dependents(task_id) if d in ranks]
            after.append(later.get(task.project, 0.0))
            ranks[task_id] = (task.estimated_minutes or 1.0) + max(after)
            here[task.project] = max(here.get(task.project, 0.0), ranks[task_id])
        later.update(here)
    return ranks


class ReadyQueue:
    """Selected tasks waiting for their project's terminal, per project in executionOrder.

    A project's tasks go phase by phase; within one phase (tasks executionOrder lets run
    in parallel) the one with the longest remaining path goes first, then plan order.
    """

    def __init__(self) -> None:
        self._heaps: dict[str, list[tuple[tuple[int, float, int], int, Any]]] = {}
        self._seq = 0  # two plans may share a project folder: keys can tie

    def __bool__(self) -> bool:
        return bool(self._heaps)

    def add(self, node: Any, meta: TaskMeta, rank: float) -> None:
        """A task doit selected to run; `rank` is its longest remaining path."""
        key = (meta.phase, -rank, meta.index)
        self._seq += 1
        heapq.heappush(self._heaps.setdefault(meta.root, []), (key, self._seq, node))

    def heads(self, busy: set[str]) -> list[tuple[tuple[float, int, int], Any]]:
        """(priority, task): the first waiting task of every project not in `busy`."""
        heads = []
        for root, heap in self._heaps.items():
            if root not in busy:
                (phase, rank, index), _, node = heap[0]
                heads.append(((rank, phase, index), node))
        return heads

    def pop(self, root: str) -> Any:
        """Take the first waiting task of a project."""
        heap = self._heaps[root]
        node = heapq.heappop(heap)[2]
        if not heap:
            del self._heaps[root]
        return node
