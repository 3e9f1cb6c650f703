"""Following many attempts from one thread (`executors/logwatch.py` + `run/attempt.py`):
real processes, real logs; one watching thread however many agents, each decided alone."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from orchlib.agents.streams import PlainText
from orchlib.executors import Job, LocalExecutor
from orchlib.plan import Limits
from orchlib.run.attempt import Follow, Result, follow

AGENTS = 24


def _job(tmp_path: Path, name: str, code: str) -> Job:
    log = tmp_path / f"{name}.log"
    return Job((sys.executable, "-c", code), tmp_path, {"TERMINAL_ID": name}, log)


def _follow(ex: LocalExecutor, job: Job, limits: Limits, stop: threading.Event) -> Result:
    handle = ex.start(job)
    f = Follow(handle, job.log, job.env["TERMINAL_ID"], limits, PlainText(), stop,
               lambda percent, text: None)  # fmt: skip
    return follow(f).result


def test_many_loud_attempts_are_watched_from_one_thread(tmp_path: Path) -> None:
    code = (
        "import os,sys; o=sys.stdout.buffer; o.write(b'x' * 99 + b'\\n'); o.flush()\n"
        "[o.write((b'y' * 99 + b'\\n') * 2000) for _ in range(5)]\n"
        "o.write(b'[DONE:' + os.environ['TERMINAL_ID'].encode() + b'] ok\\n')"
    )
    ex, stop = LocalExecutor(), threading.Event()
    results: dict[int, Result] = {}
    seen: list[int] = []

    def one(i: int) -> None:
        results[i] = _follow(ex, _job(tmp_path, f"t{i}", code), Limits(), stop)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(AGENTS)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        seen.append(sum(t.name == "orchlib-logwatch" for t in threading.enumerate()))
        time.sleep(0.01)
    ex.close()
    assert results == dict.fromkeys(range(AGENTS), Result.DONE)
    assert max(seen) == 1


def test_stall_and_timeout_still_fire_and_a_quiet_one_is_not_held_up(tmp_path: Path) -> None:
    ex, stop = LocalExecutor(), threading.Event()
    silent = "import time; time.sleep(30)"
    out: dict[str, Result] = {}
    jobs = {
        "stall": (silent, Limits(stall_timeout=0.3, timeout=None)),
        "timeout": ("import time\nwhile True: print('busy', flush=True); time.sleep(0.05)",
                    Limits(timeout=0.5, stall_timeout=None)),
        "done": ("import os; print('[DONE:' + os.environ['TERMINAL_ID'] + '] fine')", Limits()),
    }  # fmt: skip

    def one(name: str) -> None:
        code, limits = jobs[name]
        out[name] = _follow(ex, _job(tmp_path, name, code), limits, stop)

    threads = [threading.Thread(target=one, args=(n,)) for n in jobs]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    ex.close()
    assert out == {"stall": Result.STALLED, "timeout": Result.TIMEOUT, "done": Result.DONE}
    assert time.monotonic() - start < 15


def test_an_interrupt_ends_every_watched_attempt(tmp_path: Path) -> None:
    import os

    r, w = os.pipe()
    ex, stop = LocalExecutor(wake_fd=r), threading.Event()
    out: list[Result] = []
    threads = [
        threading.Thread(target=lambda i=i: out.append(_follow(
            ex, _job(tmp_path, f"i{i}", "import time; time.sleep(30)"), Limits(), stop)))
        for i in range(3)
    ]  # fmt: skip
    for t in threads:
        t.start()
    time.sleep(0.5)
    stop.set()
    os.write(w, b"!")
    for t in threads:
        t.join(20)
    ex.close()
    assert out == [Result.INTERRUPTED] * 3
