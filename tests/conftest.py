"""Shared fixtures: checkouts in tmp_path, the fake agent, and `doit` run as a real process."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parent
FAKE_AGENT = TESTS / "fake_agent.py"

SEED_PLAN: dict[str, Any] = {
    "planId": "orch-abc123",
    "summary": "E-commerce platform with React frontend and Node.js backend",
    "createdAt": "2024-01-15T10:00:00Z",
    "projects": [
        {"name": "ecommerce-frontend", "path": "./ecommerce-frontend",
         "techStack": "React + TypeScript + TailwindCSS",
         "description": "Customer-facing web application"},
        {"name": "ecommerce-backend", "path": "./ecommerce-backend",
         "techStack": "Node.js + Express + PostgreSQL", "description": "REST API server"},
    ],
    "tasks": [
        {"id": "t1", "project": "ecommerce-frontend", "title": "Initialize React project",
         "description": "Create React app with TypeScript, configure routing and TailwindCSS",
         "dependsOn": [], "complexity": "low", "estimatedMinutes": 10},
        {"id": "t2", "project": "ecommerce-backend", "title": "Initialize backend project",
         "description": "Set up Express server with TypeScript, configure PostgreSQL connection",
         "dependsOn": [], "complexity": "low", "estimatedMinutes": 10},
        {"id": "t3", "project": "ecommerce-backend", "title": "Implement authentication API",
         "description": "JWT auth with login, register, refresh endpoints",
         "dependsOn": ["t2"], "complexity": "medium", "estimatedMinutes": 30},
        {"id": "t4", "project": "ecommerce-frontend", "title": "Build auth UI",
         "description": "Login/register pages, auth context, token management",
         "dependsOn": ["t1", "t3"], "complexity": "medium", "estimatedMinutes": 25},
    ],
    "executionOrder": [["t1", "t2"], ["t3"], ["t4"]],
}  # fmt: skip


class Checkout:
    """A checkout in tmp_path with a fake agent; runs `doit` as a subprocess."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "plans").mkdir(parents=True)
        (root / "dodo.py").write_text("from orchlib.dodo import *  # noqa: F403\n")
        self.scenario_file = root / "scenario.json"
        self.record_file = root / "record.jsonl"
        self.started: list[subprocess.Popen[str]] = []  # stopped at teardown if a test did not
        self.scenario({})

    def agent(self, prompt: str = "stdin") -> dict[str, Any]:
        """A custom agent mapping that runs the fake agent."""
        argv = [sys.executable, str(FAKE_AGENT), str(self.scenario_file), str(self.record_file)]
        spec: dict[str, Any] = {"command": argv, "prompt": prompt}
        if prompt != "stdin":
            spec["env"] = {"FAKE_NO_STDIN": "1"}
        return spec

    def seed(self, **extra: Any) -> dict[str, Any]:
        """The seed plan verbatim plus a fake agent (and any extra plan keys)."""
        plan = copy.deepcopy(SEED_PLAN)
        plan["agent"] = self.agent()
        plan.update(extra)
        return self.write_plan(plan)

    def write_plan(self, plan: dict[str, Any] | str, name: str = "plan.json") -> dict[str, Any]:
        text = plan if isinstance(plan, str) else json.dumps(plan, indent=2, ensure_ascii=False)
        (self.root / "plans" / name).write_text(text, encoding="utf-8")
        return plan if isinstance(plan, dict) else {}

    def scenario(self, mapping: dict[str, Any]) -> None:
        self.scenario_file.write_text(json.dumps(mapping))

    def doit(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "doit", *args], cwd=self.root, capture_output=True,
            text=True, timeout=timeout, env=self._env(env),
        )  # fmt: skip

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "doit", *args], cwd=self.root, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=self._env(env), start_new_session=True,
        )  # fmt: skip
        self.started.append(proc)
        return proc

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("COLUMNS", None)
        env.update(extra or {})
        return env

    def records(self) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        return [json.loads(line) for line in self.record_file.read_text().splitlines()]

    def dispatched(self) -> list[str]:
        return [r["task"] for r in self.records()]

    def stamp(self, task: str, plan: str = "orch-abc123") -> dict[str, Any] | None:
        path = self.root / ".orch" / plan / "stamps" / f"{task}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def state(self, plan: str = "orch-abc123") -> dict[str, Any]:
        return json.loads((self.root / ".orch" / plan / "state.json").read_text())

    def md(self, plan: str = "orch-abc123") -> str:
        return (self.root / ".orch" / plan / "orchestration.md").read_text()

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError("condition not reached in time")


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    co = Checkout(tmp_path / "checkout")
    yield co
    _kill_leftovers(co)


def _kill_leftovers(co: Checkout) -> None:
    for rec in co.records():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(rec["pid"], signal.SIGKILL)
    # A `doit` a failed test left running would be collected during a later test, whose
    # filterwarnings=error then fails on the ResourceWarning: stop and reap it here.
    for proc in co.started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=10)


def pid_alive(pid: int) -> bool:
    """True while pid runs (zombies count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
