"""Completion stamps: the doit target of a task, and the source of truth for "done".

A stamp is JSON in `.orch/<planId>/stamps/<taskId>.json`, read and written only through
`Stamp`'s one JSON form. What makes a task up to date is decided in `state.uptodate`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchlib.fsutil import atomic_write, read_json
from orchlib.layout import stamp_in
from orchlib.plan import AgentSpec, Plan, Task


def stamps_dir(orch_dir: Path, plan_id: str) -> Path:
    """The folder of a plan's stamps."""
    return orch_dir / plan_id / "stamps"


def stamp_path(orch_dir: Path, plan_id: str, task_id: str) -> Path:
    """Where a task's stamp lives."""
    return stamp_in(orch_dir, plan_id, task_id)


def spec_hash(plan: Plan, task: Task, template_text: str) -> str:
    """Hash of everything that defines the work: a change re-runs the task."""
    from orchlib.plan import keys  # the key declarations: a cached no-op needs none

    project = plan.projects[task.project]
    spec: dict[str, Any] = {name: getattr(task, name) for name in keys.spec_fields(keys.TASK)}
    spec["agent"] = _agent_repr(task)
    if task.review is None:  # absent, not null: a plan without review keeps its stamps
        del spec["review"]
    else:
        spec["review"] = [_one_agent(task.review.agent), task.review.instructions]
    # The plan's and the project's keys in the spec reach every task as one "context" list.
    handed_down = ((plan, keys.PLAN), (project, keys.PROJECT))
    spec["context"] = [getattr(o, name) for o, declared in handed_down
                       for name in keys.spec_fields(declared)]  # fmt: skip
    spec["template"] = template_text
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _agent_repr(task: Task) -> list[Any]:
    """The agent as the spec hash sees it; a fallback list as written, whichever agent ran."""
    if task.agents:
        return [_one_agent(spec) for spec in task.agents]
    return _one_agent(task.agent)


def _one_agent(spec: AgentSpec) -> list[Any]:
    return [spec.profile, spec.command, spec.prompt, spec.args, sorted(spec.env.items())]


def read(path: Path, task_id: str) -> Stamp | None:
    """The stamp at `path` if it is whole, well-formed and names `task_id`; else None."""
    data = read_json(path)
    if data is None or data.get("taskId") != task_id:
        return None
    try:
        return Stamp.from_json(data)
    except StampError:
        return None


def damage(path: Path, task_id: str) -> str | None:
    """What is wrong with the stamp file at `path`; None when it is valid or absent."""
    if not os.path.lexists(path):
        return None
    if path.is_dir():
        return "it is a folder"
    data = read_json(path)
    return "not a JSON object" if data is None else shape_problem(data, task_id)


class StampError(ValueError):
    """A stamp file whose JSON has the wrong shape (a hand edit, a foreign tool)."""


InputPrint = list[Any]  # [size, mtime_ns, sha256] of one input file

# The JSON keys in the order they are written; each optional one only when present.
_KEYS = {
    "taskId": "task_id", "planId": "plan_id", "project": "project", "title": "title",
    "summary": "summary", "finishedAt": "finished_at", "attempt": "attempt",
    "terminalId": "terminal_id", "specHash": "spec_hash", "durationSeconds": "duration_seconds",
    "agent": "agent", "inputs": "inputs", "verify": "verify", "merge": "merge",
    "sessionId": "session_id", "usage": "usage", "review": "review", "race": "race",
}  # fmt: skip
_ALWAYS = ("taskId", "summary", "finishedAt", "terminalId", "inputs")
_TEXT = ("specHash", "summary", "terminalId")
# Keys no check ever read: a value of another type is kept as it was, untyped, in `extra`.
_LOOSE_TEXT = ("planId", "project", "title", "agent", "sessionId")
_LOOSE_MAP = ("verify", "merge", "usage", "review", "race")


