"""Faults end to end (issue 16): hostile output, hostile plan text, damaged runtime files.

Every test runs the real `doit` as a subprocess on a checkout in tmp_path, with real
agent processes; each one failed on the code before its fix.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from conftest import Checkout

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
