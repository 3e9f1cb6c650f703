"""Which sandbox an attempt's processes run in (DESIGN §14): the mode the run or the plan
chose, and what the attempt may write, as the plain `Sandbox` the executor applies."""

from __future__ import annotations

import contextlib
from pathlib import Path

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.executors.sandbox import Sandbox
from orchlib.plan import Plan, Task
from orchlib.plan.sandboxschema import PROTECTED
from orchlib.run.context import RunContext

# A repository's files that git runs as code: orchlib's own git (worktrees, commits,
# merges) runs outside the sandbox, so an agent that may write the repository's metadata
# must not be able to plant a hook or a config (core.fsmonitor, aliases) there.
_GIT_CODE = ("config", "hooks")


def mode(ctx: RunContext, task: Task) -> str:
    """The task's sandbox this run: `--sandbox`/ORCH_SANDBOX, else the plan's, else none."""
    return ctx.sandbox or task.sandbox or "none"


def box(
    ctx: RunContext, plan: Plan, task: Task, workdir: Path, agent: bool = True
) -> Sandbox | None:
    """What a process of the task working in `workdir` may write; None without a sandbox.
    `agent`: the task's agent (its profile's state folders), else its command or verify."""
    if mode(ctx, task) != "bwrap":
        return None
    co = ctx.co
    project = plan.projects[task.project]
    writable = [workdir, *plan.sandbox_writable]
    readonly = [co.root / name for name in PROTECTED]
    if workdir != project.root and project.isolation:  # a worktree commits into the project
        git_dir = project.root / ".git"
        writable.append(git_dir)
        readonly += [git_dir / name for name in _GIT_CODE]
        with contextlib.suppress(OSError):  # so that none can be created where git looks
            (git_dir / "hooks").mkdir(exist_ok=True)
    others = _other_projects(co, workdir, plan.sandbox_writable)
    _hold_places(writable, [co.root / "templates", *others])
    state = agents.state_paths(task.agent) if agent and task.command is None else ()
    return Sandbox(
        writable=(*map(str, writable), *state),
        readonly=tuple(map(str, [*readonly, *others])),
        visible=(str(co.root), "~"),  # under the private /tmp too (a checkout in /tmp)
    )


def _hold_places(writable: list[Path], folders: list[Path]) -> None:
    """Make the missing read-only folders that lie in a writable one (a project at `.`):
    else the agent could create them there, e.g. a `templates/task.md.j2` that orchlib
    would render, or the folder of a project that has not run yet."""
    for folder in folders:
        if not folder.exists() and any(folder.is_relative_to(w) for w in writable):
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True)


def _other_projects(co: Checkout, workdir: Path, allowed: tuple[Path, ...]) -> list[Path]:
    """Every project folder of the checkout's plans but the attempt's own (and those the
    plan made writable on purpose)."""
    roots = {p.root for plan in co.plans.values() for p in plan.projects.values()}
    return sorted(r for r in roots - {workdir} if not any(r.is_relative_to(a) for a in allowed))
