"""Faults end to end (issue 16): hostile output, hostile plan text, damaged runtime files.

Every test runs the real `doit` as a subprocess on a checkout in tmp_path, with real
agent processes; each one failed on the code before its fix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout, pid_alive

PLAN = "faults"


def write(co: Checkout, tasks: list[dict[str, Any]], plan_id: str = PLAN, **extra: Any) -> None:
    """A plan of `tasks` in project `a`, run by the fake agent unless a task says otherwise."""
    plan = {
        "planId": plan_id,
        "agent": co.agent(),
        "projects": [{"name": "a", "path": "a"}],
        "tasks": [{"project": "a", "title": t["id"], **t} for t in tasks],
        **extra,
    }
    co.write_plan(plan, "faults.json")


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in output(result), output(result)


def printer(code: str) -> dict[str, Any]:
    """A custom agent: python running `code` (TERMINAL_ID is in os.environ)."""
    return {"command": [sys.executable, "-c", "import os, sys\n" + code]}


# --- markers (items 5 and 6) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "status", "text"),
    [
        ({"done": "<Header/> and <Footer/>"}, "DONE", "<Header/> and <Footer/>"),
        ({"error": "<stdin>: cannot open <config.yaml>"}, "ERROR", "<stdin>: cannot open"),
    ],
)
def test_reports_in_angle_brackets_are_real(
    checkout: Checkout, step: dict[str, str], status: str, text: str
) -> None:
    write(checkout, [{"id": "t1"}], defaults={"retries": 2})
    checkout.scenario({"t1": [[step]]})
    no_traceback(checkout.doit())
    [task] = checkout.state(PLAN)["tasks"]
    assert task["status"] == status
    assert text in json.dumps(task, ensure_ascii=False)
    assert len(checkout.records()) == 1  # an ERROR is final, not retried as "closed"


def test_marker_after_48_mib_on_one_line_counts(checkout: Checkout) -> None:
    code = (
        "out = sys.stdout.buffer\n"
        "for _ in range(48 * 16 + 15): out.write(b'x' * 65536)\n"
        "out.write(b'x' * 65529 + ('[DONE:%s] after 48 MiB' % os.environ['TERMINAL_ID'])"
        ".encode() + b'\\n')\n"
    )
    write(checkout, [{"id": "t1", "agent": printer(code)}], defaults={"retries": 0})
    result = checkout.doit(timeout=120)
    assert result.returncode == 0, output(result)
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["summary"] == "after 48 MiB"


# --- plan text (items 7 and 8) ------------------------------------------------------------


@pytest.mark.parametrize("plan_id", ["doit.sqlite3", "run.lock"])
def test_plan_id_naming_a_runtime_file_is_a_located_error(checkout: Checkout, plan_id: str) -> None:
    write(checkout, [{"id": "t1"}], plan_id=plan_id)
    result = checkout.doit()
    assert result.returncode == 3, output(result)
    no_traceback(result)
    assert f"plans/faults.json:2:13: planId: {plan_id!r} is a name orchlib uses" in output(result)
    assert checkout.records() == []


@pytest.mark.parametrize(
    ("where", "edit"),
    [
        ("projects[0].description", lambda p: p["projects"][0].update(description="a\0b")),
        ("tasks[0].agent.env.K", lambda p: p["tasks"][0].update(agent={"command": ["true"],
                                                                        "env": {"K": "v\0"}})),
        ("tasks[0].agent.command[1]", lambda p: p["tasks"][0].update(
            agent={"command": ["echo", "{prompt}\0"], "prompt": "arg"})),
    ],
)  # fmt: skip
def test_nul_characters_are_refused_at_validation(
    checkout: Checkout, where: str, edit: Any
) -> None:
    write(checkout, [{"id": "t1"}])
    plan = json.loads((checkout.root / "plans" / "faults.json").read_text())
    edit(plan)
    checkout.write_plan(plan, "faults.json")
    result = checkout.doit()
    assert result.returncode == 3, output(result)
    no_traceback(result)
    assert f": {where}: contains a NUL character (\\0); remove it" in output(result)
    assert checkout.records() == []


# --- terminal escapes in plan text (item 9) ------------------------------------------------

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"


def test_plan_text_never_reaches_the_terminal_as_control_characters(checkout: Checkout) -> None:
    plan = {
        "planId": PLAN,
        "summary": f"summary {ESCAPES}",
        "agent": checkout.agent(),
        "projects": [{"name": f"web{ESCAPES}", "path": "web"}],
        "tasks": [{"id": "t1", "project": f"web{ESCAPES}", "title": f"title {ESCAPES}",
                   "outputs": [f"out{ESCAPES}.txt"]}],
    }  # fmt: skip
    checkout.write_plan(plan, "faults.json")
    checkout.scenario({"t1": [[{"write": [f"out{ESCAPES}.txt", "x"]}, {"done": f"ok {ESCAPES}"}]]})
    runs = [checkout.doit(), checkout.doit("status"), checkout.doit("list", "--all")]
    runs += [checkout.doit("info", f"{PLAN}:t1"), checkout.doit("list", "--all", "-s")]
    assert runs[0].returncode == 0, output(runs[0])
    for result in runs:
        no_traceback(result)
        text = output(result)
        assert not set(text) & {"\x1b", "\x07", "\x9b"}, repr(text)
    assert "title \\x1b]0;pwned\\x07" in output(runs[2])


# --- damaged runtime files (item 3) ------------------------------------------------------


def done_once(co: Checkout, **task: Any) -> None:
    """Run a one-task plan to DONE (exit 0), once."""
    (co.root / "a").mkdir(exist_ok=True)
    (co.root / "a" / "in.txt").write_text("input")
    write(co, [{"id": "t1", "inputs": ["in.txt"], **task}])
    result = co.doit()
    assert result.returncode == 0, output(result)
    assert len(co.records()) == 1


def plan_dir(co: Checkout) -> Path:
    return co.root / ".orch" / PLAN


@pytest.mark.parametrize("inputs", [[1, 2], {"in.txt": "x"}, {"in.txt": [1, 2]}, "in.txt"])
def test_wrong_shaped_stamp_is_named_and_the_task_runs_again(
    checkout: Checkout, inputs: object
) -> None:
    done_once(checkout)
    path = plan_dir(checkout) / "stamps" / "t1.json"
    stamp = json.loads(path.read_text())
    path.write_text(json.dumps({**stamp, "inputs": inputs}))
    info = checkout.doit("info", f"{PLAN}:t1")
    no_traceback(info)
    assert f"{PLAN}:t1: would run: its stamp is damaged (inputs is not a map" in output(info)
    for result in (checkout.doit("status"), checkout.doit("list", "--all", "-s")):
        no_traceback(result)
        assert result.returncode == 0, output(result)
    rerun = checkout.doit()
    assert rerun.returncode == 0, output(rerun)
    assert len(checkout.records()) == 2
    assert checkout.stamp("t1", PLAN)["inputs"]["in.txt"][0] == 5  # type: ignore[index]


def _truncate(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: max(len(data) // 2, 200)] if len(data) > 400 else data[:50])


def _garble(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[0:100] = bytes(range(100))
    db.write_bytes(bytes(data))


def _not_a_database(db: Path) -> None:
    db.write_text("this is not a database\n" * 50)


@pytest.mark.parametrize("damage", [_truncate, _garble, _not_a_database])
def test_damaged_doit_db_is_set_aside_and_nothing_is_redone(
    checkout: Checkout, damage: Any
) -> None:
    done_once(checkout)
    write(checkout, [{"id": "t1", "inputs": ["in.txt"]}, {"id": "t2", "dependsOn": ["t1"]}])
    db = checkout.root / ".orch" / "doit.sqlite3"
    damage(db)
    listed = checkout.doit("list", "--all")
    no_traceback(listed)
    assert listed.returncode == 0, output(listed)
    assert "orchlib: .orch/doit.sqlite3 was damaged (" in listed.stderr
    assert "the stamps keep what is done" in listed.stderr
    damage(db)
    result = checkout.doit()
    no_traceback(result)
    assert result.returncode == 0, output(result)
    assert checkout.dispatched() == ["t1", "t2"]  # t1 was stamped: not redone
    assert len(list(db.parent.glob("doit.sqlite3.damaged-*"))) >= 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: ((d.parent / "run.lock").unlink(), (d.parent / "run.lock").mkdir()),
         "orchlib: cannot open the run lock "),
        (lambda d: (d / "stamps" / "t2.json").mkdir(parents=True),
         f"orchlib: .orch/{PLAN}/stamps/t2.json is a folder, not a file; move it away"),
        (lambda d: ((d / "stamps").rename(d / "s"), (d / "stamps").write_text("x")),
         f"orchlib: .orch/{PLAN}/stamps is a file, not a folder; move it away"),
        (lambda d: ((d / "state.lock").unlink(), (d / "state.lock").mkdir()),
         f"orchlib: .orch/{PLAN}/state.lock is a folder, not a file; move it away"),
        (lambda d: ((d / "logs").rename(d / "l"), (d / "logs").write_text("x")),
         f"orchlib: .orch/{PLAN}/logs is a file, not a folder; move it away"),
    ],
)  # fmt: skip
def test_runtime_paths_of_the_wrong_kind_are_one_line_each(
    checkout: Checkout, make: Any, message: str
) -> None:
    done_once(checkout)
    write(checkout, [{"id": "t1", "inputs": ["in.txt"]}, {"id": "t2"}])
    make(plan_dir(checkout))
    result = checkout.doit()
    assert result.returncode == 3, output(result)
    no_traceback(result)
    assert message in output(result)
    for reader in ("status", "list", "info"):
        no_traceback(checkout.doit(reader, *([f"{PLAN}:t1"] if reader == "info" else [])))
    assert checkout.dispatched() == ["t1"]


def test_orch_replaced_by_a_file_is_one_line(checkout: Checkout) -> None:
    write(checkout, [{"id": "t1"}])
    (checkout.root / ".orch").write_text("oops")
    for args in ((), ("list",)):
        result = checkout.doit(*args)
        assert result.returncode == 3, output(result)
        no_traceback(result)
        assert "orchlib: .orch is a file, not a folder; move it away" in output(result)
    status = checkout.doit("status")  # reads only: it shows what it can
    assert status.returncode == 0 and "PENDING" in status.stdout, output(status)
    assert checkout.records() == []


# --- a full disk, a read-only .orch (items 3 and 4) ----------------------------------------


@contextlib.contextmanager
def small_fs(where: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` mounted at `where` (root only: skipped where mount is denied)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def chatty(co: Checkout, task: str, kib: int) -> list[dict[str, Any]]:
    """A fake agent attempt that prints `kib` KiB to its log, then DONE."""
    return [{"say": "x" * 1023} for _ in range(kib)] + [{"done": f"did {task}"}]


def test_full_disk_stops_the_run_keeps_stamps_and_resumes(checkout: Checkout) -> None:
    tasks = [{"id": f"t{i}", "project": "a"} for i in range(8)]
    with small_fs(checkout.root / ".orch", "1m") as orch:
        write(checkout, tasks, defaults={"retries": 2})
        checkout.scenario({t["id"]: [chatty(checkout, t["id"], 24)] for t in tasks})
        filler = orch / "filler"
        free = os.statvfs(orch).f_bavail * os.statvfs(orch).f_frsize
        filler.write_bytes(b"\0" * (free - 96 * 1024))  # leaves ~96 KiB: room for 2-3 tasks
        full = checkout.doit("-n", "1")
        text = output(full)
        assert full.returncode not in (0, 3), text
        no_traceback(full)
        assert "no space left on device writing .orch/" in text, text
        assert "internal error" not in text and "attempt 0" not in text, text
        stamped = {t["id"] for t in tasks if checkout.stamp(t["id"], PLAN)}
        assert stamped and len(stamped) < len(tasks)
        started = checkout.dispatched()
        assert len(started) <= len(stamped) + 1, started  # it stopped starting agents
        assert len(set(started)) == len(started), started  # no retry spent on the full disk
        filler.unlink()
        again = checkout.doit("-n", "1")
        assert again.returncode == 0, output(again)
        redone = checkout.dispatched()[len(started) :]
        assert not set(redone) & stamped, redone
        assert all(checkout.stamp(t["id"], PLAN) for t in tasks)


def test_read_only_orch_is_one_line_and_loses_nothing(checkout: Checkout) -> None:
    with small_fs(checkout.root / ".orch", "4m") as orch:
        write(checkout, [{"id": "t1"}])
        assert checkout.doit().returncode == 0
        write(checkout, [{"id": "t1"}, {"id": "t2"}])
        subprocess.run(["mount", "-o", "remount,ro", str(orch)], check=True)
        try:
            result = checkout.doit()
            assert result.returncode == 3, output(result)
            no_traceback(result)
            assert "orchlib: .orch is read-only; make it writable" in output(result)
            for reader in ("status", "list"):
                no_traceback(checkout.doit(reader))
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(orch)], check=True)
        again = checkout.doit()
        assert again.returncode == 0, output(again)
        assert checkout.dispatched() == ["t1", "t2"]


# --- signals at the edges (item 10) ---------------------------------------------------------


def handles_sigterm(pid: int) -> bool:
    """Whether `pid` catches SIGTERM: orchlib's quiet-exit handler is in place."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt"))
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.crash_loop
@pytest.mark.parametrize("program", [("-m", "doit"), ("-m", "orchlib")])
def test_ctrl_c_while_plans_load_exits_130_quietly(checkout: Checkout, program: tuple[str, ...]
                                                   ) -> None:  # fmt: skip
    write(checkout, [{"id": f"t{i}"} for i in range(30)])
    checkout.scenario({f"t{i}": [[{"hang": True}]] for i in range(30)})
    rng = random.Random(16)
    for trial in range(12):
        proc = subprocess.Popen([sys.executable, *program], cwd=checkout.root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        checkout.wait_for(lambda p=proc: handles_sigterm(p.pid) or p.poll() is not None)
        time.sleep(rng.uniform(0, 0.3))  # while plans load, or once the run has begun
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in out + err, (trial, out + err)
        assert proc.returncode == 130, (trial, proc.returncode, out, err)
    for pid in (r["pid"] for r in checkout.records()):
        assert not pid_alive(pid)


@pytest.mark.crash_loop
def test_second_ctrl_c_after_the_run_stopped_exits_130_quietly(checkout: Checkout) -> None:
    write(checkout, [{"id": f"t{i}"} for i in range(4)])
    checkout.scenario({f"t{i}": [[{"chat": 0.05}]] for i in range(4)})
    rng = random.Random(10)
    for trial in range(10):
        proc = checkout.start()
        checkout.wait_for(lambda n=trial + 1: len(checkout.records()) >= n)
        proc.send_signal(signal.SIGINT)
        time.sleep(rng.uniform(0, 0.3))
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in out + err, (trial, out + err)
        assert proc.returncode == 130, (trial, proc.returncode, out, err)
    for pid in (r["pid"] for r in checkout.records()):
        assert not pid_alive(pid)


# --- smaller (item 11) ------------------------------------------------------------------------


def test_a_grandchild_that_calls_setsid_does_not_outlive_its_attempt(checkout: Checkout) -> None:
    pid_file = checkout.root / "stray.pid"
    write(checkout, [{"id": "t1"}])
    checkout.scenario({"t1": [[{"spawn_setsid": str(pid_file)}, {"done": "ok"}]]})
    result = checkout.doit()
    stray = int(pid_file.read_text())
    try:
        assert result.returncode == 0, output(result)
        assert not pid_alive(stray)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stray, signal.SIGKILL)


