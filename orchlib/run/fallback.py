"""Fallback agents (DESIGN §15): which agent of a task's list runs its next attempt, and the
handover a fresh agent reads when the previous one stopped at its usage limit."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchlib import agents
from orchlib.plan import AgentSpec, Task
from orchlib.records import replace
from orchlib.run.markers import strip_ansi
from orchlib.run.pauses import Pauses, agent_now

TAIL_BYTES = 1 << 16  # how much of the previous log is decoded for its tail
TAIL_LINES = 40
TAIL_CHARS = 4000


@dataclass(frozen=True)
class Handover:
    """The previous attempt of a task, stopped by its agent's usage limit."""

    agent: str
    number: int
    tail: str  # the end of its transcript, secrets already removed


def choose(task: Task, pauses: Pauses) -> Task:
    """The task as its next attempt runs it: `agent` is the first of its list not paused."""
    if not task.agents:
        return task
    return replace(task, agent=agent_now(task, pauses))


def named(task: Task, name: str) -> Task:
    """The task run by the agent of its list called `name` (an adopted attempt's)."""
    spec = next((s for s in task.agents if s.name == name), None)
    return task if spec is None else replace(task, agent=spec)


def handover(spec: AgentSpec, number: int, log: Path, redact: Callable[[str], str]) -> Handover:
    """What the next agent is told of attempt `number` (run by `spec`, its log at `log`)."""
    return Handover(spec.name, number, redact(transcript_tail(spec, log)))


def transcript_tail(spec: AgentSpec, log: Path) -> str:
    """The last lines the agent said or its tools returned, decoded as `doit log` would."""
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - TAIL_BYTES))
            raw = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    reader = agents.adapter(spec)
    lines = raw.splitlines()[1:] if len(raw) >= TAIL_BYTES else raw.splitlines()
    said = [text for line in lines for text in reader.texts(strip_ansi(line))]
    tail = "\n".join(said).splitlines()[-TAIL_LINES:]
    return "\n".join(tail)[-TAIL_CHARS:]


def section(given: Handover, now: str) -> str:
    """The prompt section that hands the task over to agent `now`."""
    quoted = "\n".join(f"    {line}" for line in given.tail.splitlines()) or "    (no output)"
    return (
        f"\n## Handover\n"
        f"Attempt {given.number} of this task ran on {given.agent}, which stopped at its usage "
        f"limit; you ({now}) take over in a fresh session. The work it did is in the project "
        f"folder. The end of its transcript:\n\n{quoted}\n"
    )
