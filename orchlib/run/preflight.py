"""Before anything is dispatched: every agent CLI the run needs is on PATH, every project
folder it runs in is a folder (a missing one is created), and every isolated project's
folder is a git repository with a commit (a missing or empty one is made one)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from orchlib import agents, executorregistry
from orchlib.checkout import Checkout
from orchlib.errors import ConfigError
from orchlib.fsutil import ensure_dir
from orchlib.plan import Plan, Task
from orchlib.plan.checks import dotted
from orchlib.plan.file import locate
from orchlib.run import sandboxing
from orchlib.run.context import RunContext
from orchlib.run.worktrees import ensure_repo


def check_agents(ctx: RunContext, tasks: Iterable[tuple[Plan, Task]]) -> None:
    """ConfigError (exit 3) naming each missing CLI, the tasks needing it and where it is set."""
    needed: dict[str, list[tuple[Plan, Task]]] = {}
    reviewers: dict[str, list[tuple[Plan, Task]]] = {}
    co, anything = ctx.co, False
    for plan, task in tasks:
        anything = True
        if task.command is None:
            chosen = {agents.executable(s) for s in (*(task.agents or (task.agent,)), *task.race)}
            for program in sorted(chosen):
                needed.setdefault(program, []).append((plan, task))
        if task.review is not None:  # its reviewer's CLI too (DESIGN §16)
            program = agents.executable(task.review.agent)
            reviewers.setdefault(program, []).append((plan, task))
            needed.setdefault(program, [])
    if _checks_hosts(ctx.executor.name):  # e.g. a cluster: its check covers each host at once
        lines = ctx.executor.preflight(co.root, sorted(needed)) if anything else []
        if lines:
            raise ConfigError("\n".join(lines))
        return
    # The executor knows where agents run: a CLI is missing when it has a problem line for it.
    missing = {
        program: found
        for program, found in needed.items()
        if ctx.executor.preflight(co.root, [program])
    }
    if missing:
        lines = [_line(co, prog, found) for prog, found in missing.items() if found]
        lines += [_line(co, prog, reviewers[prog], "review") for prog in missing
                  if prog in reviewers]  # fmt: skip
        raise ConfigError("\n".join(lines))


def check_project_folders(ctx: RunContext, tasks: Iterable[tuple[Plan, Task]]) -> None:
    """Create missing project folders; ConfigError (exit 3) for one that cannot be a folder."""
    co = ctx.co
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


def check_repos(ctx: RunContext, tasks: Iterable[tuple[Plan, Task]]) -> None:
    """ConfigError (exit 3), located at the project's path, for an isolated project whose
    folder cannot be used as a repository; missing and empty folders become repositories."""
    co, problems = ctx.co, dict[Path, str]()
    for plan, task in tasks:
        project = plan.projects[task.project]
        if not project.isolation or project.root in problems:
            continue
        if shutil.which("git") is None:
            raise ConfigError(f"git not found on PATH ({_where(co, plan, project.name)}: "
                              "isolation: worktree needs it)")  # fmt: skip
        problem = ensure_repo(project.root, co.layout.git_log, ctx.repos)
        problems[project.root] = "" if problem is None else (
            f"{_where(co, plan, project.name)}: {project.path!r} {problem}"
        )  # fmt: skip
    found = [line for line in problems.values() if line]
    if found:
        raise ConfigError("\n".join(found))


def check_sandbox(ctx: RunContext, tasks: Iterable[tuple[Plan, Task]]) -> None:
    """ConfigError (exit 3) when tasks are to run under `sandbox: bwrap` where bwrap is
    missing or refused: one line with the cause, where it was asked for, and the way round.
    Once per run (per worker with dask), never per attempt; never a run outside the box."""
    boxed = [(plan, task) for plan, task in tasks if sandboxing.mode(ctx, task) == "bwrap"]
    if not boxed:
        return
    lines = ctx.executor.preflight(ctx.co.root, [], sandbox=True)
    if not lines:
        return
    plan, task = boxed[0]
    if ctx.sandbox:
        where = "--sandbox bwrap (or ORCH_SANDBOX=bwrap)"
    else:
        key = _chosen_key(plan, task, "sandbox")
        where = f"{locate(plan.source, ctx.co.root, key, at_key=True)}: {dotted(tuple(key))}"
    ids = ", ".join(t.id for _, t in boxed)
    raise ConfigError(f"{where}: sandbox: bwrap cannot run (tasks {ids}): {'; '.join(lines)}; "
                      "set sandbox: none to run them without a sandbox")  # fmt: skip


def _where(co: Checkout, plan: Plan, project: str) -> str:
    """`plans/x.yaml:L:C: projects[i].path`: where a project's folder is named."""
    index = list(plan.projects).index(project)
    return f"{locate(plan.source, co.root, ['projects', index, 'path'])}: projects[{index}].path"


def _line(co: Checkout, program: str, found: list[tuple[Plan, Task]], key: str = "agent") -> str:
    plan, task = found[0]
    where = locate(plan.source, co.root, _chosen_key(plan, task, key), at_key=True)
    ids = ", ".join(t.id for _, t in found)
    what = "reviewer agent" if key == "review" else "agent"
    return (
        f"{what} {program!r} not found on PATH (tasks {ids}); install it or set {key}: in {where}"
    )


def _chosen_key(plan: Plan, task: Task, name: str) -> list[str | int]:
    """The key `name` that chose the task's setting: the task's, its project's or the plan's
    (`agent` at the plan's top, any other under its `defaults`)."""
    from orchlib.plan.yamlload import positions  # only on this error path

    project = list(plan.projects).index(task.project)
    top = ("agent",) if name == "agent" else ("defaults", name)
    keys: list[tuple[str | int, ...]] = [
        ("tasks", task.index, name),
        ("projects", project, name),
        top,
    ]
    try:
        found = positions(plan.source.read_text(encoding="utf-8-sig", errors="replace"), keys)
    except OSError:
        found = {}
    return list(next((key for key in keys if key in found), top))


def _checks_hosts(name: str) -> bool:
    """Whether the executor's own preflight speaks for each of its hosts (the registry says)."""
    entry = executorregistry.EXECUTORS.get(name)
    return entry is not None and entry.checks_hosts
