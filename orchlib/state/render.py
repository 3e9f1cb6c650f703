"""orchestration.md (DESIGN §6): the state of a plan rendered through a jinja2 template.

Plan and agent text is data: it is escaped here for the place it lands (YAML front
matter, a markdown line or table cell, a mermaid label) and never becomes template source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from orchlib.errors import ConfigError
from orchlib.state.model import PlanState, ProjectRecord, Status, TaskRecord, aggregate_status
from orchlib.state.words import MERMAID, Shown, look_of, plain_look, shown_of, step
from orchlib.textsafe import flat_line

PACKAGED_TEMPLATES = Path(__file__).parent.parent / "templates"
TEMPLATE_NAME = "orchestration.md.j2"

# str.translate tables: one C pass per value (a value per cell, thousands per render).
_MARKDOWN = str.maketrans({"|": "\\|", "<": "&lt;", "[": "\\[", "]": "\\]", "`": "\\`"})
_MERMAID = str.maketrans({"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;"})
_PLAIN_YAML = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*|\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?")
# Compiled on first use (re's cache): a class spanning all of Unicode takes ~4 ms of CPU to
# compile, and most runs never quote a front-matter value.
_YAML_RAW = (
    "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}
_FRACTION = re.compile(r"\.\d+(?=Z$|[+-]\d\d:\d\d$)")

CLASS_STYLES = tuple(MERMAID.values())  # the graph's classDef lines


def md_text(text: str) -> str:
    """Text safe on one markdown line or in a table cell (no breaks, pipes, links, HTML)."""
    return flat_line(text).translate(_MARKDOWN)


def mermaid_text(text: str) -> str:
    """Text safe inside a quoted mermaid label (entity codes for quotes, #, <, >, backticks)."""
    return flat_line(text).translate(_MERMAID)


def yaml_scalar(text: str) -> str:
    """A front-matter value: plain when YAML reads it back as written, else double-quoted."""
    if _PLAIN_YAML.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    # A JSON string is a YAML double-quoted scalar once what YAML may not hold raw (controls,
    # DEL, C1, line separators, BOM, surrogates) is written as an escape.
    quoted = json.dumps(text, ensure_ascii=False)
    return re.sub(_YAML_RAW, lambda m: f"\\u{ord(m.group()):04x}", quoted)


def short_time(stamp: str) -> str:
    """An ISO time without its fraction of a second, as the seed's orchestration.md shows it."""
    return _FRACTION.sub("", stamp)


def state_label(task: TaskRecord) -> str:
    """`IN_PROGRESS 65%` for a running task, `PAUSED until 15:00`, else the status name."""
    if task.status is Status.IN_PROGRESS:
        return f"IN_PROGRESS {task.percent}%"
    if task.status is Status.PAUSED and task.paused_until:
        return f"PAUSED until {local_clock(task.paused_until)}"
    return plain_look(task.status).word


def local_clock(stamp: str) -> str:
    """`15:00` in local time for an ISO time today, `Dec 3 15:00` for another day."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return stamp
    if moment.date() == datetime.now().astimezone().date():
        return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")
    return f"{moment.strftime('%b')} {moment.day} {moment.strftime('%H:%M')}"


def template_path(template_dirs: Sequence[Path]) -> list[Path]:
    """Where templates are looked up: the given folders in order, then the packaged ones."""
    dirs = [Path(d) for d in template_dirs]
    return dirs if PACKAGED_TEMPLATES in dirs else [*dirs, PACKAGED_TEMPLATES]


class MarkdownRenderer:
    """Renders orchestration.md; the template is loaded (and checked) once."""

    def __init__(self, template_dirs: Sequence[Path], root: Path) -> None:
        import jinja2  # runs pay for it; `doit status` and the console do not

        self.root = root
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in template_path(template_dirs)]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(md=md_text, mermaid=mermaid_text, yaml=yaml_scalar)
        try:
            self._template = env.get_template(TEMPLATE_NAME)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{exc.filename}:{exc.lineno}: {exc.message}") from None

    def render(self, state: PlanState) -> str:
        """The orchestration.md text for `state`."""
        import jinja2

        try:
            return self._template.render(view(state, self.root))
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{self._template.filename}: {exc}") from None


def view(state: PlanState, root: Path) -> dict[str, object]:
    """The escaped values the orchestration.md template lays out."""
    bases = (root, root.resolve())
    # Without an ERROR anywhere, every skip comes from a QUESTION: such a phase is waiting.
    failed = any(t.status is Status.ERROR for t in state.tasks.values())
    skip = Status.SKIPPED if failed else Status.QUESTION
    return {
        "plan_id": yaml_scalar(state.plan_id),
        "created": yaml_scalar(state.created),
        "status": yaml_scalar(state.status.value),
        "summary": md_text(state.summary),
        "projects": [_project(p) for p in state.projects],
        "phases": [
            _phase(n, ids, state, bases, skip) for n, ids in enumerate(state.phases, start=1)
        ],
        "graph": _graph(state),
        "state": state,
    }


def _project(project: ProjectRecord) -> dict[str, str]:
    return {
        "name": md_text(project.name),
        "path": md_text(project.path),
        "terminal_id": md_text(project.terminal_id) or "—",
        "status": project.status,
    }


Bases = tuple[Path, ...]


def _phase(
    number: int, ids: Sequence[str], state: PlanState, bases: Bases, skip: Status
) -> dict[str, object]:
    tasks = [state.tasks[tid] for tid in ids if tid in state.tasks]
    statuses = [skip if t.status is Status.SKIPPED else t.status for t in tasks]
    return {
        "number": number,
        "status": aggregate_status(statuses).value,
        "tasks": [_task(t, state, bases) for t in tasks],
    }


def _task(task: TaskRecord, state: PlanState, bases: Bases) -> dict[str, object]:
    nexts = [("Next", next_step(state.plan_id, task, state))] if shown_of(task) in _NEXT else []
    rows = [*_timing(task), *_outcome(task, state), *nexts, *_questions(task)]
    rows += _attempt(task, bases)
    return {
        "id": task.id,
        "state": state_label(task),
        "title": md_text(task.title),
        "terminal_id": md_text(task.terminal_id),
        "details": [(label, md_text(value)) for label, value in rows if value],
    }


_LIVE = (Status.IN_PROGRESS, Status.ERROR, Status.QUESTION, Status.APPROVAL)
# Where orchestration.md says the next step: a state no other bullet explains (the seed's
# format has an Error, Question or Skipped-because bullet for the others).
_NEXT = (Shown.ANSWERED, Shown.APPROVAL)


def _timing(task: TaskRecord) -> list[tuple[str, str]]:
    if task.status is Status.DONE:
        return [("Completed", short_time(task.finished_at))]
    return [("Started", short_time(task.started_at))] if task.status in _LIVE else []


def _outcome(task: TaskRecord, state: PlanState) -> list[tuple[str, str]]:
    if task.status is Status.IN_PROGRESS:
        return [("Last update", task.last_update)]
    if task.status is Status.DONE:
        return [("Output", task.summary)]
    if task.status is Status.ERROR:
        return [("Error", task.error)]
    if task.status is Status.SKIPPED:
        return [("Skipped because", skip_reason(task, state))]
    if task.status is Status.PENDING:
        return [
            ("Would run", task.pending_reason),
            ("Blocked by", ", ".join(unfinished_deps(task, state))),
        ]
    if task.status is Status.PAUSED:
        return [("Paused", task.last_update)]
    if task.status is Status.APPROVAL:
        return [("Output", task.summary)]
    return []


def next_step(plan_id: str, task: TaskRecord, state: PlanState) -> str:
    """What the user can do about the task now, from the table of words ("" for nothing)."""
    shown = shown_of(task)
    texts = {Shown.HELD: task.pending_reason, Shown.STALE: task.pending_reason,
             Shown.PAUSED: state_label(task)}  # fmt: skip
    text = skip_reason(task, state) if shown is Shown.SKIPPED else texts.get(shown, "")
    return step(shown, f"{plan_id}:{task.id}", text)


def unfinished_deps(task: TaskRecord, state: PlanState) -> list[str]:
    """The task's dependencies that are not DONE."""
    return [d for d in task.depends_on if d not in state.tasks or not _is_done(state.tasks[d])]


def _is_done(task: TaskRecord) -> bool:
    return task.status is Status.DONE


def skip_reason(task: TaskRecord, state: PlanState) -> str:
    """`t2 failed, t5 waits for an answer`: why each blocking dependency blocks."""
    parts = [f"{dep} {_why(state.tasks.get(dep))}" for dep in task.skipped_because]
    return ", ".join(parts) or "a dependency did not finish"


def _why(record: TaskRecord | None) -> str:
    return look_of(record).why if record is not None else "did not finish"


def _questions(task: TaskRecord) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for q in task.questions:
        rows.append(("Question", q.question))
        rows.append(("Answer", q.answer or ""))
    return rows


def _attempt(task: TaskRecord, bases: Bases) -> list[tuple[str, str]]:
    rows = [("Attempt", str(task.attempt))] if task.attempt >= 2 else []
    if task.status in _LIVE and task.log:
        rows.append(("Log", relative_path(task.log, bases)))
    return rows


def relative_path(path: str, bases: Bases) -> str:
    """`path` relative to the first of `bases` (the checkout) it lies in, else unchanged."""
    candidate = Path(path)
    for base in bases:
        if candidate.is_absolute() and candidate.is_relative_to(base):
            return str(candidate.relative_to(base))
    return path


def _css(task: TaskRecord) -> str:
    tone = look_of(task).tone
    return MERMAID[tone][0] if tone in MERMAID else tone.value


def _graph(state: PlanState) -> dict[str, object]:
    node_ids = {tid: f"n{i}" for i, tid in enumerate(state.tasks)}
    nodes = [
        {"id": node_ids[t.id], "label": mermaid_text(f"{t.id}: {t.title}"), "css": _css(t)}
        for t in state.tasks.values()
    ]
    edges = [
        (node_ids[dep], node_ids[t.id])
        for t in state.tasks.values()
        for dep in t.depends_on
        if dep in node_ids
    ]
    return {"nodes": nodes, "edges": edges, "classes": CLASS_STYLES}
