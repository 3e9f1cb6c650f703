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
    """The stamp at `path` if it is whole and names `task_id`; a torn or foreign file is None."""
    data = read_json(path)
    if not data or data.get("taskId") != task_id or "finishedAt" not in data:
        return None
    return data


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


def expand(project: Project, patterns: tuple[str, ...]) -> dict[str, list[str]]:
    """Each glob (relative to the project) mapped to the sorted relative paths it matches."""
    root = str(project.root)
    found: dict[str, list[str]] = {}
    for pattern in patterns:
        matches = glob.glob(os.path.join(root, pattern), recursive=True)
        found[pattern] = sorted(os.path.relpath(m, root) for m in matches)
    return found


def missing_outputs(project: Project, task: Task) -> list[str]:
    """Declared outputs (globs) that match nothing."""
    return [p for p, hits in expand(project, task.outputs).items() if not hits]


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
