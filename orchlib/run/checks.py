"""The checks of a reported DONE: declared outputs exist and `verify` exits 0.

`verify` runs like an agent: through the run's executor, in its own session, its output in
`logs/<task>.<n>.verify.log`. While it runs its executor ref is in
`logs/<task>.<n>.verify.pid`, so a run that adopts the attempt after a crash first stops
the verify the crashed run left.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchlib import agents
from orchlib.agents.streams import PlainText
from orchlib.executors.base import Executor, Handle, Job, legacy_ref
from orchlib.fsutil import atomic_write
from orchlib.plan import Limits, Plan, Project, Task
from orchlib.run import sandboxing
from orchlib.run.attempt import Follow, Result, follow
from orchlib.run.context import RunContext
from orchlib.state import fingerprints

FEEDBACK_CHARS = 4000


@dataclass(frozen=True)
class Checked:
    """`problem` is None when every check passed, else the feedback for the next attempt."""

    problem: str | None
    verify: dict[str, Any] = field(default_factory=dict)
    merge: dict[str, str] = field(default_factory=dict)  # isolated: the branch and merge commit
    review: dict[str, Any] = field(default_factory=dict)  # the reviewer's approval (DESIGN §16)
    final: bool = False  # the problem fails the task, no retry (a review without a verdict)
    over_budget: bool = False  # a reviewer stopped by a spent budget (DESIGN §15)


def run_checks(
    ctx: RunContext, plan: Plan, task: Task, attempt: int, where: Project, host: str = ""
) -> Checked:
    """Check the DONE of `attempt` in `where` (the project, or the task's worktree):
    outputs first (cheap), then verify (on `host`, where the attempt ran)."""
    missing = fingerprints.missing_outputs(where, task)
    if missing:
        return Checked(f"declared output {missing[0]!r} does not exist in {where.root}")
    if task.verify is None:
        return Checked(None)
    return _verify(ctx, plan, task, attempt, where.root, host)


def _verify(
    ctx: RunContext, plan: Plan, task: Task, attempt: int, root: Path, host: str
) -> Checked:
    argv = task.verify
    assert argv is not None
    log = ctx.co.log_path(plan.plan_id, task.id, attempt, "verify.log")
    pid_file = log.with_suffix(".pid")
    stop_leftover(ctx.executor, pid_file)
    log.unlink(missing_ok=True)  # the log holds this check only, for the feedback
    box = sandboxing.box(ctx, plan, task, root, agent=False)
    job = Job(argv, root, _env(plan, task), log, f"{plan.plan_id}:{task.id}", near=host,
              policy=task.environment, logins=agents.logins(None), sandbox=box)  # fmt: skip
    proc = _start(ctx.executor, job, pid_file)
    limits = Limits(retries=0, timeout=task.limits.timeout, stall_timeout=None)
    watch = Follow(proc, log, "", limits, PlainText(), ctx.interrupt.event, _no_progress,
                   shell=True)  # fmt: skip
    try:
        outcome = follow(watch)
    finally:
        pid_file.unlink(missing_ok=True)
    info = {"argv": list(argv), "exitCode": outcome.exit_code}
    if outcome.result is Result.DONE:
        return Checked(None, info)
    why, printed = outcome.text.split(":")[0], tail(log).rstrip()
    if not printed:  # a colon followed by nothing reads as a cut message
        return Checked(f"verify failed ({why}) and printed nothing", info)
    return Checked(f"verify failed ({why}):\n{printed}", info)


def _env(plan: Plan, task: Task) -> dict[str, str]:
    """The agent's `env` (a verify tests what the agent made, as the agent ran it) and ours."""
    return {**task.agent.env, "ORCH_PLAN_ID": plan.plan_id, "ORCH_TASK_ID": task.id}


def _start(executor: Executor, job: Job, pid_file: Path) -> Handle:
    def note_ref(handle: Handle) -> None:
        atomic_write(pid_file, json.dumps(handle.ref) + "\n")

    return executor.start(job, note_ref)


def _no_progress(percent: int, text: str) -> None:
    """verify has no PROGRESS markers to report."""


def stop_leftover(executor: Executor, pid_file: Path) -> None:
    """Terminate the verify a killed run left running (its pid file holds its ref)."""
    try:
        text = pid_file.read_text()
    except OSError:
        return
    handle = executor.adopt(_ref(text))
    if handle is not None:
        handle.terminate()
    pid_file.unlink(missing_ok=True)


def _ref(text: str) -> dict[str, object]:
    """The ref in a verify pid file: JSON, or `pid start` as written before executors."""
    with contextlib.suppress(ValueError):
        found = json.loads(text)
        if isinstance(found, dict):
            return found
    with contextlib.suppress(ValueError):
        pid, started = text.split()
        return legacy_ref(int(pid), started, "", "")
    return {}


def tail(path: Path, limit: int = FEEDBACK_CHARS) -> str:
    """The end of a log, as feedback for the next prompt."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
