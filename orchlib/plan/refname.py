"""Git's rules for a branch name (`git check-ref-format --branch`), as a pure function.

A plan is checked before anything runs and without starting git, so the rules are written
here; tests/test_refname.py holds them against the real `git check-ref-format` on a table
of names.
"""

from __future__ import annotations

_BAD_CHARS = frozenset(" ~^:?*[\\")


def task_branch(plan_id: str, task_id: str) -> str:
    """The branch of a task's worktree under `isolation: worktree` (DESIGN §10)."""
    return f"orch/{plan_id}/{task_id}"


def branch_problem(name: str) -> str | None:
    """Why git refuses `name` as a branch name, or None when it takes it."""
    if name.startswith("-"):
        return "a branch name cannot begin with '-'"
    if name == "HEAD":
        return "'HEAD' cannot be a branch name"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "a branch name has no empty part between slashes"
    return _char_problem(name) or next(filter(None, map(_part_problem, name.split("/"))), None)


def _char_problem(name: str) -> str | None:
    for char in name:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return "a branch name cannot hold control characters"
        if char in _BAD_CHARS:
            return f"a branch name cannot hold {char!r}"
    if ".." in name:
        return "a branch name cannot hold '..'"
    if "@{" in name:
        return "a branch name cannot hold '@{'"
    if name.endswith("."):
        return "a branch name cannot end with '.'"
    return None


def _part_problem(part: str) -> str | None:
    if part.startswith("."):
        return "no part of a branch name may begin with '.'"
    if part.endswith(".lock"):
        return "no part of a branch name may end with '.lock'"
    return None
