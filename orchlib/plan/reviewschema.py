"""`review:` (task, project, the plan's defaults) and `race:` (task, project) (DESIGN §16)."""

from __future__ import annotations

from orchlib.plan import AgentSpec, Review
from orchlib.plan.agentspec import Agents
from orchlib.plan.checks import Issues, KeyPath, mapping, text, wrong

Raced = tuple[str, ...] | int | None  # a `race` value: agent names, a count, or none
REVIEW_KEYS = ("agent",)
REVIEW_OPTIONAL = ("instructions",)


def review(issues: Issues, value: object, at: KeyPath, agents: Agents) -> Review | None:
    """A `review` value: an agent name or `{agent, instructions}`."""
    if isinstance(value, str):
        agent = agents.named(value, at)
        return None if agent is None else Review(agent)
    if not isinstance(value, dict):
        wrong(issues, at, "an agent name or a mapping {agent, instructions}", value)
        return None
    body = mapping(issues, value, at, REVIEW_KEYS, REVIEW_OPTIONAL)
    if body is None:
        return None
    name = body.get("agent")
    if name is None:  # reported missing by `mapping`
        return None
    if not isinstance(name, str):
        wrong(issues, (*at, "agent"), "an agent name", name)
        return None
    agent = agents.named(name, (*at, "agent"))
    instructions = text(issues, body.get("instructions", ""), (*at, "instructions"))
    return None if agent is None else Review(agent, instructions or "")


def race(issues: Issues, value: object, at: KeyPath, agents: Agents) -> Raced:
    """A `race` value: N >= 2, or a list of >= 2 agent names.

    The names are checked here; `racers` turns the value into agents for one task.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 2:
            issues.add(at, f"a race needs at least 2 racers, got {value}")
            return None
        return value
    if not isinstance(value, list):
        wrong(issues, at, "a number of racers (>= 2) or a list of agent names", value)
        return None
    if len(value) < 2:
        issues.add(at, f"a race needs at least 2 agents, got {len(value)}")
        return None
    names: list[str] = []
    for index, name in enumerate(value):
        if not isinstance(name, str):
            wrong(issues, (*at, index), "an agent name", name)
        elif agents.named(name, (*at, index)) is not None:
            names.append(name)
    return tuple(names) if len(names) == len(value) else None


def racers(value: Raced, agents: Agents, own: AgentSpec) -> tuple[AgentSpec, ...]:
    """The agents of a task's racers: `own` N times, or the named ones."""
    if value is None:
        return ()
    if isinstance(value, int):
        return (own,) * value
    found = [agents.named(name, ()) for name in value]
    return tuple(spec for spec in found if spec is not None)
