"""`review:` of a task, a project or the plan's defaults (DESIGN §16)."""

from __future__ import annotations

from typing import Any

from orchlib.plan import Review
from orchlib.plan.agentspec import Agents
from orchlib.plan.checks import Issues, KeyPath, mapping, text, wrong

REVIEW_KEYS = ("agent",)
REVIEW_OPTIONAL = ("instructions",)


def review(
    issues: Issues, m: dict[str, Any] | None, path: KeyPath, agents: Agents, outer: Review | None
) -> Review | None:
    """This level's `review` (an agent name or `{agent, instructions}`), else `outer`'s."""
    if not isinstance(m, dict) or "review" not in m:
        return outer
    value, at = m["review"], (*path, "review")
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
