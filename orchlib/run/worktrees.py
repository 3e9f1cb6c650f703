"""`isolation: worktree` (DESIGN §10): each attempt in its own git worktree, merged when done.

An attempt of task `t` of plan `p` works in `.orch/worktrees/p/t` on the branch `orch/p/t`,
made from the project's HEAD (which holds every finished dependency's merged work); a task
whose attempt waited (question, usage limit, interrupt) continues in the one it had. After
DONE and the checks, whatever the agent left uncommitted is committed and the branch is
merged into the project's branch with `--no-ff`, one merge at a time per project. Then the
dispatcher writes the stamp and the worktree and branch are removed.

Crash safety comes from that order. Killed before the merge: the next run adopts the attempt
and merges. Killed between merge and stamp: the next merge finds nothing new ("Already up to
date"), so the work lands once. Killed between stamp and removal: `sweep` removes the
worktrees of stamped tasks at the start of the next run.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchlib.errors import LockHeld
from orchlib.fsutil import ensure_dir
from orchlib.plan.refname import task_branch
from orchlib.records import replace
from orchlib.run.git import GitResult, Repos, git
from orchlib.state import fingerprints
from orchlib.state.runlock import run_lock

if TYPE_CHECKING:
    from orchlib.checkout import Checkout
    from orchlib.plan import Plan, Task


@dataclass(frozen=True)
class Landed:
    """The end of an attempt's git side: `problem` None when merged (`merge` says how)."""

    problem: str | None
    merge: dict[str, str] = field(default_factory=dict)


class TaskTree:
    """The worktree and branch of one task of an isolated project.

    Git's output goes to the attempt's `<task>.<n>.git.log`, beside its transcript. `repos`
    is the run's; a command outside a run (it holds the run lock) passes a `Repos()` of its own.
    """

    def __init__(self, co: Checkout, plan: Plan, task: Task, repos: Repos, racer: int = 0) -> None:
        self.co, self.plan_id, self.task = co, plan.plan_id, task
        project = plan.projects[task.project]
        self.repo = project.root
        # A racer (DESIGN §16) has its own: `<taskId>+<k>` ('+' is in no task id, and a
        # branch `orch/p/t1/2` could not sit beside the task's own `orch/p/t1`).
        name = racer_name(task.id, racer) if racer else task.id
        self.path = co.layout.worktree(plan.plan_id, name)
        self.workspace = replace(project, root=self.path)  # where its attempts work
        self.branch = task_branch(plan.plan_id, name)
        self.repos = repos

    def log(self, attempt: int) -> Path:
        """The git log of one attempt."""
        return self.co.log_path(self.plan_id, self.task.id, attempt, "git.log")

    def prepare(self, attempt: int, keep: bool = False) -> str | None:
        """The attempt's worktree; None when it is ready.

        `keep`: the task waited (DESIGN §10), so its worktree and branch stay as they are and
        the attempt continues in them. Else (or when the kept one is no longer usable) a
        fresh worktree from the project's HEAD replaces any earlier one.
        """
        log = self.log(attempt)
        if keep and self._usable(log):
            return None
        with self.repos.lock(self.repo):
            self._drop(log)
            ensure_dir(self.path.parent)  # .orch/worktrees/<plan>: 0700, as all of .orch
            git(["worktree", "prune"], self.repo, log)  # e.g. a worktree deleted by hand
            added = git(["worktree", "add", "-q", "-B", self.branch, str(self.path), "HEAD"],
                        self.repo, log)  # fmt: skip
        if added.ok:
            return None
        return f"cannot make the worktree {self.path} from the project's HEAD:\n{added.tail()}"

    def land(self, attempt: int, summary: str) -> Landed:
        """Commit what the agent left, then merge the branch into the project's branch."""
        log, task = self.log(attempt), self.task
        message = f"{task.title}\n\n{self.plan_id}:{task.id} (attempt {attempt}): {summary}\n"
        found = fingerprints.expand(self.workspace, task.outputs).values()
        outputs = [path for paths in found for path in paths]
        identity = self.repos.identity(self.repo, log)
        problem = self._commit(log, message, outputs, identity)
        # The worktree's HEAD, not the branch: an agent may have switched branches there.
        tip = git(["rev-parse", "HEAD"], self.path, log)
        if problem is not None or not tip.ok:
            return Landed(problem or f"cannot read the worktree's HEAD:\n{tip.tail()}")
        with self.repos.lock(self.repo):
            problem = self._clear_interrupted_merge(log)
            if problem is not None:
                return Landed(problem)
            says = f"Merge branch '{self.branch}'\n\n{self.plan_id}:{task.id}: {task.title}\n"
            merged = git(["merge", "--no-ff", "--no-verify", "-m", says, tip.output.strip()],
                         self.repo, log, identity)  # fmt: skip
            if not merged.ok:
                return Landed(self._failed_merge(log, merged))
            head = git(["rev-parse", "HEAD"], self.repo, log).output.strip()
        return Landed(None, {"branch": self.branch, "commit": head})

    def remove(self, attempt: int) -> None:
        """Remove the branch, then the worktree (the work is merged).

        In that order a killed run leaves at worst the worktree, which `sweep` finds.
        `update-ref` deletes a branch even while a worktree has it checked out.
        """
        log = self.log(attempt)
        with self.repos.lock(self.repo):
            git(["update-ref", "-d", f"refs/heads/{self.branch}"], self.repo, log)
            self._drop(log)

    def _usable(self, log: Path) -> bool:
        """Whether the worktree is still a work tree of the project's repository, on a commit."""
        if not self.path.is_dir():
            return False
        top = git(["rev-parse", "--show-toplevel"], self.path, log)
        if not top.ok or Path(top.output.strip()).resolve() != self.path.resolve():
            return False
        return git(["rev-parse", "-q", "--verify", "HEAD"], self.path, log).ok

    def _drop(self, log: Path) -> None:
        """Remove the worktree, whatever state an earlier attempt or a crash left it in."""
        if not self.path.exists():
            return
        if not git(["worktree", "remove", "--force", str(self.path)], self.repo, log).ok:
            shutil.rmtree(self.path, ignore_errors=True)  # not (or no longer) a worktree
            git(["worktree", "prune"], self.repo, log)

    def _commit(
        self, log: Path, message: str, outputs: list[str], ident: dict[str, str]
    ) -> str | None:
        """Commit the worktree's changes. Declared outputs are added even if git ignores them:
        the up-to-date rule checks them in the project folder, where only commits arrive."""
        git(["add", "-A"], self.path, log)
        if outputs:
            git(["add", "-f", "--", *outputs], self.path, log)
        if git(["diff", "--cached", "--quiet"], self.path, log).ok:
            return None  # nothing left uncommitted
        done = git(["commit", "-q", "--no-verify", "-m", message], self.path, log, ident)
        return None if done.ok else f"cannot commit the work in {self.path}:\n{done.tail()}"

    def _clear_interrupted_merge(self, log: Path) -> str | None:
        """Abort a merge of ours that a killed run left half done; refuse to touch another."""
        pending = git(["rev-parse", "-q", "--verify", "MERGE_HEAD"], self.repo, log)
        if not pending.ok:
            return None
        ours = git(["for-each-ref", "--points-at", pending.output.strip(), "refs/heads/orch"],
                   self.repo, log)  # fmt: skip
        if ours.output.strip():
            git(["merge", "--abort"], self.repo, log)
            return None
        return f"the project {self.repo} is in the middle of a merge; finish or abort it first"

    def _failed_merge(self, log: Path, merged: GitResult) -> str:
        """Abort the merge; the feedback names the conflicting files."""
        listed = git(["diff", "--name-only", "--diff-filter=U"], self.repo, log)
        conflicts = [line for line in listed.output.splitlines() if line.strip()]
        if git(["rev-parse", "-q", "--verify", "MERGE_HEAD"], self.repo, log).ok:
            git(["merge", "--abort"], self.repo, log)
        if conflicts:
            return (
                f"merging {self.branch} into the project's branch conflicted in: "
                f"{', '.join(conflicts)}. The merge was aborted; the next attempt starts from "
                "the project's current HEAD, which holds the work merged meanwhile"
            )
        return f"merging {self.branch} into the project's branch failed:\n{merged.tail()}"


