"""What a task's files look like: its declared outputs matched, its inputs fingerprinted."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchlib.plan import Project, Task
from orchlib.state import globs


def expand(
    project: Project, patterns: tuple[str, ...], inside: bool = False
) -> dict[str, list[str]]:
    """Each glob (relative to the project) mapped to the sorted relative paths it matches
    (a wildcard never enters a symlinked folder: `globs`); with `inside`, only files that
    stay in the project once symlinks are resolved."""
    if not patterns:
        return {}
    root = str(project.root)
    real_root = os.path.realpath(root) if inside else ""
    found: dict[str, list[str]] = {}
    for pattern in patterns:
        hits = globs.matches(root, pattern)
        if inside:
            hits = [h for h in hits if _within(os.path.realpath(os.path.join(root, h)), real_root)]
        found[pattern] = hits
    return found


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def missing_outputs(project: Project, task: Task) -> list[str]:
    """Declared outputs (globs) that match nothing in the project: a match reached through
    a symlink to a file outside it does not count (as a project path outside is refused)."""
    return [p for p, hits in expand(project, task.outputs, inside=True).items() if not hits]


def fingerprint_inputs(project: Project, task: Task) -> dict[str, list[Any]]:
    """Size, mtime and sha256 of every input file, keyed by path relative to the project."""
    prints: dict[str, list[Any]] = {}
    for hits in expand(project, task.inputs).values():
        for rel in hits:
            full = project.root / rel
            if full.is_file():
                st = full.stat()
                prints[rel] = [st.st_size, st.st_mtime_ns, _sha256(full)]
    return prints


def changed_input(project: Project, task: Task, recorded: Mapping[str, Any]) -> str | None:
    """The first input that differs from the stamp's record, or None (cheap stat first)."""
    current = {rel for hits in expand(project, task.inputs).values() for rel in hits}
    current = {rel for rel in current if (project.root / rel).is_file()}
    for rel in sorted(current ^ set(recorded)):
        return rel
    for rel in sorted(current):
        size, mtime_ns, digest = recorded[rel]
        st = (project.root / rel).stat()
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) and _sha256(
            project.root / rel
        ) != digest:
            return rel
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
