"""Spend (DESIGN §15) end to end: per-agent caps, fallback agents and budgets, through the
stand-in CLIs and the real `doit`."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout, pid_alive
from test_profiles import STANDINS, Standins
from webclient import serving

SINK = (
    "import json, sys\n"
    "with open(sys.argv[1], 'a') as f: f.write(json.dumps(sys.argv[2:]) + '\\n')\n"
)


@pytest.fixture
def standins(checkout: Checkout, tmp_path: Path) -> Iterator[Standins]:
    yield Standins(checkout, tmp_path)


def _spans(standins: Standins, delay: float) -> dict[str, tuple[float, float]]:
    """Each task's stand-in call as (start, end) epoch seconds (end = start + its delay)."""
    return {c["env"]["ORCH_TASK_ID"]: (c["time"], c["time"] + delay) for c in standins.calls()}


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.parametrize("form", ["named", "inline"])
def test_max_parallel_serialises_an_agent_across_projects_while_another_runs_alongside(
    standins: Standins, form: str
) -> None:
    slow = {"STANDIN_DELAY": "1"}
    capped = {"profile": "claude", "maxParallel": 1, "env": slow}
    agent: Any = "capped" if form == "named" else capped
    standins.plan(
        [
            {"id": "c1", "project": "a", "agent": agent},
            {"id": "c2", "project": "b", "agent": agent},
            {"id": "x1", "project": "c", "agent": {"profile": "codex", "env": slow}},
        ],
        projects=("a", "b", "c"),
        agents={"capped": capped},
    )
    # two slots: c2, waiting for claude's cap, must not hold the one codex needs
    result = standins.co.doit("-n", "2", env=_env(standins))
    assert result.returncode == 0, result.stdout + result.stderr
    spans = _spans(standins, 1.0)
    assert set(spans) == {"c1", "c2", "x1"}
    assert not _overlap(spans["c1"], spans["c2"]), spans  # the cap: one claude at a time
    first = min(spans["c1"], spans["c2"])
    assert _overlap(first, spans["x1"]), spans  # codex went ahead beside it


def _env(standins: Standins, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}",
        "STANDIN_RECORD": str(standins.record_file),
        **extra,
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "must be >= 1, got 0"),
        (-2, "must be >= 1, got -2"),
        ("3", "a whole number >= 1"),
        (1.5, "a whole number >= 1"),
    ],
)
def test_a_bad_max_parallel_is_a_located_plan_error(
    standins: Standins, value: Any, message: str
) -> None:
    standins.plan([{"id": "t1", "agent": "capped"}],
                  agents={"capped": {"profile": "claude", "maxParallel": value}})  # fmt: skip
    result = standins.co.doit("list")
    assert result.returncode != 0
    assert "agents.capped.maxParallel" in result.stdout + result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_a_fallback_list_moves_to_the_next_agent_at_a_usage_limit_using_no_retry(
    standins: Standins,
) -> None:
    over = {"STANDIN_LIMIT_UNTIL": f"{time.time() + 600:.3f}"}
    standins.plan(
        [{"id": "t1", "agent": [{"profile": "claude", "env": over}, "codex"]}],
        defaults={"retries": 0},
    )
    result = standins.co.doit(env=_env(standins))
    assert result.returncode == 0, result.stdout + result.stderr
    calls = standins.calls()
    assert [c["program"] for c in calls] == ["claude", "codex"]
    assert [c["env"]["ORCH_ATTEMPT"] for c in calls] == ["1", "2"]
    handed = calls[1]["prompt"]
    assert "Attempt 1 of this task ran on claude, which stopped at its usage limit" in handed
    assert "Claude AI usage limit reached" in handed  # the end of its transcript
    assert standins.task_state("t1")["status"] == "DONE"
    assert standins.task_state("t1")["agent"] == "codex"
    assert standins.stamp("t1")["agent"] == "codex"
    status = standins.co.doit("status").stdout
    assert "2 codex" in status, status  # the attempt, and the agent of the list that ran it
    shown = standins.co.doit("log", "prof:t1").stdout
    assert "All set." in shown and '"type"' not in shown, shown  # decoded as codex's output


