"""The runtime folder `.orch/`: checked before anything is written there.

Damaged runtime files must cost one clear line, never a traceback on every run and never
lost work. Stamps are the source of truth for "done" (DESIGN §3), so doit's dependency DB
holds nothing that cannot be rebuilt: one sqlite cannot read is moved aside (kept for a
post-mortem) and doit makes a fresh one. Anything else in the way (a folder where a file
belongs, a file where a folder belongs, a read-only folder) is named with what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from orchlib.errors import ConfigError
from orchlib.fsutil import PRIVATE_DIR, PRIVATE_FILE, atomic_write, open_private
from orchlib.layout import DB_NAME, ORCH, PLAN_FILES, PLAN_FOLDERS, of_orch

GITIGNORE = ".gitignore"
RACY_NS = 1_000_000_000
# The files sqlite keeps beside a database; they go aside with it.
_DB_SIDES = ("-journal", "-wal", "-shm")


def prepare(root: Path) -> None:
    """Make `.orch/` (private, ignored by git) and set a damaged doit DB aside; ConfigError
    when `.orch` is unusable."""
    orch = root / ORCH
    try:
        os.mkdir(orch, PRIVATE_DIR)
    except FileExistsError:
        if not orch.is_dir():
            raise ConfigError(_not_a_folder(ORCH)) from None
    except OSError as exc:
        raise ConfigError(f"orchlib: cannot create {ORCH}: {exc.strerror}") from None
    make_private(orch)
    db = orch / DB_NAME
    if not os.path.lexists(db):
        if not os.access(orch, os.W_OK):
            raise ConfigError(_read_only(ORCH))  # doit could not even create its DB
        with contextlib.suppress(OSError):  # sqlite keeps this mode (and gives it its journal)
            os.close(open_private(db, os.O_WRONLY | os.O_CREAT))
    check_db(db, root)


def check_db(db: Path, root: Path) -> None:
    """Set a damaged DB aside — checked only when it changed since its last clean check.

    A no-op run does not write doit's DB, so its identity (inode, size, mtime, ctime, and
    its sqlite side files) is kept after a check that passed; while it is the same, sqlite
    need not read the whole file again (its quick_check is linear in the DB's size). Any
    write changes the ctime, which no program can set back. A DB changed less than a
    second ago is checked again next time (a coarse clock could hide a second write)."""
    marker = of_orch(db.parent).db_checked
    seen = _db_identity(db)
    try:
        if marker.read_text(encoding="utf-8") == seen:
            return
    except (OSError, UnicodeDecodeError):
        pass
    if set_aside_damaged_db(db, root) is not None:
        return
    with contextlib.suppress(OSError, ValueError):
        if time.time_ns() - os.stat(db).st_ctime_ns > RACY_NS and _db_identity(db) == seen:
            atomic_write(marker, seen, durable=False)


def _db_identity(db: Path) -> str:
    parts = []
    for path in (str(db), *(f"{db}{side}" for side in _DB_SIDES)):
        try:
            st = os.lstat(path)
            parts.append(f"{st.st_mode}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
        except OSError:
            parts.append("-")
    return ";".join(parts)


def make_private(orch: Path) -> None:
    """`.orch/` the user's alone: `0700`, and `.gitignore` of `*` so no `git add -A` commits
    it. A checkout made by an older version (or a wide umask) is fixed up once, in one walk;
    otherwise this is two stats. A read-only `.orch` is left as it is."""
    try:
        wide = os.stat(orch).st_mode & 0o077
        if not wide and os.path.lexists(orch / GITIGNORE):
            return
        if wide:
            _chmod_tree(orch)
        atomic_write(orch / GITIGNORE, "*\n", durable=False)
    except OSError:
        return


def _chmod_tree(orch: Path) -> None:
    """Folders `0700`, files `0600`, under `.orch/` — but not inside a task's git worktree,
    whose files are the project's own (their modes are the project's business)."""
    worktrees = of_orch(orch).worktrees
    for folder, dirs, files in os.walk(orch):
        here = Path(folder)
        with contextlib.suppress(OSError):
            os.chmod(here, PRIVATE_DIR)
        for name in files:
            if not os.path.islink(here / name):  # a link's target is not orchlib's to change
                with contextlib.suppress(OSError):
                    os.chmod(here / name, PRIVATE_FILE)
        if here.parent == worktrees:  # .orch/worktrees/<plan>: its tasks' worktrees inside
            for name in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(here / name, PRIVATE_DIR)
            dirs.clear()


def set_aside_damaged_db(path: Path, root: Path) -> Path | None:
    """Move doit's DB aside when sqlite cannot read it (said in one line); the new name."""
    problem = _db_problem(path)
    if problem is None:
        return None
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        raise ConfigError(
            f"orchlib: {_rel(path, root)} is damaged ({problem}) and cannot be moved aside "
            f"({exc.strerror}); delete it (the stamps keep what is done) and re-run"
        ) from None
    for side in _DB_SIDES:
        with contextlib.suppress(OSError):
            os.replace(f"{path}{side}", f"{aside}{side}")
    sys.stderr.write(
        f"orchlib: {_rel(path, root)} was damaged ({problem}); moved it to {aside.name} "
        "and started a new one — the stamps keep what is done\n"
    )
    return aside


