"""What a ready task must find free to start: `-n` slots, places in its project and in its
capped agent (`Places`), and, under `schedule: phases`, its phase's turn (`PhaseBarrier`).

The runner asks these before it launches a task and gives the places back when it ends.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchlib.checkout import Checkout
from orchlib.doitedge.loader import closure, orch_meta
from orchlib.plan import TaskMeta
from orchlib.run.context import RunContext
from orchlib.run.pauses import agent_now
from orchlib.run.ready import agent_capacity, agent_key, project_capacity

Wants = tuple[int, dict[str, int]]  # a task's `-n` slots and its places per capacity key


class Places:
    """The `-n` slots and the places per capacity key that the running tasks hold."""

    def __init__(self, run: RunContext, slots: int) -> None:
        self.co, self.ctx = run.co, run
        self.slots = max(1, slots)
        # One capacity per key: a project folder, or a capped agent (`agent:<name>`).
        self.capacity = {**project_capacity(run.co), **agent_capacity(run.co)}
        self.load: Counter[str] = Counter()  # running attempts per key
        self.busy: set[str] = set()  # keys running all the tasks they may
        # What a running task holds: its `-n` slots and its places per key; one of each, or
        # one per racer of a race (DESIGN §16), taken at once (capped at `-n` and at each
        # key's capacity, so a race always fits).
        self.held: dict[str, Wants] = {}

    def keys(self, node: Any) -> tuple[str, ...]:
        """The capacity keys a task counts in: its project folder, and its agent if capped."""
        meta = orch_meta(node.task)
        assert meta is not None
        task = self.co.plans[meta.plan].tasks[meta.task]
        key = agent_key(agent_now(task, self.ctx.pauses))
        return (meta.root, key) if key in self.capacity else (meta.root,)

    def wants(self, node: Any, meta: TaskMeta) -> Wants:
        """The `-n` slots and the places per capacity key a task takes: one per racer."""
        racers = max(1, len(self.co.plans[meta.plan].tasks[meta.task].race))
        places = {key: min(racers, self.capacity.get(key, 1)) for key in self.keys(node)}
        return min(racers, self.slots), places

    def used(self) -> int:
        """The `-n` slots the running tasks hold."""
        return sum(slots for slots, _ in self.held.values())

    def fit(self, wants: Wants) -> bool:
        """True when every key has the places a task wants left."""
        return all(self.load[k] + n <= self.capacity.get(k, 1) for k, n in wants[1].items())

    def take(self, name: str, wants: Wants) -> None:
        """A task starts: it holds its slots and places until `release`."""
        self.held[name] = wants
        for key, places in wants[1].items():
            self.load[key] += places
            if self.load[key] >= self.capacity.get(key, 1):
                self.busy.add(key)

    def release(self, name: str) -> None:
        """A task ended: its slots and places are free again."""
        for key, places in self.held.pop(name)[1].items():
            self.load[key] -= places
            self.busy.discard(key)


class PhaseBarrier:
    """`schedule: phases`: a phase starts only when every earlier phase of its plan ended."""

    def __init__(self, checkout: Checkout) -> None:
        self.co = checkout
        self.pending: Counter[tuple[str, int]] = Counter()

    def count(self, dispatcher: Any) -> None:
        """Count this run's tasks per plan phase (the selection and its dependencies)."""
        for task in closure(dispatcher.tasks, dispatcher.selected_tasks):
            meta = orch_meta(task)
            if meta is not None:
                self.pending[(meta.plan, meta.phase)] += 1

    def finished(self, task: Any) -> None:
        """A task of this run ended (any outcome, or up to date)."""
        meta = orch_meta(task)
        if meta is not None:
            self.pending[(meta.plan, meta.phase)] -= 1

    def open(self, meta: TaskMeta) -> bool:
        """True when the task may start under its plan's schedule."""
        if self.co.plans[meta.plan].schedule != "phases":
            return True
        phase = meta.phase
        return all(n <= 0 for (p, ph), n in self.pending.items() if p == meta.plan and ph < phase)
