"""Globs of `outputs` and `inputs`, matched as `glob.glob(..., recursive=True)` does, except
that a wildcard never enters a symlinked folder (DESIGN §13).

`glob` follows every symlink to a folder while it expands `**`, so two links to `.` in a
project make `doit` and `doit status` walk an exponential tree. Here a wildcard segment
(`*`, `**`, `[ab]`...) may match a symlink, but the walk goes on only into real folders; a
literal segment (`dist/app.js`, `node_modules/x`) is a path the plan names and is taken as
it is. Hidden names are matched only by a segment that starts with a dot, as with glob.
"""

from __future__ import annotations

import fnmatch
import glob
import os

RECURSIVE = "**"


def matches(root: str, pattern: str) -> list[str]:
    """The sorted paths (relative to `root`) that `pattern` matches."""
    dir_only = pattern.endswith("/")
    parts = [part for part in pattern.split("/") if part]
    found: set[str] = set()
    _match(root, "", parts, dir_only, found)
    return sorted(os.path.normpath(path) for path in found)


def _match(root: str, rel: str, parts: list[str], dir_only: bool, found: set[str]) -> None:
    if not parts:
        full = os.path.join(root, rel)
        if os.path.lexists(full) and (not dir_only or os.path.isdir(full)):
            found.add(rel or ".")
        return
    part, rest = parts[0], parts[1:]
    if not glob.has_magic(part):
        _match(root, os.path.join(rel, part), rest, dir_only, found)
    elif part == RECURSIVE:
        _recursive(root, rel, rest, dir_only, found)
    else:
        for name, real_dir in _entries(os.path.join(root, rel), part):
            if rest and not real_dir:
                continue  # never into a symlinked folder (nor into a file)
            _match(root, os.path.join(rel, name), rest, dir_only, found)


def _recursive(root: str, rel: str, rest: list[str], dir_only: bool, found: set[str]) -> None:
    """`**`: `rel` itself and every real folder below it (no symlinked one, no hidden one),
    each followed by the rest of the pattern; at the end, everything below too."""
    stack = [rel]
    while stack:
        here = stack.pop()
        _match(root, here, rest, dir_only, found)
        for name, real_dir in _entries(os.path.join(root, here), "*"):
            if not rest and not dir_only:
                found.add(os.path.join(here, name))
            if real_dir:
                stack.append(os.path.join(here, name))


def _entries(folder: str, part: str) -> list[tuple[str, bool]]:
    """Names in `folder` that `part` matches, each with whether it is a real folder."""
    try:
        with os.scandir(folder or ".") as listing:
            entries = [(e.name, _real_dir(e)) for e in listing]
    except OSError:  # missing, not a folder, unreadable: matches nothing, as with glob
        return []
    if not part.startswith("."):
        entries = [(name, kind) for name, kind in entries if not name.startswith(".")]
    names = set(fnmatch.filter([name for name, _ in entries], part))
    return [(name, kind) for name, kind in entries if name in names]


def _real_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
