"""Usage limits (DESIGN §11) end to end: a stand-in CLI over its limit, the real `doit`.

The stand-ins report their CLI's own limit message while STANDIN_LIMIT_UNTIL (epoch seconds)
lies ahead, and run normally after it, as an account over its limit does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout
from test_profiles import PLAN, STANDINS, SUMMARY, Standins

from orchlib.pauses import iso

SINK = (
    "import json, sys\n"
    "with open(sys.argv[1], 'a') as f: f.write(json.dumps(sys.argv[2:]) + '\\n')\n"
)


SLOW = {"STANDIN_DELAY": "2"}


@pytest.fixture
def standins(checkout: Checkout, tmp_path: Path) -> Iterator[Standins]:
    found = Standins(checkout, tmp_path)
    yield found


def limited(profile: str, until: float) -> dict[str, Any]:
    """An agent whose CLI account is over its usage limit until `until`."""
    return {"profile": profile, "env": {"STANDIN_LIMIT_UNTIL": f"{until:.3f}"}}


def calls_of(standins: Standins, task: str) -> list[dict[str, Any]]:
    return [c for c in standins.calls() if c["env"].get("ORCH_TASK_ID") == task]


def test_a_usage_limit_pauses_the_profile_and_the_task_resumes_after_the_reset(
    standins: Standins, checkout: Checkout, tmp_path: Path
) -> None:
    until = time.time() + 6
    sink = tmp_path / "sink.py"
    sink.write_text(SINK)
    received = tmp_path / "notes.jsonl"
    notify = [{"command": [sys.executable, str(sink), str(received), "{event}", "{message}"]}]
    standins.plan(
        [
            {"id": "t1", "agent": limited("claude", until)},  # hits the limit
            # another CLI keeps running; it ends after t1 was paused, while the limit lasts
            {
                "id": "t2",
                "project": "b",
                "agent": {"profile": "codex", "env": {"STANDIN_DELAY": "2"}},
            },
            # claude again, ready while the limit lasts: it must wait for the reset
            {"id": "t3", "project": "c", "dependsOn": ["t2"], "agent": limited("claude", until)},
        ],
        projects=("a", "b", "c"),
        defaults={"retries": 0},
        notify=notify,
    )
    proc = checkout.start(env=_env(standins))
    try:
        checkout.wait_for(lambda: _status_of(checkout, "t1") == "PAUSED", timeout=30)
        shown = checkout.doit("status")
        assert "PAUSED until" in shown.stdout, shown.stdout
        record = _task(checkout, "t1")
        assert record["pausedUntil"] and "usage limit" in record["lastUpdate"]
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    t1, t2, t3 = (calls_of(standins, t) for t in ("t1", "t2", "t3"))
    # retries: 0, yet DONE: the limited attempt used no retry; the second came after the reset
    assert len(t1) == 2 and t1[1]["time"] >= until
    assert standins.stamp("t1")["attempt"] == 2 and standins.stamp("t1")["summary"] == SUMMARY
    # codex ran during claude's pause; t3 (claude) was not dispatched before the reset
    assert len(t2) == 1 and t2[0]["time"] < until
    assert standins.stamp("t2")["finishedAt"] < iso(until)
    assert len(t3) == 1 and t3[0]["time"] >= until
    assert "PAUSED until" in out and "claude usage limit" in out
    notes = [json.loads(line) for line in received.read_text().splitlines()]
    limits = [n for n in notes if n[0] == "usage_limit"]
    assert len(limits) == 1 and "claude" in limits[0][1]


def test_no_wait_limits_ends_the_run_with_exit_2_and_the_time_to_come_back(
    standins: Standins, checkout: Checkout
) -> None:
    until = time.time() + 120
    standins.plan([{"id": "t1", "agent": limited("claude", until)}], defaults={"retries": 0})
    started = time.monotonic()
    result = checkout.doit("--no-wait-limits", env=_env(standins))
    assert result.returncode == 2, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    assert "usage limit resets at" in result.stdout and "come back" in result.stdout
    record = _task(checkout, "t1")
    assert record["status"] == "PAUSED" and record["pausedUntil"]
    assert len(calls_of(standins, "t1")) == 1
    assert "PAUSED until" in checkout.doit("status").stdout


@pytest.mark.parametrize("profile", ["codex", "gemini", "opencode"])
def test_each_json_profile_pauses_on_its_cli_limit(
    standins: Standins, checkout: Checkout, profile: str
) -> None:
    until = time.time() + 600
    standins.plan([{"id": "t1", "agent": limited(profile, until)}], defaults={"retries": 0})
    result = checkout.doit("--no-wait-limits", env=_env(standins))
    assert result.returncode == 2, result.stdout + result.stderr
    record = _task(checkout, "t1")
    assert record["status"] == "PAUSED", record


def _env(standins: Standins) -> dict[str, str]:
    return {
        "PATH": f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}",
        "STANDIN_RECORD": str(standins.record_file),
        "STANDIN_SUMMARY": SUMMARY,
    }


def _task(checkout: Checkout, task: str) -> dict[str, Any]:
    return next(t for t in checkout.state(PLAN)["tasks"] if t["id"] == task)


def _status_of(checkout: Checkout, task: str) -> str:
    try:
        return str(_task(checkout, task)["status"])
    except (FileNotFoundError, ValueError, StopIteration):
        return ""
