"""Small file helpers: atomic writes, private files and forgiving JSON reads.

Readers of `.orch/` files (other processes, `doit status`, a crashed run's successor) must
never see a half-written file, so every write goes to a temp file in the same folder,
is fsynced, then renamed over the target. Everything orchlib makes under `.orch/` is the
user's alone, whatever the umask (DESIGN §3): folders `0700`, files `0600`.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchlib.layout import ORCH

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

_made: set[Path] = set()
_counter = itertools.count()


def private(path: Path) -> bool:
    """Whether `path` is orchlib's own (under a `.orch` folder): then only the user may read it."""
    return ORCH in Path(path).parts


def ensure_dir(folder: Path) -> None:
    """mkdir -p, once per folder per process (a run writes thousands of files in a few);
    under `.orch/` every folder it makes is `0700`."""
    if folder not in _made:
        if private(folder):
            make_private_dirs(folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
        _made.add(folder)


def make_private_dirs(folder: Path) -> None:
    """mkdir -p with `0700` for every level made (os.makedirs gives parents the umask's mode)."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for level in reversed(missing):
        try:
            os.mkdir(level, PRIVATE_DIR)
        except FileExistsError:
            if not os.path.isdir(level):
                raise


def open_private(path: Path, flags: int) -> int:
    """os.open with mode `0600` (whatever the umask leaves of it, never more)."""
    return os.open(path, flags, PRIVATE_FILE)


def flock_within(fd: int, seconds: float, pause: float = 0.01) -> bool:
    """Take an exclusive `flock` on `fd`, trying again every `pause` for up to `seconds`;
    False when another holder still has it then."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)


def append_private(path: Path, data: bytes) -> None:
    """Append `data` to a file of orchlib's own, made `0600` when it is new."""
    with named(path):
        _write_to(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), data)


def write_private(path: Path, data: bytes) -> None:
    """Replace the content of a file of orchlib's own (not atomically), `0600` when new."""
    with named(path):
        _write_to(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), data)


@contextlib.contextmanager
def named(path: Path) -> Iterator[None]:
    """An OSError inside names `path`: a failed write() or close() (a full disk) carries no
    file name of its own, and every such failure must be said as one line naming the file."""
    try:
        yield
    except OSError as exc:
        if not exc.filename:
            exc.filename = str(path)
        raise


def atomic_write(path: Path, data: str | bytes, durable: bool = True) -> None:
    """Replace `path` with `data` atomically (temp file + fsync + rename); parents are created.

    `durable=False` skips the fsync: still atomic for readers and against a killed process,
    only a machine crash may lose the write (for files rewritten many times a second).
    """
    ensure_dir(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    unique = f"{os.getpid()}.{threading.get_ident()}.{next(_counter)}"
    tmp = path.with_name(f".{path.name}.{unique}.tmp")
    # Outside `.orch/` (a drafted plan in plans/) the umask decides, as a plain open() would.
    mode = PRIVATE_FILE if private(path) else 0o666
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            _write_all(fd, raw)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # name the file meant, not the temp file (or none)
            exc.filename, exc.filename2 = str(path), None
        raise


def _write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd` with os.write: no file object (its fstat, ioctl and lseek)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_to(fd: int, data: bytes) -> None:
    """All of `data` to `fd`, then close it (also when the write fails)."""
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None when missing, unreadable, torn or not an object."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