def runaway(profile: str, steps: int = 40, **env: str) -> dict[str, Any]:
    """An agent that reports usage step by step and keeps working (0.25 s a step)."""
    given = {"STANDIN_STEPS": str(steps), "STANDIN_STEP_SLEEP": "0.25", **env}
    return {"profile": profile, "env": given}


def test_a_task_budget_stops_a_runaway_attempt_mid_way_and_fails_the_task(
    standins: Standins,
) -> None:
    standins.plan(
        [{"id": "t1", "agent": runaway("claude"), "budget": {"tokens": 100}}],
        defaults={"retries": 2},
    )
    began = time.monotonic()
    result = standins.co.doit(env=_env(standins))
    took = time.monotonic() - began
    assert result.returncode != 0, result.stdout + result.stderr  # a failed task
    # 40 steps of 0.25 s: the stop came at the second message (128 tokens), not the end
    assert took < 8, took
    calls = standins.calls()
    assert len(calls) == 1  # over budget uses no retry
    assert not pid_alive(calls[0]["pid"])
    record = standins.task_state("t1")
    assert record["status"] == "ERROR"
    assert record["error"] == "budget spent: 128 tokens of 100"
    assert record["spend"] == {"usd": 0.0, "tokens": 128}
    assert record["budget"] == {"tokens": 100}
    assert "budget spent: 128 tokens of 100" in result.stdout + result.stderr
    again = standins.co.doit(env=_env(standins))  # still spent: it fails again at once
    assert again.returncode != 0 and len(standins.calls()) == 1
    assert standins.task_state("t1")["error"] == "budget spent: 128 tokens of 100"
    assert standins.co.doit("forget", "prof:t1").returncode == 0
    assert standins.task_state("t1")["spend"] == {}  # forgotten: its spend starts over


def test_a_plan_budget_leaves_the_rest_pending_with_the_reason_and_raising_it_continues(
    standins: Standins,
) -> None:
    tasks = [
        {"id": "t1", "project": "a", "agent": runaway("opencode")},
        {"id": "t2", "project": "a", "agent": "opencode", "dependsOn": ["t1"]},
    ]
    notes = standins.co.root.parent / "notes.jsonl"
    sink = [sys.executable, "-c", SINK, str(notes), "{event}", "{message}"]
    standins.plan(tasks, projects=("a",), budget={"usd": 0.08}, notify=[{"command": sink}])
    began = time.monotonic()
    result = standins.co.doit(env=_env(standins))
    assert time.monotonic() - began < 8
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert "prof: plan budget spent ($0.10 of $0.08)" in said
    first = standins.task_state("t1")
    assert first["status"] == "PENDING"
    assert first["pendingReason"] == "plan budget spent ($0.10 of $0.08)"
    assert first["spend"] == {"usd": 0.1, "tokens": 2100}
    assert standins.task_state("t2")["status"] == "PENDING"
    state = standins.co.state("prof")
    assert state["spend"] == {"usd": 0.1, "tokens": 2100}
    assert state["budget"] == {"usd": 0.08}
    assert state["projects"][0]["spend"] == {"usd": 0.1, "tokens": 2100}
    assert len(standins.calls()) == 1
    status = standins.co.doit("status").stdout
    assert "held: plan budget spent ($0.10 of $0.08)" in status, status
    assert "budget $0.10 of $0.08" in status, status
    told = [json.loads(line) for line in notes.read_text().splitlines()]
    said = "Orchestration 'prof': plan budget spent ($0.10 of $0.08) in task 't1' (prof:t1)"
    assert ["budget_spent", said] in told, told
    dry = standins.co.doit("--dry-run").stdout
    assert "prof:t1  [agent opencode, spent $0.10, 2,100 tok, budget none]" in dry, dry

    tasks[0]["agent"] = "opencode"  # the budget raised, the agent no longer a runaway
    standins.plan(tasks, projects=("a",), budget={"usd": 5})
    again = standins.co.doit(env=_env(standins))
    assert again.returncode == 0, again.stdout + again.stderr
    assert [c["env"]["ORCH_TASK_ID"] for c in standins.calls()] == ["t1", "t1", "t2"]
    assert standins.task_state("t1")["spend"]["usd"] == pytest.approx(0.1154)


