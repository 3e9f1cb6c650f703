"""Plan keys checked and inherited by their declarations (orchlib/plan/keys.py).

The spec hashes of a representative plan are pinned: a changed hash would re-run every
finished task of every user's checkout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
