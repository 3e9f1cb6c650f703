"""git, started like every other subprocess (through `LocalExecutor`), for `isolation: worktree`.

Every call is an argv list: plan text (a task title in a commit message) is only ever one
argument. Output goes to a log file (an attempt's `<task>.<n>.git.log`, so the git side of
an attempt can be read beside its transcript) and is read back from where the log stood.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchlib.executors.base import Job
from orchlib.executors.local import LocalExecutor
from orchlib.fsutil import ensure_dir, named, open_private
from orchlib.plan.environment import EnvPolicy

# No prompt, no editor: git never waits for a person in the middle of a run. Automatic gc
# is left to the user's own git commands (a background gc would hold locks during a merge).
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true", "GIT_MERGE_AUTOEDIT": "no"}
_OPTIONS = ("-c", "gc.auto=0", "-c", "maintenance.auto=false")
# The commit identity on a machine where git has none (no user.name / user.email anywhere).
FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "orchlib",
    "GIT_AUTHOR_EMAIL": "orchlib@localhost",
    "GIT_COMMITTER_NAME": "orchlib",
    "GIT_COMMITTER_EMAIL": "orchlib@localhost",
}


@dataclass(frozen=True)
class GitResult:
    """A finished git command: its exit code and what it printed (stdout and stderr)."""

    code: int
    output: str

    @property
    def ok(self) -> bool:
        """True when git exited 0."""
        return self.code == 0

    def tail(self, lines: int = 8) -> str:
        """The last lines of the output, for a message."""
        return "\n".join(self.output.strip().splitlines()[-lines:])


def git(
    args: Sequence[str], cwd: Path, log: Path, env: Mapping[str, str] | None = None
) -> GitResult:
    """Run `git ARGS` in `cwd` to its end, its output appended to `log`."""
    ensure_dir(log.parent)
    with (
        named(log),
        os.fdopen(open_private(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab") as fh,
    ):
        fh.write(f"$ git {' '.join(args)}  (in {cwd})\n".encode("utf-8", "replace"))
        start = fh.tell()
    # The orchestrator's own repositories: git always runs on this machine.
    # The default `environment` policy: a project's git hooks are project code, and see no
    # secret an agent would not (DESIGN §13).
    job = Job(("git", *_OPTIONS, *args), cwd, {**_ENV, **(env or {})}, log, policy=EnvPolicy())
    code = LocalExecutor().run(job, None)
    with log.open("rb") as fh:
        fh.seek(start)
        output = fh.read().decode("utf-8", "replace")
    return GitResult(code, output)


class Repos:
    """The run's view of the project repositories: one lock and one commit identity each.

    The lock makes a project's merges (and the worktree additions and removals around them)
    happen one at a time; an attempt's own commits in its worktree need no lock.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Path, threading.Lock] = {}
        self._identity: dict[Path, dict[str, str]] = {}

    def lock(self, root: Path) -> threading.Lock:
        """The lock of the repository at `root`."""
        with self._guard:
            return self._locks.setdefault(root, threading.Lock())

    def identity(self, root: Path, log: Path) -> dict[str, str]:
        """Environment for commits: {} when git knows who commits here, else orchlib's."""
        with self._guard:
            known = self._identity.get(root)
        if known is None:
            # `git var` fails exactly when a commit would fail for want of an identity.
            known = {} if git(["var", "GIT_COMMITTER_IDENT"], root, log).ok else FALLBACK_IDENTITY
            with self._guard:
                self._identity[root] = known
        return known
