"""Small file helpers: atomic writes and forgiving JSON reads.

Readers of `.orch/` files (other processes, `doit status`, a crashed run's successor) must
never see a half-written file, so every write goes to a temp file in the same folder,
is fsynced, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

_made: set[Path] = set()
_counter = itertools.count()


def ensure_dir(folder: Path) -> None:
    """mkdir -p, once per folder per process (a run writes thousands of files in a few)."""
    if folder not in _made:
        folder.mkdir(parents=True, exist_ok=True)
        _made.add(folder)


def atomic_write(path: Path, data: str | bytes, durable: bool = True) -> None:
    """Replace `path` with `data` atomically (temp file + fsync + rename); parents are created.

    `durable=False` skips the fsync: still atomic for readers and against a killed process,
    only a machine crash may lose the write (for files rewritten many times a second).
    """
    ensure_dir(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    unique = f"{os.getpid()}.{threading.get_ident()}.{next(_counter)}"
    tmp = path.with_name(f".{path.name}.{unique}.tmp")
    # os.open with 0o666 lets the umask decide the mode, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # name the file meant, not the temp file (or none)
            exc.filename, exc.filename2 = str(path), None
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None when missing, unreadable, torn or not an object."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
