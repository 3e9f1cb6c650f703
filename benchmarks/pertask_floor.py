"""How near orchlib's 300-task run is to what the same work costs in Python (issue 25).

`throughput.py` compares orchlib's `doit -n 8` with `make -j8`. This benchmark asks what
part of the gap is Python itself: two small stand-ins do the work orchlib's run does for
each of the 300 `true` tasks, 8 at a time, and nothing else:

- spawn the task behind the same gate (`sh -c 'IFS= read -r _ || exit 75; exec "$@"'`) in
  its own session, its output into a log file;
- put its start on disk (a journal line appended under `flock`), then open the gate;
- wait for its exit; write its stamp atomically (temp file + rename); print a console line.

`floor, one thread` runs them from one thread (a pidfd per process in one epoll), without
importing doit or orchlib. `floor, a thread per slot` runs them from 8 threads, each
spawning and waiting (orchlib's shape), after importing doit and orchlib's run modules,
the start-up a real run pays. orchlib's own run and `make -j8` run beside them, each
repetition in turn. The stand-ins validate no plan, keep no state.json or orchestration.md,
scan no output and check nothing: what they cost is a floor, not a target.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import _bench as b
import throughput

STANDIN = r"""
import fcntl, json, os, queue, select, subprocess, sys, threading
root, mode = sys.argv[1], sys.argv[2]
if mode == "threads":  # what a real run imports before its first task
    import doit.doit_cmd  # noqa: F401
    import orchlib.doitedge.session  # noqa: F401
    sys.setswitchinterval(0.001)  # as orchlib's run does
TASKS, SLOTS = int(sys.argv[3]), int(sys.argv[4])
GATE = 'IFS= read -r _ || exit 75; exec "$@"'
for sub in ("logs", "stamps"):
    os.makedirs(os.path.join(root, sub), exist_ok=True)
lock = os.open(os.path.join(root, "state.lock"), os.O_RDWR | os.O_CREAT, 0o600)
said = threading.Lock()


def start(i):
    log = os.open(os.path.join(root, "logs", f"t{i}.log"), os.O_WRONLY | os.O_CREAT, 0o600)
    proc = subprocess.Popen(["sh", "-c", GATE, "gate", "true"], stdin=subprocess.PIPE,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=root)
    os.close(log)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(os.path.join(root, "state.journal"), "a") as journal:
        journal.write(json.dumps({"id": f"t{i}", "pid": proc.pid}) + "\n")
    fcntl.flock(lock, fcntl.LOCK_UN)
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    with said:
        print(f"t{i} started", flush=True)
    return proc


def finish(i, proc):
    proc.wait()
    temp = os.path.join(root, "stamps", f".t{i}.tmp")
    with open(temp, "w") as stamp:
        stamp.write(json.dumps({"taskId": f"t{i}", "summary": ""}, indent=2))
    os.replace(temp, os.path.join(root, "stamps", f"t{i}.json"))
    with said:
        print(f"t{i} DONE", flush=True)


if mode == "loop":
    poll, running, started, ended = select.epoll(), {}, 0, 0
    while ended < TASKS:
        while started < TASKS and len(running) < SLOTS:
            proc = start(started)
            fd = os.pidfd_open(proc.pid)
            poll.register(fd, select.EPOLLIN)
            running[fd] = (started, proc)
            started += 1
        for fd, _ in poll.poll():
            poll.unregister(fd)
            os.close(fd)
            finish(*running.pop(fd))
            ended += 1
else:
    todo = queue.Queue()
    for i in range(TASKS):
        todo.put(i)

    def slot():
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            finish(i, start(i))

    slots = [threading.Thread(target=slot) for _ in range(SLOTS)]
    for thread in slots:
        thread.start()
    for thread in slots:
        thread.join()
"""


def run_standin(script: Path, root: Path, mode: str) -> b.Timing:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    argv = [sys.executable, str(script), str(root), mode, str(throughput.TASKS),
            str(throughput.SLOTS)]  # fmt: skip
    timing = b.run(argv, root)
    stamps = len(list((root / "stamps").glob("*.json")))
    if timing.code != 0 or stamps != throughput.TASKS:
        raise RuntimeError(f"the {mode} stand-in wrote {stamps} stamps (exit {timing.code})")
    return timing


def body(tmp: Path, report: b.Report, args: argparse.Namespace) -> None:
    if not b.have("make"):
        report.notes.append("make is not installed: no baseline, nothing measured.")
        return
    script = tmp / "standin.py"
    script.write_text(STANDIN)
    co = b.make_checkout(tmp / "orchlib", throughput.plan())
    mk = throughput.makefile(tmp / "make")
    b.warm_up(co)
    runners = {
        f"`make -j{throughput.SLOTS}`": lambda: throughput.run_make(mk),
        "floor, one thread (no imports)": lambda: run_standin(script, tmp / "loop", "loop"),
        "floor, a thread per slot (doit and orchlib imported)": lambda: run_standin(
            script, tmp / "threads", "threads"
        ),
        f"orchlib `doit -n {throughput.SLOTS}`": lambda: throughput.run_orchlib(
            co, tmp / "orchlib.log"
        ),
    }
    runs: dict[str, list[b.Timing]] = {name: [] for name in runners}
    for rep in range(args.reps):
        b.progress(f"repetition {rep + 1} of {args.reps}: {len(runners)} runners in turn")
        for name, runner in runners.items():
            runs[name].append(runner())
    table = report.table(
        f"{throughput.TASKS} `true` tasks, {throughput.SLOTS} at a time: the same per-task "
        "work in Python, beside orchlib and make",
        "runner | wall, median (min–max, n) | CPU (median) | vs make | per task, over make",
    )
    make = b.median([t.wall for t in runs[f"`make -j{throughput.SLOTS}`"]])
    for name, timings in runs.items():
        wall = b.median([t.wall for t in timings])
        extra = (wall - make) / throughput.TASKS * 1000
        table.add(name, b.summary([t.wall for t in timings]),
                  b.fmt_s(b.median([t.cpu for t in timings])), f"{wall / make:.2f}×",
                  f"{extra:+.2f} ms")  # fmt: skip
    report.notes.append(
        "The stand-ins are a floor: they do the spawn, gate, journal line, stamp and "
        "console line of each task and nothing else (no plan validation, state.json, "
        "orchestration.md, log scanning, checks, events or doit scheduling). CPU = user+sys "
        "of the process and its children."
    )


if __name__ == "__main__":
    sys.exit(b.main("pertask_floor", "The per-task floor in Python", body, default_reps=7))
