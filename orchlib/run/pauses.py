"""Per-profile pauses of one run: while a CLI's usage limit lasts, none of its tasks starts.

A pause ends at the reset time the CLI gave; without one it lasts 5 minutes, doubling on
each further limit report of the profile (10, 20, 40 minutes), capped at an hour, and the
doubling starts over once an attempt of the profile ends without a limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from orchlib import agents

if TYPE_CHECKING:
    from orchlib.plan import AgentSpec, Task

FIRST_BACKOFF = 300.0
MAX_BACKOFF = 3600.0


def profile_of(task: Task) -> str | None:
    """The name a task's usage limits are kept under: its CLI profile (None: a shell task).

    Tasks on one CLI share its account, so a plan's extended `claude` agents pause together.
    """
    if task.command is not None or task.agent.profile == agents.SHELL:
        return None
    return spec_profile(task.agent)


def spec_profile(spec: AgentSpec) -> str:
    """The name an agent's usage limits are kept under (its CLI profile)."""
    return spec.profile or spec.name


def agent_now(task: Task, pauses: Pauses) -> AgentSpec:
    """The agent a task's next attempt uses: the first of its fallback list that no usage
    limit holds (DESIGN §15); its only agent, or the first when every one is held."""
    for spec in task.agents:
        if pauses.until(spec_profile(spec)) is None:
            return spec
    return task.agent


def held_until(task: Task, pauses: Pauses) -> float | None:
    """When a task may start again: None now, else the earliest reset among its agents."""
    if task.command is not None:
        return None
    ends = [pauses.until(spec_profile(spec)) for spec in task.agents or (task.agent,)]
    return None if None in ends else min(e for e in ends if e is not None)


def iso(moment: float) -> str:
    """Epoch seconds as ISO 8601 UTC with a Z, as state.json writes times."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Pauses:
    """Which agent profiles wait for a usage limit to reset, and until when (epoch seconds)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self._backoff: dict[str, float] = {}

    def pause(self, profile: str, reset_at: float | None) -> float:
        """Record a limit report of `profile`; returns when its pause ends."""
        now = self._clock()
        with self._lock:
            if reset_at is None or reset_at <= now:
                delay = min(MAX_BACKOFF, 2 * self._backoff.get(profile, FIRST_BACKOFF / 2))
                self._backoff[profile] = delay
                reset_at = now + delay
            until = max(reset_at, self._until.get(profile, 0.0))
            self._until[profile] = until
            return until

    def clear_backoff(self, profile: str) -> None:
        """An attempt of `profile` ended without a limit: the next guess starts at 5 minutes."""
        with self._lock:
            self._backoff.pop(profile, None)

    def until(self, profile: str | None) -> float | None:
        """When `profile`'s pause ends, or None when it may start now."""
        if profile is None:
            return None
        with self._lock:
            until = self._until.get(profile)
        return until if until is not None and until > self._clock() else None

    def holding(self) -> bool:
        """Whether some profile waits for a reset now (cheap: asked on every scheduling turn)."""
        return bool(self._until) and bool(self.active())

    def active(self) -> dict[str, float]:
        """Every profile still paused, with its end."""
        now = self._clock()
        with self._lock:
            return {name: end for name, end in self._until.items() if end > now}

    def now(self) -> float:
        """The clock pauses are measured on."""
        return self._clock()
