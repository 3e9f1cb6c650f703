"""The task prompt, rendered from `templates/task.md.j2` with plan text passed only as data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from orchlib.errors import ConfigError
from orchlib.plan import Plan, Project, Task
from orchlib.state.templates import PACKAGED, TASK_TEMPLATE, template_dirs, template_source

__all__ = ["PACKAGED", "TASK_TEMPLATE", "DoneDependency", "PromptInput", "render",
           "template_dirs", "template_source"]  # fmt: skip

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True)
class DoneDependency:
    """A finished dependency and what its agent reported."""

    id: str
    title: str
    project: str
    summary: str


@dataclass(frozen=True)
class PromptInput:
    """Everything one attempt's prompt says beyond the plan itself."""

    terminal_id: str
    attempt: int
    dependencies: Sequence[DoneDependency] = ()
    questions: Sequence[tuple[str, str]] = ()
    feedback: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=8)
def _environment(dirs: tuple[Path, ...]) -> jinja2.Environment:
    import jinja2  # only runs that dispatch agents pay for it

    loader = jinja2.FileSystemLoader([str(d) for d in dirs])
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


def render(
    checkout: Path, plan: Plan, task: Task, given: PromptInput, project: Project | None = None
) -> str:
    """Render the prompt of one attempt; a broken template is a ConfigError, not a traceback.

    `project` is where the agent works when that is not the project folder (its worktree).
    """
    project = project or plan.projects[task.project]
    context: dict[str, object] = {
        "task": task,
        "project": project,
        "plan": plan,
        "terminal_id": given.terminal_id,
        "attempt": given.attempt,
        "dependencies": list(given.dependencies),
        "plan_context": plan.context,
        "project_context": project.context,
        "questions": [{"question": q, "answer": a} for q, a in given.questions],
        "feedback": given.feedback,
        **given.extra,
    }
    return render_template(checkout, TASK_TEMPLATE, context)


def render_template(checkout: Path, name: str, context: dict[str, object]) -> str:
    """Render the template `name` (a checkout copy first) with `context` as data only."""
    env = _environment(tuple(template_dirs(checkout)))
    import jinja2

    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or name
        line = getattr(exc, "lineno", None)
        at = f"{where}:{line}" if line else str(where)
        raise ConfigError(f"{at}: prompt template error: {exc}") from None