def test_temp_files_a_killed_run_left_are_swept(checkout: Checkout) -> None:
    write(checkout, [{"id": "t1"}, {"id": "t2"}])
    assert checkout.doit().returncode == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    folder = plan_dir(checkout)
    left = [
        folder / f".state.json.{dead}.1.0.tmp",
        folder / "stamps" / f".t1.json.{dead}.1.3.tmp",
        folder / f".stamps.cache.{dead}.tmp",
        folder / "prompts" / f".t2.1.md.{dead}.1.2.tmp",
    ]
    live = folder / f".state.json.{os.getpid()}.1.0.tmp"  # a writer still at work: kept
    for path in [*left, live]:
        path.write_text("{")
    write(checkout, [{"id": "t1"}, {"id": "t2"}, {"id": "t3"}])
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert [p.name for p in left if p.exists()] == []
    assert live.exists()


def test_an_output_reached_through_a_symlink_out_of_the_project_does_not_count(
    checkout: Checkout, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "report.txt").write_text("not made by the task")
    (checkout.root / "a").mkdir()
    (checkout.root / "a" / "out").symlink_to(outside)
    write(checkout, [{"id": "t1", "outputs": ["out/*.txt"]}], defaults={"retries": 0})
    result = checkout.doit()
    assert result.returncode not in (0, 3), output(result)
    assert checkout.stamp("t1", PLAN) is None
    assert "out/*.txt" in output(result)


