"""What in a drafted plan runs something or widens access (DESIGN §13 "Drafts show what runs").

Reviewing a drafted file is the approval step, so the review names every such field with
its whole value, wherever it sits (plan, `defaults`, a project, a task, an agent mapping, a
notification target). The fields are one table keyed by plan key: a key that is not in
the plan format yet is simply never found, and a new one is one line here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orchlib.textsafe import escaped_line

# plan key -> what it does, as the review says it
POWERS: dict[str, str] = {
    "command": "runs this command",
    "verify": "runs this command after the task's DONE",
    "args": "extra arguments of the agent CLI (permission flags widen what it may do)",
    "env": "environment variables of the agent",
    "environment": "which of your environment variables reach the agents",
    "notify": "runs or sends on events",
    "allowOutsidePaths": "lets project folders live outside the checkout",
    "executor": "where the agents run",
    "sandbox": "what the agents may write",
    "sandboxWritable": "more folders the agents may write",
    "review": "starts a reviewing agent",
    "race": "starts several agents for one task",
}


@dataclass(frozen=True)
class Power:
    """One field found: where, which key, its value, what it does."""

    where: str
    key: str
    value: Any
    meaning: str


def find(data: object) -> list[Power]:
    """Every field of POWERS in the raw plan `data`, in file order."""
    return list(_walk(data, "plan"))


def _walk(value: object, where: str) -> Iterator[Power]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in POWERS:
                yield Power(where, str(key), item, POWERS[str(key)])
                continue  # the whole value is shown; nothing inside it is listed twice
            yield from _walk(item, _inner(where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, _item(where, index, item))


def _inner(where: str, key: object) -> str:
    return str(key) if where == "plan" else f"{where}.{key}"


def _item(where: str, index: int, item: object) -> str:
    """`task t3` and `project web` for plan tasks and projects; `x[2]` for other lists."""
    name = item.get("id") if where == "tasks" and isinstance(item, dict) else None
    if where == "projects" and isinstance(item, dict):
        name = item.get("name")
    if isinstance(name, str):
        return f"{where[:-1]} {name}"
    return f"{where}[{index}]"


def lines(powers: list[Power]) -> list[str]:
    """The review's section: one entry per field, its whole value, never cut."""
    if not powers:
        return ["Runs or widens access: nothing beyond each task's agent in its project folder"]
    out = ["Runs or widens access (check each before running doit):"]
    for power in powers:
        shown = _shown(power.value)
        head = f"  {power.where}: {power.key}"
        if "\n" in shown:
            out += [f"{head}: ({power.meaning})", *(f"      {line}" for line in shown.split("\n"))]
        else:
            out.append(f"{head}: {shown}  ({power.meaning})")
    return out


def _shown(value: object) -> str:
    """A value as the plan has it: text as is (line by line), anything else as JSON."""
    if isinstance(value, str):
        return "\n".join(escaped_line(line) for line in value.rstrip("\n").split("\n"))
    return escaped_line(json.dumps(value, ensure_ascii=False, default=str))
