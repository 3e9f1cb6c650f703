"""A race's winner, recorded before its merge, so that a killed run never merges twice.

A plain isolated task survives a kill between merge and stamp because the next run adopts
its attempt and merges again, finding nothing new. A race is not adopted racer by racer: it
is run again, and a second race would merge the task's work a second time. So the winner
(racer, branch, attempt, checks) is written to `.orch/<planId>/logs/<taskId>.race.json`
before the merge; the next run that finds it, with the winner's branch already in the
project's HEAD, writes the stamp from it instead of racing. The stamp, then the removal of
the winner's worktree and branch, then the record's: each step is safe to repeat.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchlib.fsutil import atomic_write
from orchlib.run.attempt import Outcome, Result
from orchlib.run.checks import Checked
from orchlib.run.git import git
from orchlib.run.taskrun import Attempted, TaskRun
from orchlib.run.worktrees import TaskTree


@dataclass(frozen=True)
class Won:
    """What the stamp of a landed race needs, as recorded before the merge."""

    racer: int
    racers: int
    agent: str
    branch: str
    spec_hash: str
    attempt: int
    terminal_id: str
    summary: str
    session_id: str | None
    usage: dict[str, Any]
    verify: dict[str, Any]
    review: dict[str, Any]


def record_path(task_run: TaskRun) -> Path:
    """`.orch/<planId>/logs/<taskId>.race.json`."""
    return task_run.co.layout.race_record(task_run.plan.plan_id, task_run.task.id)


def record(task_run: TaskRun, won: Won) -> None:
    """Write the winner down before its branch is merged."""
    atomic_write(record_path(task_run), json.dumps(won.__dict__, sort_keys=True) + "\n")


def forget(task_run: TaskRun) -> None:
    """The stamp is written (or the race runs again): the record has served."""
    record_path(task_run).unlink(missing_ok=True)


def landed(task_run: TaskRun) -> tuple[Attempted, Checked] | None:
    """The winner of a killed run's race whose merge is already in the project's HEAD
    (then its stamp is to be written, without racing again), or None."""
    path = record_path(task_run)
    won = _read(path)
    if won is None:
        return None
    tree = TaskTree(task_run.co, task_run.plan, task_run.task, task_run.ctx.repos, won.racer)
    merge = _merged(tree, won) if won.spec_hash == spec_hash(task_run) else None
    if merge is None:  # killed before the merge (or the task changed since): race again
        forget(task_run)
        return None
    task_run.raced = {"winner": won.agent, "racers": won.racers}
    for k in range(1, won.racers + 1):  # the losers' worktrees, should a kill have left any
        if k != won.racer:
            TaskTree(task_run.co, task_run.plan, task_run.task, task_run.ctx.repos, k).remove(
                won.attempt
            )
    task_run.tree = tree  # removed after the stamp, as a plain isolated task's is
    outcome = Outcome(Result.DONE, won.summary, session_id=won.session_id, usage=won.usage)
    done = Attempted(won.attempt, won.terminal_id, outcome, time.monotonic())
    return done, Checked(None, verify=won.verify, merge=merge, review=won.review)


def spec_hash(task_run: TaskRun) -> str:
    """The task's spec hash, as its stamp records it."""
    return task_run.co.specs.of(task_run.plan, task_run.task)


def _read(path: Path) -> Won | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Won(**data)
    except (OSError, ValueError, TypeError):
        return None


def _merged(tree: TaskTree, won: Won) -> dict[str, str] | None:
    """The branch and merge commit, when the winner's branch is already merged into HEAD."""
    log = tree.log(won.attempt)
    ref = f"refs/heads/{won.branch}"
    tip = git(["rev-parse", "-q", "--verify", ref], tree.repo, log)
    if not tip.ok:
        return None
    sha = tip.output.strip()
    if not git(["merge-base", "--is-ancestor", sha, "HEAD"], tree.repo, log).ok:
        return None
    # The oldest merge commit on HEAD's first-parent line that brought the tip in.
    found = git(["rev-list", "--merges", "--first-parent", "--ancestry-path", "--reverse",
                 f"{sha}..HEAD"], tree.repo, log)  # fmt: skip
    lines = found.output.split() if found.ok else []
    if not lines:
        return None
    return {"branch": won.branch, "commit": lines[0]}