def test_a_prompt_path_that_is_a_folder_fails_the_task_in_one_line(checkout: Checkout) -> None:
    write(checkout, [{"id": "t1"}, {"id": "t2", "project": "a"}], defaults={"retries": 0})
    (plan_dir(checkout) / "prompts" / "t1.1.md").mkdir(parents=True)
    result = checkout.doit()
    text = output(result)
    assert result.returncode not in (0, 3), text
    no_traceback(result)
    assert f"is a directory writing .orch/{PLAN}/prompts/t1.1.md" in text, text
    assert "internal error" not in text
    assert checkout.stamp("t2", PLAN) is not None


@pytest.mark.parametrize("free_kib", [4, 60, 160, 260])
def test_a_full_disk_while_writing_a_prompt_or_a_log_is_one_line_naming_the_file(
    checkout: Checkout, free_kib: int
) -> None:
    """A 100 KiB prompt given on stdin is written twice (the prompt and the agent's stdin),
    then the log: each free space runs out at another of those writes."""
    with small_fs(checkout.root / ".orch", "1m") as orch:
        write(checkout, [{"id": "t1", "description": "y" * 100 * 1024}], defaults={"retries": 1})
        checkout.scenario({"t1": [[{"say": "x" * 1023} for _ in range(64)] + [{"done": "ok"}]] * 3})
        assert checkout.doit("list").returncode == 0  # .orch/ made, its DB and caches too
        free = os.statvfs(orch).f_bavail * os.statvfs(orch).f_frsize
        with contextlib.suppress(OSError):
            (orch / "filler").write_bytes(b"\0" * max(0, free - free_kib * 1024))
        result = checkout.doit()
        text = output(result)
        no_traceback(result)
        assert "internal error" not in text, text
        if result.returncode != 0:
            assert "no space left on device writing .orch/" in text, text
        (orch / "filler").unlink()
        again = checkout.doit()
        assert again.returncode == 0, output(again)
        assert checkout.stamp("t1", PLAN) is not None