def _db_problem(path: Path) -> str | None:
    """Why sqlite cannot use the DB at `path`; None when it can (or there is none yet)."""
    if not os.path.lexists(path):
        return None
    if path.is_dir():
        return "it is a folder"
    import sqlite3  # only when the DB changed since its last check

    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("PRAGMA quick_check").fetchone()
    except sqlite3.Error as exc:
        return str(exc)
    return None if row and row[0] == "ok" else f"integrity check: {row[0] if row else '?'}"


def check_writable(root: Path) -> None:
    """ConfigError when `.orch/` cannot be written (a read-only mount or mode)."""
    if not os.access(root / ORCH, os.W_OK):
        raise ConfigError(_read_only(ORCH))


def check_plan_files(root: Path, plan_ids: Iterable[str], stamps: Iterable[Path]) -> None:
    """ConfigError naming every runtime path a run could not write, and what to do."""
    problems = [p for pid in plan_ids for p in _plan_problems(root, root / ORCH / pid)]
    problems += [_not_a_file(root, s) for s in stamps if s.is_dir()]
    if problems:
        raise ConfigError("\n".join(problems))


def _plan_problems(root: Path, folder: Path) -> list[str]:
    if folder.exists() and not folder.is_dir():
        return [_not_a_folder(_rel(folder, root))]
    problems = [_not_a_folder(_rel(folder / n, root)) for n in PLAN_FOLDERS
                if (folder / n).exists() and not (folder / n).is_dir()]  # fmt: skip
    problems += [_not_a_file(root, folder / n) for n in PLAN_FILES if (folder / n).is_dir()]
    if folder.is_dir() and not problems and not os.access(folder, os.W_OK):
        problems.append(_read_only(_rel(folder, root)))
    return problems


def _read_only(rel: str) -> str:
    return (
        f"orchlib: {rel} is read-only; make it writable (orchlib keeps its stamps, state and "
        "logs there) and re-run"
    )


def _not_a_folder(rel: str) -> str:
    return f"orchlib: {rel} is a file, not a folder; move it away and re-run (nothing else is lost)"


def _not_a_file(root: Path, path: Path) -> str:
    return f"orchlib: {_rel(path, root)} is a folder, not a file; move it away and re-run"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


_FULL = (errno.ENOSPC, errno.EDQUOT)


def no_space(exc: BaseException) -> bool:
    """Whether `exc` is the file system running out of space (or quota)."""
    return isinstance(exc, OSError) and exc.errno in _FULL


def out_of_space(folder: Path) -> bool:
    """Whether the file system holding `folder` has no block left (an agent's log write
    failed there, so the agent's own exit says nothing about the task)."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def write_failure(exc: OSError, root: Path) -> str:
    """`no space left on device writing .orch/...` (or the error) for a failed write."""
    where = _rel(Path(exc.filename), root) if exc.filename else "under .orch"
    what = "no space left on device" if no_space(exc) else (exc.strerror or str(exc)).lower()
    return f"{what} writing {where}"


# Temp files named after their writer: fsutil.atomic_write's `.<name>.<pid>.<thread>.<n>.tmp`
# and the up-to-date cache's `.<name>.<pid>.tmp`; the plan cache's `.plan-<random>.tmp`.
_TEMP = re.compile(r"\..+?\.(\d+)(?:\.\d+\.\d+)?\.tmp")
_ANON_TEMP = re.compile(r"\.plan-.+\.tmp")
_ANON_AGE = 600.0  # seconds: no write of the plan cache takes that long


def sweep_temp_files(folders: Iterable[Path]) -> int:
    """Delete temp files a killed process left (its writer is gone); how many there were."""
    removed = 0
    for folder in folders:
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if _stale(entry):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed += 1
    return removed


def _stale(entry: os.DirEntry[str]) -> bool:
    named = _TEMP.fullmatch(entry.name)
    if named:
        from orchlib.executors.process import is_alive  # only when a temp file is left

        return not is_alive(int(named[1]), "")
    if _ANON_TEMP.fullmatch(entry.name):
        return time.time() - entry.stat().st_mtime > _ANON_AGE
    return False
