"""The executor seam: LocalExecutor on real processes, the registry's one-line errors, and
adoption of a state.json record written before executor refs existed."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import Checkout, pid_alive

from orchlib import executors
from orchlib.errors import ConfigError
from orchlib.executorregistry import EXECUTORS
from orchlib.executors import Handle, Job, LocalExecutor

PY = sys.executable


def job(tmp_path: Path, code: str, **kw: object) -> Job:
    return Job((PY, "-c", code), tmp_path, {"ORCH_X": "1"}, tmp_path / "logs" / "j.log", **kw)  # type: ignore[arg-type]


def wait_end(handle: Handle, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while (code := handle.poll()) is None:
        assert time.monotonic() < deadline, "the job did not end"
        handle.wait_output(0.1)
    handle.close()
    handle.terminate(0.1)  # reaps our child and closes its stdin, as an attempt's end does
    return code


def test_before_start_sees_the_ref_before_the_job_prints(tmp_path: Path) -> None:
    seen: list[tuple[dict[str, object], str, int]] = []
    j = job(tmp_path, "import os; print('hi', os.environ['ORCH_X'], os.environ['HOME'] != '')")

    def record(handle: Handle) -> None:
        seen.append((handle.ref, handle.host, j.log.stat().st_size))

    handle = LocalExecutor().start(j, record)
    assert wait_end(handle) == 0
    ref, host, size = seen[0]
    assert (host, size) == ("local", 0)  # the gate held the job until the ref was recorded
    assert json.loads(json.dumps(ref)) == ref and ref["pid"] == ref["pgid"]
    assert j.log.read_text() == "hi 1 True\n"  # additions laid over this machine's env


def test_a_failing_before_start_never_lets_the_job_run(tmp_path: Path) -> None:
    j = job(tmp_path, "open('ran', 'w')")

    def refuse(handle: Handle) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        LocalExecutor().start(j, refuse)
    time.sleep(0.3)
    assert not (tmp_path / "ran").exists()


def test_stdin_bytes_reach_the_job_and_a_kept_stdin_takes_enter(tmp_path: Path) -> None:
    j = job(tmp_path, "import sys; print(sys.stdin.read().upper())", stdin=b"prompt text")
    handle = LocalExecutor().start(j, lambda h: None)
    assert wait_end(handle) == 0 and "PROMPT TEXT" in j.log.read_text()
    kept = job(tmp_path, "import sys; sys.stdin.readline(); print('got enter')", keep_stdin=True)
    handle = LocalExecutor().start(kept, lambda h: None)
    assert handle.send_enter()
    assert wait_end(handle) == 0 and "got enter" in kept.log.read_text()


def test_adopt_finds_a_running_job_by_its_ref_and_terminate_stops_its_group(
    tmp_path: Path,
) -> None:
    j = job(tmp_path, "import time; print('up', flush=True); time.sleep(60)")
    started = LocalExecutor().start(j, lambda h: None)
    ref = json.loads(json.dumps(started.ref))  # as state.json keeps it
    adopted = LocalExecutor().adopt(ref)
    assert adopted is not None and adopted.poll() is None
    adopted.terminate(grace=1.0)
    assert not pid_alive(int(ref["pid"]))  # type: ignore[call-overload]
    started.terminate(0.1)  # reap our child
    assert LocalExecutor().adopt({"executor": "dask", "token": "x"}) is None
    assert LocalExecutor().adopt({}) is None


def test_run_gives_the_exit_code_or_minus_one_at_the_timeout(tmp_path: Path) -> None:
    local = LocalExecutor()
    assert local.run(job(tmp_path, "raise SystemExit(4)"), None) == 4
    began = time.monotonic()
    assert local.run(job(tmp_path, "import time; time.sleep(30)"), 0.3) == -1
    assert time.monotonic() - began < 5


def test_preflight_names_each_missing_cli(tmp_path: Path) -> None:
    assert LocalExecutor().preflight(tmp_path, [PY, "orchlib-no-such-cli"]) == [
        "orchlib-no-such-cli: not found on PATH"
    ]


def test_the_registry_says_in_one_line_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(executors.create("local"), LocalExecutor)
    with pytest.raises(ConfigError) as unknown:
        executors.factory("cloud")
    assert str(unknown.value) == "orchlib: unknown executor 'cloud' (known: dask, local)"
    absent = replace(EXECUTORS["dask"], target="orchlib.executors._absent:DaskExecutor")
    monkeypatch.setitem(EXECUTORS, "dask", absent)
    with pytest.raises(ConfigError) as missing:
        executors.factory("dask")
    assert str(missing.value) == (
        "orchlib: the dask executor cannot be loaded (orchlib.executors._absent is missing); "
        "install it with pip install 'orchlib[dask]'"
    )


# --- state.json written before executor refs ------------------------------------------------


def test_a_record_with_only_pid_fields_is_still_adopted(checkout: Checkout) -> None:
    wait = "while [ ! -f go ]; do sleep 0.02; done; "
    plan = {
        "planId": "old", "agent": checkout.agent(),
        "projects": [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}],
        "tasks": [
            {"id": "build", "project": "a", "title": "b", "command": wait + "echo built"},
            {"id": "broken", "project": "b", "title": "x", "command": wait + "echo broke; exit 3"},
        ],
    }  # fmt: skip
    checkout.write_plan(plan, "old.json")
    first = checkout.start()
    state_file = checkout.root / ".orch" / "old" / "state.json"

    def started() -> list[str]:
        try:
            tasks = json.loads(state_file.read_text())["tasks"]
        except (OSError, ValueError):
            return []
        return sorted(t["id"] for t in tasks if t.get("pid"))

    checkout.wait_for(lambda: started() == ["broken", "build"])
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    data = json.loads(state_file.read_text())
    pids = [t["pid"] for t in data["tasks"]]
    for task in data["tasks"]:  # what an orchlib before executor refs wrote
        del task["ref"], task["host"]
    state_file.write_text(json.dumps(data))
    for project in ("a", "b"):
        (checkout.root / project / "go").touch()
    checkout.wait_for(lambda: not any(pid_alive(p) for p in pids))
    result = checkout.doit()
    assert result.returncode != 0
    build = checkout.stamp("build", "old")
    assert build is not None and build["summary"] == "built" and build["attempt"] == 1
    tasks = {t["id"]: t for t in checkout.state("old")["tasks"]}
    assert "command exited with code 3: broke" in tasks["broken"]["error"]
    assert not (checkout.root / ".orch" / "old" / "logs" / "build.2.log").exists()