def test_every_runtime_write_on_a_full_disk_names_its_file(checkout: Checkout) -> None:
    """The writes whose failure carried no file name (the start journal, the git log, the
    agent's stdin, a dask log) ran into `orchlib internal error: OSError(28, ...)`."""
    from orchlib.fsutil import append_private, atomic_write, write_private
    from orchlib.state.files import JOURNAL_FILE, append_journal
    from orchlib.state.model import TaskRecord

    with small_fs(checkout.root / ".orch", "64k") as orch:
        folder = orch / PLAN
        folder.mkdir()
        free = os.statvfs(orch).f_bavail * os.statvfs(orch).f_frsize
        with contextlib.suppress(OSError):
            (orch / "filler").write_bytes(b"\0" * (free + 4096))
        record = TaskRecord("t1", title="y" * 8192)
        git_log, stdin = folder / "t1.1.git.log", folder / "t1.1.stdin"
        writes = [
            (folder / JOURNAL_FILE, lambda: append_journal(folder, [record])),
            (git_log, lambda: append_private(git_log, b"y" * 8192)),
            (stdin, lambda: write_private(stdin, b"y" * 8192)),
            (folder / "state.json", lambda: atomic_write(folder / "state.json", b"y" * 8192)),
        ]
        for path, do in writes:
            with pytest.raises(OSError) as failed:
                do()
            assert failed.value.errno == errno.ENOSPC
            assert failed.value.filename == str(path)


def test_forget_on_a_full_disk_is_one_line_and_changes_nothing(checkout: Checkout) -> None:
    with small_fs(checkout.root / ".orch", "512k") as orch:
        write(checkout, [{"id": "t1"}])
        assert checkout.doit().returncode == 0
        free = os.statvfs(orch).f_bavail * os.statvfs(orch).f_frsize
        with contextlib.suppress(OSError):
            (orch / "filler").write_bytes(b"\0" * (free + 4096))
        result = checkout.doit("forget", f"{PLAN}:t1")
        assert result.returncode == 3, output(result)
        no_traceback(result)
        assert "orchlib: doit's DB .orch/doit.sqlite3: database or disk is full" in output(result)
        assert checkout.stamp("t1", PLAN) is not None
