"""Before anything is dispatched: every agent CLI the run needs is on PATH, and every
project folder it runs in is a folder (a missing one is created)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.errors import ConfigError
from orchlib.fsutil import ensure_dir
from orchlib.plan import Plan, Task
from orchlib.planfile import locate


def check_agents(co: Checkout, tasks: Iterable[tuple[Plan, Task]]) -> None:
    """ConfigError (exit 3) naming each missing CLI, the tasks needing it and where it is set."""
    missing: dict[str, list[tuple[Plan, Task]]] = {}
    for plan, task in tasks:
        if task.command is not None:
            continue
        program = agents.executable(task.agent)
        if shutil.which(program) is None and not os.access(program, os.X_OK):
            missing.setdefault(program, []).append((plan, task))
    if missing:
        raise ConfigError("\n".join(_line(co, prog, found) for prog, found in missing.items()))


def check_project_folders(co: Checkout, tasks: Iterable[tuple[Plan, Task]]) -> None:
    """Create missing project folders; ConfigError (exit 3) for one that cannot be a folder."""
    problems: dict[Path, str] = {}
    for plan, task in tasks:
        project = plan.projects[task.project]
        if project.root in problems:
            continue
        try:
            ensure_dir(project.root)  # the dispatcher's own call then costs nothing
        except OSError as exc:
            index = list(plan.projects).index(project.name)
            where = locate(plan.source, co.root, ["projects", index, "path"])
            why = "it is a file" if project.root.is_file() else exc.strerror
            problems[project.root] = (
                f"{where}: projects[{index}].path: cannot use {project.path!r} "
                f"as the project folder: {why}"
            )
    if problems:
        raise ConfigError("\n".join(problems.values()))


def _line(co: Checkout, program: str, found: list[tuple[Plan, Task]]) -> str:
    plan, task = found[0]
    where = locate(plan.source, co.root, _agent_key(plan, task), at_key=True)
    ids = ", ".join(t.id for _, t in found)
    return f"agent {program!r} not found on PATH (tasks {ids}); install it or set agent: in {where}"


def _agent_key(plan: Plan, task: Task) -> list[str | int]:
    """The `agent` key that chose the task's agent: the task's, its project's or the plan's."""
    from orchlib.yamlload import positions  # only on this error path

    project = list(plan.projects).index(task.project)
    keys: list[tuple[str | int, ...]] = [
        ("tasks", task.index, "agent"),
        ("projects", project, "agent"),
        ("agent",),
    ]
    try:
        found = positions(plan.source.read_text(encoding="utf-8-sig", errors="replace"), keys)
    except OSError:
        found = {}
    return list(next((key for key in keys if key in found), ("agent",)))
