"""What an attempt changed, for its reviewer (DESIGN §16): `git diff` from the commit the
attempt started at (untracked files included) in a git repository, else the files whose
size or mtime moved since a snapshot taken at its start. Bounded: a reviewer reads a
prompt, not a repository."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchlib.layout import ORCH
from orchlib.run.git import git

MAX_CHARS = 60_000  # of changes shown to a reviewer
MAX_FILE_CHARS = 8_000  # of one new or changed file shown whole
MAX_FILES = 20_000  # a snapshot stops here: a huge folder is not walked whole
SKIPPED = frozenset({".git", ORCH, "node_modules", "__pycache__", ".venv"})


@dataclass(frozen=True)
class Baseline:
    """Where an attempt started: a git commit (`git`), or a snapshot of its files."""

    git: bool
    commit: str = ""  # "" in a repository without a commit yet
    files: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # path: (size, mtime_ns)
    # No snapshot (a killed run took it along): files modified since this time (ns) changed.
    since_ns: int = 0

    def to_json(self) -> dict[str, object]:
        """What survives a killed run: the commit, or the time the attempt started."""
        return {"git": self.git, "commit": self.commit, "sinceNs": self.since_ns}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Baseline:
        """The baseline `to_json` wrote (a damaged file: no snapshot, nothing counted)."""
        commit, since = data.get("commit", ""), data.get("sinceNs", 0)
        return cls(data.get("git") is True, commit if isinstance(commit, str) else "",
                   since_ns=since if isinstance(since, int) else 0)  # fmt: skip


def baseline(root: Path, log: Path) -> Baseline:
    """The state of `root` as an attempt starts there."""
    if git(["rev-parse", "--is-inside-work-tree"], root, log).output.strip() == "true":
        head = git(["rev-parse", "--verify", "-q", "HEAD"], root, log)
        return Baseline(True, head.output.strip() if head.ok else "")
    return Baseline(False, files=_snapshot(root), since_ns=time.time_ns())


def describe(root: Path, base: Baseline, log: Path) -> str:
    """The attempt's changes as text for the review prompt, at most MAX_CHARS."""
    text = _git_changes(root, base, log) if base.git else _file_changes(root, base)
    return _bounded(text.strip() or "(no changes found)", MAX_CHARS)


def _git_changes(root: Path, base: Baseline, log: Path) -> str:
    against = base.commit or "--cached"  # no commit yet: what is staged is new
    diff = git(["diff", "--no-color", "--no-ext-diff", against, "--", "."], root, log)
    new = git(["ls-files", "--others", "--exclude-standard", "-z", "--", "."], root, log)
    parts = [diff.output if diff.ok else f"(git diff failed: {diff.tail()})"]
    for name in filter(None, new.output.split("\0") if new.ok else []):
        parts.append(_new_file(root / name, name))
    return "\n".join(parts)


def _new_file(path: Path, name: str) -> str:
    return f"new file (untracked): {name}\n{_content(path)}"


def _content(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_CHARS + 1)
    except OSError as exc:
        return f"(unreadable: {exc.strerror})"
    if b"\0" in data:
        return "(binary)"
    return _bounded(data.decode("utf-8", "replace"), MAX_FILE_CHARS)


def _file_changes(root: Path, base: Baseline) -> str:
    now = _snapshot(root)
    parts: list[str] = []
    if not base.files:  # recovered: what was modified since the attempt began
        recent = sorted(k for k, (_, mtime) in now.items() if mtime >= base.since_ns)
        return "\n\n".join(f"changed file: {name}\n{_content(root / name)}" for name in recent)
    for name in sorted(now.keys() - base.files.keys()):
        parts.append(f"new file: {name}\n{_content(root / name)}")
    for name in sorted(k for k in now.keys() & base.files.keys() if now[k] != base.files[k]):
        parts.append(f"changed file: {name}\n{_content(root / name)}")
    parts.extend(f"deleted file: {name}" for name in sorted(base.files.keys() - now.keys()))
    return "\n\n".join(parts)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
            if len(found) >= MAX_FILES:
                return found
    return found


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n... ({len(text) - limit} more characters not shown)"
