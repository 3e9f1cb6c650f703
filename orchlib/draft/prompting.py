"""The drafting prompt, rendered from `templates/draft.md.j2` (goal and plans only as data)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchlib.draft.store import DraftFiles, DraftState
from orchlib.errors import PlanError
from orchlib.layout import ORCH
from orchlib.plan.file import SUFFIXES, load_plan
from orchlib.run.prompt import render_template

TEMPLATE = "draft.md.j2"
# Runtime and tool folders that are no project a plan could build on.
_SKIP = {ORCH, ".git", ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache"}
_MAX_ENTRIES = 60
_MAX_PREVIOUS = 20_000  # characters of the previous draft repeated in the prompt


@dataclass(frozen=True)
class ExistingPlan:
    """A plan file already in plans/, as the prompt and the checks see it."""

    file: str
    plan_id: str
    text: str


def existing_plans(checkout: Path) -> list[ExistingPlan]:
    """Every plan file in plans/ with its id and a one-line description (or its first error)."""
    found = []
    folder = checkout / "plans"
    files = sorted(p for p in folder.glob("*") if p.suffix in SUFFIXES and p.is_file())
    for path in files:
        name = path.relative_to(checkout).as_posix()
        try:
            plan = load_plan(path, checkout)
        except PlanError as exc:
            found.append(ExistingPlan(name, "", f"invalid ({exc.lines()[0]})"))
            continue
        projects = ", ".join(f"{p.name} ({p.path})" for p in plan.projects.values())
        text = f"planId {plan.plan_id}: {plan.summary or 'no summary'}; projects: {projects}"
        found.append(ExistingPlan(name, plan.plan_id, text))
    return found


def top_entries(checkout: Path) -> list[str]:
    """The checkout's top-level folders (with `/`) and files, runtime folders left out."""
    try:
        entries = sorted(os.scandir(checkout), key=lambda e: e.name)
    except OSError:
        return []
    shown = [
        f"{e.name}/" if e.is_dir() else e.name
        for e in entries
        if e.name not in _SKIP and not e.name.endswith(".egg-info")
    ]
    if len(shown) > _MAX_ENTRIES:
        shown = [*shown[:_MAX_ENTRIES], f"... and {len(shown) - _MAX_ENTRIES} more"]
    return shown


def render(
    files: DraftFiles, state: DraftState, terminal_id: str, agent_name: str, taken: list[str]
) -> str:
    """The prompt of the draft's next dispatch."""
    plans = existing_plans(files.checkout)
    context: dict[str, object] = {
        "goal": state.goal,
        "terminal_id": terminal_id,
        "round": state.failed + 1,
        "checkout": str(files.checkout),
        "workdir": str(files.folder),
        "plan_file": str(files.plan),
        "plan_file_relative": files.relative(files.plan),  # as orchlib's error lines name it
        "plan_file_in_workdir": files.plan.relative_to(files.folder).as_posix(),
        "plan_id": state.plan_id,
        "taken_ids": taken,
        "agent_name": agent_name,
        "folders": top_entries(files.checkout),
        "plans": [{"file": p.file, "text": p.text} for p in plans],
        "questions": [{"question": q, "answer": a} for q, a in state.answered()],
        "errors": list(state.errors),
        "previous_draft": _previous(files) if state.errors else "",
    }
    return render_template(files.checkout, TEMPLATE, context)


def _previous(files: DraftFiles) -> str:
    try:
        text = files.plan.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    text = text.rstrip("\n")
    return text if len(text) <= _MAX_PREVIOUS else text[:_MAX_PREVIOUS] + "\n# ... (cut)"
