"""orchestration.md (DESIGN §6): the state of a plan rendered through a jinja2 template.

Plan and agent text is data: the view escapes it for the place it lands
(`state.escape`) and it never becomes template source.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from orchlib.errors import ConfigError
from orchlib.state.escape import md_text, mermaid_text, short_time, yaml_scalar
from orchlib.state.model import PlanState, ProjectRecord, Status, TaskRecord, aggregate_status
from orchlib.state.words import MERMAID, Shown, look_of, plain_look, shown_of, step

PACKAGED_TEMPLATES = Path(__file__).parent.parent / "templates"
TEMPLATE_NAME = "orchestration.md.j2"

CLASS_STYLES = tuple(MERMAID.values())  # the graph's classDef lines


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
    """Renders orchestration.md; the template is loaded (and checked) once, and the escaped
    view of a task is made once per record (`Memo`)."""

    def __init__(self, template_dirs: Sequence[Path], root: Path) -> None:
        import jinja2  # runs pay for it; `doit status` and the console do not

        self.root = root
        self._memo = Memo()
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
            return self._template.render(view(state, self.root, self._memo))
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{self._template.filename}: {exc}") from None


Bases = tuple[Path, ...]  # the checkout's folder, as given and resolved


class Memo:
    """The escaped view of each task as last made, with the record it was made from.

    Records are frozen: while a task's record is the same object, its graph node is the
    same, and so is its row unless that row reads other tasks or the clock (PENDING's
    unfinished dependencies, SKIPPED's reasons, PAUSED's "until"). A render of a plan where
    a few tasks changed escapes only theirs.
    """

    OWN_ROW = frozenset(Status) - {Status.PENDING, Status.SKIPPED, Status.PAUSED}

    def __init__(self) -> None:
        self.rows: dict[str, tuple[TaskRecord, dict[str, object]]] = {}
        self.nodes: dict[str, tuple[TaskRecord, dict[str, str]]] = {}

    def row(self, task: TaskRecord, state: PlanState, bases: Bases) -> dict[str, object]:
        if task.status not in self.OWN_ROW:
            return _task(task, state, bases)
        kept = self.rows.get(task.id)
        if kept is None or kept[0] is not task:
            kept = self.rows[task.id] = (task, _task(task, state, bases))
        return kept[1]

    def node(self, task: TaskRecord, node_id: str) -> dict[str, str]:
        kept = self.nodes.get(task.id)
        if kept is None or kept[0] is not task or kept[1]["id"] != node_id:
            label = mermaid_text(f"{task.id}: {task.title}")
            kept = self.nodes[task.id] = (task, {"id": node_id, "label": label, "css": _css(task)})
        return kept[1]


def view(state: PlanState, root: Path, memo: Memo | None = None) -> dict[str, object]:
    """The escaped values the orchestration.md template lays out."""
    memo = memo if memo is not None else Memo()
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
            _phase(n, ids, state, bases, skip, memo) for n, ids in enumerate(state.phases, start=1)
        ],
        "graph": _graph(state, memo),
        "state": state,
    }


def _project(project: ProjectRecord) -> dict[str, str]:
    return {
        "name": md_text(project.name),
        "path": md_text(project.path),
        "terminal_id": md_text(project.terminal_id) or "—",
        "status": project.status,
    }


def _phase(
    number: int, ids: Sequence[str], state: PlanState, bases: Bases, skip: Status, memo: Memo
) -> dict[str, object]:
    tasks = [state.tasks[tid] for tid in ids if tid in state.tasks]
    statuses = [skip if t.status is Status.SKIPPED else t.status for t in tasks]
    return {
        "number": number,
        "status": aggregate_status(statuses).value,
        "tasks": [memo.row(t, state, bases) for t in tasks],
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


def _graph(state: PlanState, memo: Memo) -> dict[str, object]:
    node_ids = {tid: f"n{i}" for i, tid in enumerate(state.tasks)}
    nodes = [memo.node(t, node_ids[t.id]) for t in state.tasks.values()]
    edges = [
        (node_ids[dep], node_ids[t.id])
        for t in state.tasks.values()
        for dep in t.depends_on
        if dep in node_ids
    ]
    return {"nodes": nodes, "edges": edges, "classes": CLASS_STYLES}
