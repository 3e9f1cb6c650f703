"""The runner's side of usage limits: which ready tasks a limit holds, and waiting it out.

The runner asks `held` before starting a task, `show` makes tasks held before they ever
started PAUSED in the state (so `doit status` tells the truth), and `wait` runs when nothing
but held tasks is left: it sleeps towards the first reset (a countdown on a terminal), or,
with `--no-wait-limits`, records the pauses in `gave_up` so the run ends with exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from orchlib.doitedge.loader import orch_meta
from orchlib.events import TaskPaused
from orchlib.plan import Task
from orchlib.run.context import RunContext
from orchlib.run.pauses import held_until, iso, profile_of

WaitFn = Callable[[dict[str, float]], None]


class LimitWait:
    """Usage-limit decisions of one run's runner."""

    def __init__(self, run: RunContext, wait_limits: bool, on_wait: WaitFn | None) -> None:
        self.ctx, self.wait_limits, self.on_wait = run, wait_limits, on_wait
        self.gave_up: dict[str, float] = {}  # profile -> reset, when the run stopped for it
        self._shown: dict[str, float] = {}  # task name -> the pause end it was shown with

    def held(self, node: Any) -> float | None:
        """When the usage limit holding this doit task's agent resets; None: it may start."""
        return held_until(self._task(node)[1], self.ctx.pauses)

    def show(self, nodes: Iterable[Any]) -> None:
        """Make each held task PAUSED (once per pause) though it never started."""
        for node in nodes:
            until = self.held(node)
            if until is None or self._shown.get(node.task.name) == until:
                continue
            self._shown[node.task.name] = until
            plan_id, task = self._task(node)
            profile = profile_of(task) or ""
            why = f"waits for {profile}'s usage limit"
            self.ctx.bus.publish(
                TaskPaused(plan_id, task.id, 0, profile, iso(until), why, hit=False)
            )

    def wait(self) -> bool:
        """Wait (up to a second) towards the first reset; False when the run ends instead."""
        pauses = self.ctx.pauses.active()
        if not pauses:
            return True  # it reset meanwhile
        if not self.wait_limits:
            self.gave_up = pauses
            return False
        left = min(pauses.values()) - self.ctx.pauses.now()
        if self.on_wait is not None:
            self.on_wait(pauses)
        self.ctx.interrupt.event.wait(min(1.0, max(0.01, left)))
        return True

    def tick(self) -> float:
        """How long to wait for a result: a second, or less when a usage limit resets sooner."""
        ends = self.ctx.pauses.active().values()
        return max(0.05, min(1.0, min(ends, default=float("inf")) - self.ctx.pauses.now()))

    def _task(self, node: Any) -> tuple[str, Task]:
        """The plan id and plan task of a doit task node."""
        meta = orch_meta(node.task)
        assert meta is not None
        return meta.plan, self.ctx.co.plans[meta.plan].tasks[meta.task]