def test_budget_usd_caps_one_run_across_its_attempts(standins: Standins) -> None:
    standins.plan(
        [{"id": "t1", "project": "a", "agent": runaway("opencode")},
         {"id": "t2", "project": "b", "agent": runaway("opencode")}],
        projects=("a", "b"),
    )  # fmt: skip
    result = standins.co.doit("--budget-usd", "0.08", env=_env(standins))
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert "run budget spent ($0.10 of $0.08)" in said
    for task in ("t1", "t2"):
        record = standins.task_state(task)
        assert record["status"] == "PENDING", record
        assert record["pendingReason"].startswith("run budget spent"), record
    assert all(not pid_alive(c["pid"]) for c in standins.calls())
    bad = standins.co.doit("--budget-usd", "lots", env=_env(standins))
    assert bad.returncode == 3
    assert "--budget-usd lots: expected a number of US dollars >= 0" in bad.stdout + bad.stderr


def test_a_usd_budget_over_an_agent_reporting_tokens_only_is_a_warning(
    standins: Standins,
) -> None:
    standins.plan([{"id": "t1", "agent": "codex", "budget": {"usd": 1}}])
    result = standins.co.doit(env=_env(standins))
    assert result.returncode == 0, result.stdout + result.stderr
    warned = [line for line in result.stdout.splitlines() if "warning" in line]
    assert len(warned) == 1, result.stdout
    assert warned[0].startswith("orchlib: warning: plans/prof.json:"), warned
    assert "tasks[0].budget.usd: codex report tokens only" in warned[0]
    assert standins.task_state("t1")["spend"] == {"usd": 0.0, "tokens": 24885}


def test_the_ledger_stops_every_attempt_under_a_crossed_budget_once() -> None:
    from orchlib.plan import Budget, Plan, Project, Task
    from orchlib.run.spend import Crossing, Ledger, Spend

    tasks = {t: Task(id=t, project="a", title=t) for t in ("t1", "t2")}
    projects = {"a": Project(name="a", path="a", root=Path("a"))}
    plan = Plan(plan_id="p", source=Path("p.yaml"), budget=Budget(usd=1.0), projects=projects,
                tasks=tasks)  # fmt: skip
    ledger, told = Ledger(), []
    ledger.on_crossing = told.append
    ledger.load([plan], {("p", "t1"): Spend(0.5, 10)}, Budget())
    one, two = ledger.begin("p", tasks["t1"]), ledger.begin("p", tasks["t2"])
    one.report({"cost_usd": 0.25, "input_tokens": 1})
    assert not one.stopped and ledger.held("p", tasks["t2"]) is None
    two.report({"cost_usd": 0.5})  # 0.5 + 0.25 + 0.5 > 1.0
    assert one.reason == two.reason == "plan budget spent ($1.25 of $1.00)"
    assert told == [Crossing(("plan", "p"), "p", "t2", "plan budget spent ($1.25 of $1.00)")]
    two.report({"cost_usd": 0.75})  # already crossed: no second notice
    assert len(told) == 1
    assert ledger.held("p", tasks["t1"]) == "plan budget spent ($1.50 of $1.00)"
    assert ledger.own("p", tasks["t1"]) is None
    assert ledger.task_spend("p", "t1") == Spend(0.75, 11)


@pytest.mark.parametrize(
    ("task", "where", "message"),
    [
        ({"agent": []}, "tasks[0].agent", "an agent list must name at least one agent"),
        ({"agent": ["claude", "nope"]}, "tasks[0].agent[1]", "unknown agent profile 'nope'"),
        ({"budget": {"usd": -1}}, "tasks[0].budget.usd", "must be a number >= 0, got -1"),
        ({"budget": {"tokens": "many"}}, "tasks[0].budget.tokens", "expected a whole number"),
        ({"budget": {}}, "tasks[0].budget", "a budget sets usd, tokens or both"),
    ],
)
def test_bad_agent_lists_and_budgets_are_located_plan_errors(
    standins: Standins, task: dict[str, Any], where: str, message: str
) -> None:
    standins.plan([{"id": "t1", **task}])
    result = standins.co.doit("list")
    assert result.returncode == 3, result.stdout + result.stderr
    line = next(x for x in result.stderr.splitlines() if where in x)
    assert line.startswith("plans/prof.json:") and message in line, result.stderr


