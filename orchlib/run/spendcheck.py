"""The warning a plan's `usd` budget earns over an agent that reports tokens only (DESIGN §15):
such an agent's spend counts toward `tokens` budgets alone."""

from __future__ import annotations

from collections.abc import Iterable

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.plan import Plan, Task
from orchlib.plan.file import locate


def usd_warnings(co: Checkout, tasks: Iterable[tuple[Plan, Task]]) -> list[str]:
    """One line per `usd` budget (task, project or plan) over a tokens-only agent."""
    found: dict[str, set[str]] = {}
    for plan, task in tasks:
        if task.command is not None:
            continue
        blind = sorted({s.name for s in task.agents or (task.agent,) if not agents.reports_usd(s)})
        if not blind:
            continue
        project = plan.projects[task.project]
        levels = [
            (task.budget.usd, ("tasks", task.index, "budget", "usd")),
            (project.budget.usd, ("projects", _index(plan, task.project), "budget", "usd")),
            (plan.budget.usd, ("budget", "usd")),
        ]
        for usd, path in levels:
            if usd is not None:
                where = f"{locate(plan.source, co.root, path, at_key=True)}: {_dotted(path)}"
                found.setdefault(where, set()).update(blind)
    return [f"{where}: {', '.join(sorted(names))} report tokens only: their attempts count "
            "toward `tokens` budgets, not this one" for where, names in found.items()]  # fmt: skip


def _index(plan: Plan, project: str) -> int:
    return list(plan.projects).index(project)


def _dotted(path: tuple[object, ...]) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else f".{key}" if text else str(key)
    return text