@dataclass(frozen=True)
class Stamp:
    """A completion stamp (DESIGN §3), read and written only through its one JSON form."""

    task_id: str
    finished_at: str
    summary: str = ""
    attempt: int | None = None
    terminal_id: str = ""
    spec_hash: str | None = None
    duration_seconds: float | None = None
    inputs: Mapping[str, InputPrint] = field(default_factory=dict)
    plan_id: str | None = None
    project: str | None = None
    title: str | None = None
    agent: str | None = None
    verify: Mapping[str, Any] | None = None
    merge: Mapping[str, Any] | None = None
    session_id: str | None = None
    usage: Mapping[str, Any] | None = None
    review: Mapping[str, Any] | None = None  # {agent, verdict, summary, usage} (DESIGN §16)
    race: Mapping[str, Any] | None = None  # {winner, racers} (DESIGN §16)
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys of other versions, kept

    @classmethod
    def from_json(cls, data: object) -> Stamp:
        """The stamp a parsed JSON value holds; StampError names the first wrong field."""
        if not isinstance(data, dict):
            raise StampError("not a JSON object")
        problem = _problem(data)
        if problem is not None:
            raise StampError(problem)
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in _KEYS and _fits(key, value):
                known[_KEYS[key]] = value
            else:
                extra[key] = value
        return cls(**known, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the keys as `run.finish` has always written them, then the rest."""
        out: dict[str, Any] = {}
        for key, name in _KEYS.items():
            value = getattr(self, name)
            if key in _ALWAYS or value is not None:
                out[key] = dict(value) if isinstance(value, Mapping) else value
        return {**out, **self.extra}

    @property
    def attempt_number(self) -> int:
        """The attempt that finished, 0 when the stamp does not say."""
        return self.attempt or 0


def _fits(key: str, value: object) -> bool:
    if key in _LOOSE_TEXT:
        return isinstance(value, str)
    if key in _LOOSE_MAP:
        return isinstance(value, dict)
    return True  # checked by _problem


def _problem(data: Mapping[str, Any]) -> str | None:
    if not isinstance(data.get("taskId"), str):
        return "taskId is not text"
    if not isinstance(data.get("finishedAt"), str):
        return "finishedAt is not a time"
    for key in _TEXT:
        if key in data and not isinstance(data[key], str):
            return f"{key} is not text"
    attempt = data.get("attempt", 0)
    if not isinstance(attempt, int) or isinstance(attempt, bool):
        return "attempt is not a whole number"
    if not isinstance(data.get("durationSeconds", 0), int | float):
        return "durationSeconds is not a number"
    inputs = data.get("inputs", {})
    if not isinstance(inputs, dict) or not all(_input_print(v) for v in inputs.values()):
        return "inputs is not a map of file -> [size, mtime, sha256]"
    return None


def shape_problem(data: object, task_id: str) -> str | None:
    """The first thing wrong with a stamp's JSON for `task_id`, or None when it is valid."""
    if isinstance(data, dict) and data.get("taskId") != task_id:
        return f"taskId is {data.get('taskId')!r}, not {task_id!r}"
    try:
        Stamp.from_json(data)
    except StampError as err:
        return str(err)
    return None


def _input_print(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(n, int) for n in value[:2])
        and isinstance(value[2], str)
    )


def write(path: Path, stamp: Stamp) -> None:
    """Write a stamp atomically: a reader sees the old state or the whole new one.

    Not fsynced: a stamp must not outlive the work it certifies, and the agent's own files
    were not fsynced either. After a power loss a torn or missing stamp reads as "not
    done", so the task simply runs again. (It also keeps fsync off every dependent's path.)
    """
    atomic_write(
        path, json.dumps(stamp.to_json(), indent=2, ensure_ascii=False) + "\n", durable=False
    )


def remove(path: Path) -> bool:
    """Delete a stamp; True if there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def forget(path: Path) -> bool:
    """Set a stamp aside (`<taskId>.json.forgotten`): the task runs again, its record is kept."""
    try:
        os.replace(path, path.with_name(path.name + ".forgotten"))
    except FileNotFoundError:
        return False
    return True
