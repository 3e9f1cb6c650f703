"""What a person reviews before running a drafted plan: projects, tasks by phase, the
critical path in estimated minutes, and the next step."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from orchlib import agents
from orchlib.draft import powers
from orchlib.plan import Plan
from orchlib.textsafe import escaped_line


def critical_path(plan: Plan) -> tuple[float, list[str]]:
    """The longest chain of estimated minutes and its task ids.

    A chain follows dependsOn and, as a run does, each project's tasks one after another
    in executionOrder (one terminal per project). Tasks without an estimate count 0.
    """
    before: dict[str, list[str]] = {t: list(task.depends_on) for t, task in plan.tasks.items()}
    last_in_project: dict[str, str] = {}
    order = [t for phase in plan.phases for t in phase]
    for task_id in order:
        project = plan.tasks[task_id].project
        if project in last_in_project:
            before[task_id].append(last_in_project[project])
        last_in_project[project] = task_id
    best: dict[str, tuple[float, list[str]]] = {}
    for task_id in order:  # executionOrder lists every task after all it waits for
        own = plan.tasks[task_id].estimated_minutes or 0.0
        longest = max((best[d] for d in before[task_id]), key=_length, default=(0.0, []))
        best[task_id] = (longest[0] + own, [*longest[1], task_id])
    return max(best.values(), key=_length, default=(0.0, []))


def _length(chain: tuple[float, list[str]]) -> tuple[float, int]:
    """Minutes first; on a tie the longer chain, so a task without an estimate stays on it."""
    return chain[0], len(chain[1])


def _count(n: int, noun: str) -> str:
    """`1 project`, `2 projects`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def text(plan: Plan, data: Any, target: str, rounds: int, broken: list[str]) -> str:
    """The review print of a plan just written to `target` (`data`: its raw content);
    `broken`: invalid plan files."""
    lines = [
        f"orchlib: wrote {target}: plan {plan.plan_id!r}, {_count(len(plan.projects), 'project')}, "
        f"{_count(len(plan.tasks), 'task')} (drafted in {_count(rounds, 'round')})",
    ]
    if plan.summary:
        lines += ["", plan.summary]
    lines += ["", "Projects", *_projects(plan)]
    rows = _task_rows(plan)
    for number, phase in enumerate(plan.phases, start=1):
        lines += ["", f"Phase {number}", *(rows[t] for t in phase)]
    minutes, path = critical_path(plan)
    unknown = sum(1 for t in plan.tasks.values() if t.estimated_minutes is None)
    counts = (
        "1 task without estimatedMinutes counts"
        if unknown == 1
        else (f"{unknown} tasks without estimatedMinutes count")
    )
    note = f" ({counts} 0)" if unknown else ""
    lines += ["", f"Critical path: {' -> '.join(path)}, {minutes:g} estimated minutes{note}"]
    lines += ["", *powers.lines(powers.find(data))]
    lines += _missing_agents(plan)
    lines += [f"Note: {name} is invalid: doit exits 3 until it is fixed" for name in broken]
    lines += ["", f"Review {target} (edit it freely), then run:  doit"]
    # Plan text is shown, never obeyed: a terminal escape in a title must not erase the
    # lines above it (what runs) from the screen.
    return "\n".join(escaped_line(part) for line in lines for part in line.split("\n")) + "\n"


def _projects(plan: Plan) -> list[str]:
    width = max(len(p.name) for p in plan.projects.values())
    paths = max(len(p.path) for p in plan.projects.values())
    return [
        f"  {p.name:<{width}}  {p.path:<{paths}}  {p.tech_stack}".rstrip()
        for p in plan.projects.values()
    ]


def _task_rows(plan: Plan) -> dict[str, str]:
    """One aligned line per task: id, project, title, estimate, dependencies, verify."""
    tasks = list(plan.tasks.values())
    ids = max(len(t.id) for t in tasks)
    projects = max(len(t.project) for t in tasks)
    titles = max(len(t.title) for t in tasks)
    rows = {}
    for task in tasks:
        minutes = "?" if task.estimated_minutes is None else f"{task.estimated_minutes:g}"
        after = f"  after {', '.join(task.depends_on)}" if task.depends_on else ""
        verify = "  +verify" if task.verify else ""
        rows[task.id] = (
            f"  {task.id:<{ids}}  {task.project:<{projects}}  {task.title:<{titles}}  "
            f"{minutes:>3} min{after}{verify}"
        )
    return rows


def _missing_agents(plan: Plan) -> list[str]:
    """A warning for each agent CLI the plan needs that is not on PATH (doit would exit 3)."""
    missing: dict[str, list[str]] = {}
    for task in plan.tasks.values():
        if task.command is None:
            program = agents.executable(task.agent)
            if shutil.which(program) is None and not Path(program).is_file():
                missing.setdefault(program, []).append(task.id)
    return [
        f"Note: agent {program!r} (tasks {', '.join(ids)}) is not on PATH: install it before doit"
        for program, ids in missing.items()
    ]
