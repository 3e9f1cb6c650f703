"""Completion stamps: the doit target of a task, and the source of truth for "done".

A stamp is JSON in `.orch/<planId>/stamps/<taskId>.json`. A task is up to date when its
stamp parses, names the task, carries the current spec hash, its outputs exist, its inputs
are unchanged, and no dependency was stamped after it (Make semantics).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchlib.fsutil import atomic_write, read_json
from orchlib.plan import Plan, Project, Task

Stamp = dict[str, Any]


def stamp_path(orch_dir: Path, plan_id: str, task_id: str) -> Path:
    """Where a task's stamp lives."""
    return orch_dir / plan_id / "stamps" / f"{task_id}.json"


def spec_hash(plan: Plan, task: Task, template_text: str) -> str:
    """Hash of everything that defines the work: a change re-runs the task."""
    project = plan.projects[task.project]
    spec = {
        "title": task.title,
        "description": task.description,
        "agent": _agent_repr(task),
        "command": task.command,
        "verify": task.verify,
        "outputs": task.outputs,
        "inputs": task.inputs,
        "context": [plan.context, project.context],
        "template": template_text,
    }
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _agent_repr(task: Task) -> list[Any]:
    spec = task.agent
    return [spec.profile, spec.command, spec.prompt, spec.args, sorted(spec.env.items())]


def read(path: Path, task_id: str) -> Stamp | None:
    """The stamp at `path` if it is whole, well-formed and names `task_id`; else None."""
    data = read_json(path)
    if data is None or shape_problem(data, task_id) is not None:
        return None
    return data


def damage(path: Path, task_id: str) -> str | None:
    """What is wrong with the stamp file at `path`; None when it is valid or absent."""
    if not os.path.lexists(path):
        return None
    if path.is_dir():
        return "it is a folder"
    data = read_json(path)
    return "not a JSON object" if data is None else shape_problem(data, task_id)


_TEXT_FIELDS = ("specHash", "summary", "terminalId")


def shape_problem(data: Stamp, task_id: str) -> str | None:
    """The first field of a stamp with the wrong type (a hand edit, a foreign tool)."""
    if data.get("taskId") != task_id:
        return f"taskId is {data.get('taskId')!r}, not {task_id!r}"
    if not isinstance(data.get("finishedAt"), str):
        return "finishedAt is not a time"
    for key in _TEXT_FIELDS:
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
    atomic_write(path, json.dumps(stamp, indent=2, ensure_ascii=False) + "\n", durable=False)


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


def expand(
    project: Project, patterns: tuple[str, ...], inside: bool = False
) -> dict[str, list[str]]:
    """Each glob (relative to the project) mapped to the sorted relative paths it matches;
    with `inside`, only files that stay in the project once symlinks are resolved."""
    root = str(project.root)
    real_root = os.path.realpath(root) if inside else ""
    found: dict[str, list[str]] = {}
    for pattern in patterns:
        matches = glob.glob(os.path.join(root, pattern), recursive=True)
        if inside:
            matches = [m for m in matches if _within(os.path.realpath(m), real_root)]
        found[pattern] = sorted(os.path.relpath(m, root) for m in matches)
    return found


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def missing_outputs(project: Project, task: Task) -> list[str]:
    """Declared outputs (globs) that match nothing in the project: a match reached through
    a symlink to a file outside it does not count (as a project path outside is refused)."""
    return [p for p, hits in expand(project, task.outputs, inside=True).items() if not hits]


def fingerprint_inputs(project: Project, task: Task) -> dict[str, list[Any]]:
    """Size, mtime and sha256 of every input file, keyed by path relative to the project."""
    prints: dict[str, list[Any]] = {}
    for hits in expand(project, task.inputs).values():
        for rel in hits:
            full = project.root / rel
            if full.is_file():
                st = full.stat()
                prints[rel] = [st.st_size, st.st_mtime_ns, _sha256(full)]
    return prints


def changed_input(project: Project, task: Task, recorded: Mapping[str, Any]) -> str | None:
    """The first input that differs from the stamp's record, or None (cheap stat first)."""
    current = {rel for hits in expand(project, task.inputs).values() for rel in hits}
    current = {rel for rel in current if (project.root / rel).is_file()}
    for rel in sorted(current ^ set(recorded)):
        return rel
    for rel in sorted(current):
        size, mtime_ns, digest = recorded[rel]
        st = (project.root / rel).stat()
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) and _sha256(
            project.root / rel
        ) != digest:
            return rel
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def why_not_done(
    plan: Plan, task: Task, stamp: Stamp | None, spec: str, deps: Mapping[str, Stamp | None]
) -> str | None:
    """Why the task must run, or None when it is up to date."""
    if stamp is None:
        return "no completion stamp"
    if stamp.get("specHash") != spec:
        return "the task's spec changed since it was done"
    project = plan.projects[task.project]
    missing = missing_outputs(project, task)
    if missing:
        return f"output {missing[0]!r} is missing"
    if task.inputs:
        changed = changed_input(project, task, stamp.get("inputs") or {})
        if changed:
            return f"input {changed!r} changed"
    for dep_id, dep in deps.items():
        if dep is None:
            return f"dependency {dep_id} is not done"
        if str(dep["finishedAt"]) > str(stamp["finishedAt"]):
            return f"dependency {dep_id} was redone after it"
    return None
