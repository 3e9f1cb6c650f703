"""Plan keys checked and inherited by their declarations (orchlib/plan/keys.py).

The spec hashes of a representative plan are pinned: a changed hash would re-run every
finished task of every user's checkout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchlib.plan import Plan
from orchlib.plan.file import load_plan
from orchlib.state.stamps import spec_hash

# Most keys at every level: agents built on each other, defaults, inheritance, fallbacks.
REPRESENTATIVE: dict[str, Any] = {
    "planId": "rep",
    "summary": "S",
    "createdAt": "2024-01-15T10:00:00Z",
    "context": "plan context",
    "schedule": "phases",
    "agents": {
        "fast": {"profile": "claude", "args": ["--model", "haiku"], "env": {"A": "1"}},
        "mine": {"command": ["my-agent", "--go"], "prompt": "stdin", "maxParallel": 2},
    },
    "agent": "fast",
    "defaults": {"retries": 2, "timeout": "1h", "sandbox": "none", "review": "codex"},
    "environment": {"inherit": "core", "set": {"PLAN": "1"}},
    "budget": {"usd": 5},
    "notify": ["ntfy://topic", {"command": ["notify-send", "{title}"], "events": ["task_error"]}],
    "projects": [
        {"name": "api", "path": "api", "context": "api context", "techStack": "Go",
         "agent": "codex", "isolation": "worktree", "parallel": 3, "race": 2,
         "review": {"agent": "mine", "instructions": "be strict"}, "stallTimeout": "5m",
         "environment": {"exclude": ["*TOKEN*"]}},
        {"name": "web", "path": "web", "description": "D", "sandbox": "none"},
    ],
    "tasks": [
        {"id": "t1", "project": "api", "title": "T1", "description": "D1",
         "verify": ["go", "test"], "outputs": "out/*", "inputs": ["src/**"]},
        {"id": "t2", "project": "web", "title": "T2", "dependsOn": ["t1"],
         "agent": ["mine", "claude"], "retries": 0, "timeout": 0, "complexity": "low",
         "estimatedMinutes": 5, "budget": {"tokens": 1000}},
        {"id": "t3", "project": "web", "title": "T3", "dependsOn": ["t2"],
         "command": "make", "approve": True, "environment": {"include": ["HOME"]}},
        {"id": "t4", "project": "api", "title": "T4", "agent": {"profile": "fast",
         "session": "continue"}, "race": ["claude", "codex"], "review": "claude"},
        {"id": "t5", "project": "web", "title": "T5"},
    ],
}  # fmt: skip

PINNED = {
    "t1": "6a0a4de3e3b6d55ff68862ffaf395d45",
    "t2": "eebf669e5f6781a4941da79017495f40",
    "t3": "8bbe870fe724622fe7b59c4ec4101750",
    "t4": "bf4f1373c50e57b3474f3a98f1ec4fa1",
    "t5": "dddc51e74b9b0a1fdeafba463f80e0c9",
}


def _load(tmp_path: Path, data: dict[str, Any]) -> Plan:
    path = tmp_path / "plans" / "rep.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data))
    return load_plan(path, tmp_path)


def test_the_spec_hashes_of_a_representative_plan_are_pinned(tmp_path: Path) -> None:
    plan = _load(tmp_path, REPRESENTATIVE)
    found = {t: spec_hash(plan, task, "TEMPLATE") for t, task in plan.tasks.items()}
    assert found == PINNED


# --- every declared key is checked by its declaration ---------------------------------------

MINIMAL: dict[str, Any] = {
    "planId": "keys",
    "projects": [{"name": "p", "path": "p"}],
    "tasks": [{"id": "t1", "project": "p", "title": "T"}],
}

# A bad value for each declared key, whatever its level: a declared key missing here fails
# the test below, so a new key comes with the proof that its check runs.
BAD: dict[str, object] = {
    "planId": "a b", "projects": "x", "tasks": "x", "summary": 3, "createdAt": 3,
    "executionOrder": "x", "agent": 3, "agents": 3, "defaults": 3, "context": 3,
    "schedule": "x", "notify": "x", "allowOutsidePaths": "x", "environment": 3,
    "sandboxWritable": "x", "budget": 3, "name": 3, "path": 3, "techStack": 3,
    "description": 3, "isolation": "x", "parallel": "x", "retries": "x", "timeout": "x",
    "stallTimeout": "x", "exitGrace": "x", "retryOnError": "x", "approve": "x",
    "sandbox": "x", "review": 3, "race": "x", "id": "a b", "project": 3, "title": 3,
    "dependsOn": "x", "complexity": 3, "estimatedMinutes": "x", "command": 3, "verify": 3,
    "outputs": 3, "inputs": 3, "executor": "x",
}  # fmt: skip


def _levels() -> list[tuple[str, str]]:
    from orchlib.plan import keys

    where = {"plan": keys.PLAN, "defaults": keys.DEFAULTS, "project": keys.PROJECT,
             "task": keys.TASK}  # fmt: skip
    return [(level, key.name) for level, declared in where.items() for key in declared]


def _errors(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    from orchlib.errors import PlanError

    try:
        _load(tmp_path, data)
    except PlanError as error:
        return error.lines()
    return []


def test_every_declared_key_at_every_level_has_a_bad_value_to_try() -> None:
    assert {name for _, name in _levels()} <= set(BAD)


@pytest.mark.parametrize(("level", "name"), _levels())
def test_a_bad_value_of_each_declared_key_is_reported_at_that_key(
    tmp_path: Path, level: str, name: str
) -> None:
    data = json.loads(json.dumps(MINIMAL))
    at = {"plan": (data, ""), "defaults": (data.setdefault("defaults", {}), "defaults."),
          "project": (data["projects"][0], "projects[0]."),
          "task": (data["tasks"][0], "tasks[0].")}  # fmt: skip
    mapping, prefix = at[level]
    mapping[name] = BAD[name]
    found = _errors(tmp_path, data)
    assert any(f": {prefix}{name}: " in line for line in found), found


def test_a_good_value_of_each_key_is_taken_and_a_missing_one_inherited(tmp_path: Path) -> None:
    data = json.loads(json.dumps(MINIMAL))
    data["defaults"] = {"retries": 4, "sandbox": "none", "review": "codex"}
    data["agent"] = "codex"
    data["projects"][0].update({"stallTimeout": "2m", "environment": {"set": {"A": "1"}}})
    data["tasks"].append({"id": "t2", "project": "p", "title": "T2", "retries": 0,
                          "agent": "claude", "environment": {"set": {"B": "2"}}})  # fmt: skip
    plan = _load(tmp_path, data)
    t1, t2 = plan.tasks["t1"], plan.tasks["t2"]
    assert (t1.limits.retries, t1.limits.stall_timeout, t2.limits.retries) == (4, 120.0, 0)
    assert (t1.agent.name, t2.agent.name, t1.sandbox, t1.review is not None) == (
        "codex", "claude", "none", True)  # fmt: skip
    assert dict(t1.environment.set) == {"A": "1"}
    assert dict(t2.environment.set) == {"A": "1", "B": "2"}  # merged, nearest wins


def test_a_new_key_is_one_declaration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key declared with a check and `inherited_from` is allowed, checked, located,
    defaulted and inherited with no other change to the schema."""
    import importlib

    from orchlib.plan import keys, schema
    from orchlib.plan.checks import count
    from orchlib.plan.level import Level

    key = keys.PlanKey("priority", "", count, 1, inherited_from=("project", "defaults"))
    monkeypatch.setattr(keys, "DEFAULTS", (*keys.DEFAULTS, key))
    monkeypatch.setattr(keys, "PROJECT", (*keys.PROJECT, key))
    monkeypatch.setattr(keys, "TASK", (*keys.TASK, key))
    try:
        importlib.reload(schema)
        data = json.loads(json.dumps(MINIMAL))
        data["tasks"][0]["priority"] = -1
        assert any(
            ": tasks[0].priority: must be >= 0, got -1" in e for e in _errors(tmp_path, data)
        )
        data["defaults"] = {"priority": 5}
        del data["tasks"][0]["priority"]
        builder = schema._Builder(schema.Issues(), data, tmp_path)
        assert builder.plan(tmp_path / "plans" / "keys.json") is not None
        assert builder.reading.projects["p"]["priority"] == 5  # from the plan's defaults
        task = Level(builder.reading, {"id": "t9", "project": "p", "priority": 7}, ("tasks", 9),
                     builder.outer())  # fmt: skip
        schema.read(task, schema._TASK)
        assert task.get("priority") == 7
        task = Level(builder.reading, {"id": "t8", "project": "p"}, ("tasks", 8), builder.outer())
        schema.read(task, schema._TASK)
        assert task.get("priority") == 5  # through its project
    finally:
        monkeypatch.undo()
        importlib.reload(schema)