def test_preflight_checks_every_agent_of_a_fallback_list(standins: Standins) -> None:
    standins.plan([{"id": "t1", "agent": ["claude", {"command": ["no-such-cli-x"]}]}])
    result = standins.co.doit(env=_env(standins))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "agent 'no-such-cli-x' not found on PATH" in result.stdout + result.stderr
    assert standins.calls() == []


def test_status_and_the_dashboard_show_a_task_spend_against_its_budget(standins: Standins) -> None:
    standins.plan([{"id": "t1", "agent": "opencode", "budget": {"usd": 1}}])
    assert standins.co.doit(env=_env(standins)).returncode == 0
    table = standins.co.doit("status").stdout
    header, row = table.splitlines()[1:3]
    assert "SPEND" in header.split()
    assert "$0.02 of $1.00" in row, table
    with serving(standins.co.root) as server:  # the dashboard's API: the same record
        task = server.get("/api/plans/prof").json()["tasks"][0]
    assert task["spend"] == {"usd": 0.0154, "tokens": 20057}, task
    assert task["budget"] == {"usd": 1.0} and task["agent"] == "opencode", task


def test_status_shows_a_project_s_spend_against_its_budget(standins: Standins) -> None:
    plan = {
        "planId": "prof",
        "projects": [
            {"name": "app", "path": "app", "budget": {"usd": 2, "tokens": 90000}},
            {"name": "web", "path": "web"},
        ],
        "tasks": [
            {"id": "t1", "title": "t1", "project": "app", "agent": "opencode"},
            {"id": "t2", "title": "t2", "project": "web", "agent": "opencode"},
        ],
    }
    standins.co.write_plan(plan, "prof.json")  # fmt: skip
    assert standins.co.doit(env=_env(standins)).returncode == 0
    lines = standins.co.doit("status").stdout.splitlines()
    assert lines[1] == "  project app: budget $0.02 of $2.00, 20,057 tok of 90,000 tok", lines
    assert not any(line.startswith("  project web") for line in lines)  # no budget, no line


def test_a_project_budget_holds_its_tasks_and_a_task_budget_fails_only_its_own() -> None:
    from orchlib.plan import Budget, Plan, Project, Task
    from orchlib.run.spend import Ledger

    capped = Task(id="t1", project="a", title="t1", budget=Budget(tokens=50))
    other = Task(id="t2", project="a", title="t2")
    elsewhere = Task(id="t3", project="b", title="t3")
    projects = {"a": Project(name="a", path="a", root=Path("a"), budget=Budget(tokens=100)),
                "b": Project(name="b", path="b", root=Path("b"))}  # fmt: skip
    plan = Plan(plan_id="p", source=Path("p.yaml"), projects=projects,
                tasks={t.id: t for t in (capped, other, elsewhere)})  # fmt: skip
    ledger = Ledger()
    ledger.load([plan], {}, Budget(tokens=1000))
    meter = ledger.begin("p", capped)
    meter.report({"input_tokens": 60})
    assert meter.reason == "budget spent: 60 tokens of 50"
    assert ledger.own("p", capped) == "budget spent: 60 tokens of 50"
    assert ledger.held("p", other) is None
    ledger.begin("p", other).report({"output_tokens": 41})
    assert ledger.held("p", other) == "project a budget spent (101 tokens of 100)"
    assert ledger.held("p", elsewhere) is None  # another project goes on


def test_with_every_agent_of_the_list_paused_the_task_waits_for_the_earliest_reset(
    standins: Standins,
) -> None:
    now = time.time()
    claude = {"profile": "claude", "env": {"STANDIN_LIMIT_UNTIL": f"{now + 30:.3f}"}}
    # opencode's retry-after is in seconds (codex names a clock minute)
    opencode = {"profile": "opencode", "env": {"STANDIN_LIMIT_UNTIL": f"{now + 3:.3f}"}}
    standins.plan([{"id": "t1", "agent": [claude, opencode]}], defaults={"retries": 0})
    result = standins.co.doit(env=_env(standins), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = standins.calls()
    programs = [c["program"] for c in calls]
    # opencode's reset came first (its retry-after is whole seconds: it may report once more)
    assert programs[0] == "claude" and set(programs[1:]) == {"opencode"}, programs
    assert calls[-1]["time"] >= now + 2 and calls[-1]["time"] < now + 20  # not claude's 30 s
