"""The state files' lock: the run's StateLock and `doit answer`'s filelock exclude each other."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock
import pytest

from orchlib.state.statelock import StateLock

# Another process holding the lock as `doit answer` does (filelock), until told to stop.
HOLDER = """
import sys, filelock
with filelock.FileLock(sys.argv[1], timeout=5, mode=0o600):
    print("held", flush=True)
    sys.stdin.readline()
    open(sys.argv[2], "w").write("released")
"""


@contextmanager
def held_elsewhere(lock: Path, note: Path) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(note)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        yield child
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def test_waits_for_a_filelock_holder_in_another_process(tmp_path: Path) -> None:
    lock, note = tmp_path / "state.lock", tmp_path / "released"
    with held_elsewhere(lock, note) as child:
        # Let it go a moment after we start waiting: we must not get the lock before that.
        threading.Timer(0.2, lambda: child.stdin.close() if child.stdin else None).start()
        with StateLock(lock, timeout=10):
            assert note.read_text() == "released"


def test_a_holder_in_another_process_times_out(tmp_path: Path) -> None:
    lock = tmp_path / "state.lock"
    with held_elsewhere(lock, tmp_path / "released"):
        began = time.monotonic()
        with pytest.raises(filelock.Timeout), StateLock(lock, timeout=0.2):
            pass
        assert time.monotonic() - began >= 0.2
    with StateLock(lock, timeout=1):  # released by the failed try too
        pass


def test_filelock_in_another_process_waits_for_it(tmp_path: Path) -> None:
    lock = tmp_path / "state.lock"
    probe = f"import filelock; filelock.FileLock({str(lock)!r}, timeout=0.1).acquire()"
    with StateLock(lock, timeout=1):
        busy = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert busy.returncode != 0 and "Timeout" in busy.stderr
    free = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert free.returncode == 0, free.stderr
    assert lock.stat().st_mode & 0o077 == 0


def test_threads_take_it_one_at_a_time(tmp_path: Path) -> None:
    state = StateLock(tmp_path / "state.lock", timeout=10)
    inside: list[int] = []
    most = [0]

    def work() -> None:
        for _ in range(50):
            with state:
                inside.append(1)
                most[0] = max(most[0], len(inside))
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