def racer_name(task_id: str, racer: int) -> str:
    """The worktree folder and branch name of a task's racer `racer` (1, 2, ...)."""
    return f"{task_id}+{racer}"


def sweep(co: Checkout, repos: Repos) -> None:
    """Remove the worktrees (and branches) of stamped tasks that a killed run left behind."""
    folder = co.layout.worktrees
    if not folder.is_dir():  # the common case costs one stat
        return
    for plan in co.plans.values():
        plan_folder = folder / plan.plan_id
        if not plan_folder.is_dir():
            continue
        for entry in sorted(plan_folder.iterdir()):
            task_id, _, racer = entry.name.partition("+")  # a racer's leftover too
            task = plan.tasks.get(task_id)
            stamp = co.stamp(plan.plan_id, task_id) if task is not None else None
            if task is not None and stamp is not None:
                number = int(racer) if racer.isdigit() else 0
                TaskTree(co, plan, task, repos, number).remove(stamp.attempt_number)
    # Empty folders go (no attempt is being prepared: the run lock is held), so that a
    # no-op run after a finished plan does not even look here again.
    for empty in (*folder.iterdir(), folder):
        with contextlib.suppress(OSError):
            empty.rmdir()


def sweep_unlocked(co: Checkout) -> None:
    """`sweep` for a run with nothing to do: only when no other run holds the checkout."""
    if not (co.layout.worktrees).is_dir():
        return
    with contextlib.suppress(LockHeld), run_lock(co.orch_dir):
        sweep(co, Repos())


def _not_a_repository(root: Path, log: Path) -> str:
    top = git(["rev-parse", "--show-toplevel"], root, log)
    if top.ok:  # a sub-folder of another repository
        return (f"is inside the git repository {top.output.strip()} but not its top folder; "
                "isolation: worktree needs the folder to be a repository of its own: set path "
                "to that folder, or run `git init` here and commit its files")  # fmt: skip
    return "is not a git repository, and isolation: worktree needs one: run `git init` " \
           "there and commit its files"  # fmt: skip


def ensure_repo(root: Path, log: Path, repos: Repos) -> str | None:
    """Make a missing or empty project folder a repository with a first commit.

    Returns what is wrong with the folder, or None when it is ready for worktrees.
    """
    if (root / ".git").exists():
        if git(["rev-parse", "-q", "--verify", "HEAD"], root, log).ok:
            return None
        if any(entry.name != ".git" for entry in root.iterdir()):
            return "is a git repository without a commit yet; commit its files first " \
                   "(git add -A && git commit)"  # fmt: skip
    elif any(root.iterdir()):
        return _not_a_repository(root, log)
    elif not git(["init", "-q"], root, log).ok:
        return f"git init failed (see {log})"
    first = git(["commit", "-q", "--allow-empty", "--no-verify", "-m", "Start (orchlib)"],
                root, log, repos.identity(root, log))  # fmt: skip
    return None if first.ok else f"cannot make a first commit:\n{first.tail()}"
