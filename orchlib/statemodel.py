"""State records of a plan run, their JSON form (state.json), and values derived from them.

Records are frozen: the store swaps a task's record per event, so a snapshot is a cheap
shallow copy. Everything here is pure (no I/O); `state.py` owns the files and
`stateevents.py` the rules for how events change records.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

STATE_VERSION = 1
PLAN_STATUSES = ("pending", "in_progress", "completed", "failed", "waiting")


class Status(enum.Enum):
    """The state of one task, as shown in orchestration.md."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    ERROR = "ERROR"
    QUESTION = "QUESTION"
    SKIPPED = "SKIPPED"
    PAUSED = "PAUSED"  # the agent's usage limit: waits until `paused_until` (DESIGN §11)


@dataclass(frozen=True)
class Question:
    """A QUESTION an agent asked, and the answer given with `doit answer` (None until then)."""

    question: str
    asked_at: str = ""
    attempt: int = 0
    terminal_id: str = ""
    answer: str | None = None
    answered_at: str | None = None

    def __getitem__(self, key: str) -> object:
        """Dict-style read (`q["answer"]`), for callers that treat questions as mappings."""
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: object = None) -> object:
        """Dict-style read with a default."""
        return getattr(self, key) if key in self.__dataclass_fields__ else default


@dataclass(frozen=True)
class TaskRecord:
    """Everything known about one task: plan facts, current state, the latest attempt."""

    id: str
    title: str = ""
    project: str = ""
    phase: int = 0
    depends_on: tuple[str, ...] = ()
    status: Status = Status.PENDING
    percent: int = 0
    last_update: str = ""
    started_at: str = ""
    finished_at: str = ""
    duration: float | None = None
    summary: str = ""
    error: str = ""
    skipped_because: tuple[str, ...] = ()
    attempt: int = 0
    terminal_id: str = ""
    pid: int | None = None
    pgid: int | None = None
    pid_start: str = ""
    log: str = ""
    prompt_file: str = ""
    adopted: bool = False
    questions: tuple[Question, ...] = ()
    paused_until: str = ""  # PAUSED: ISO time the agent's usage limit resets
    denied: tuple[str, ...] = ()  # tool calls the agent's CLI refused in the latest attempt
    # Why a task not shown DONE would run (`doit info`'s reason), once it ran or was stale.
    pending_reason: str = ""


@dataclass(frozen=True)
class ProjectRecord:
    """A project as shown in the Projects table; terminal and status derive from its tasks."""

    name: str
    path: str = ""
    terminal_id: str = ""
    status: str = "idle"


@dataclass(frozen=True)
class RunInfo:
    """The latest `doit` run that worked on the plan."""

    pid: int | None = None
    started_at: str = ""
    ended_at: str = ""
    interrupted: str = ""


@dataclass(frozen=True)
class PlanState:
    """The whole state of one plan; `tasks` is keyed by task id, in plan order."""

    plan_id: str
    summary: str = ""
    created: str = ""
    status: str = "pending"
    run: RunInfo = field(default_factory=RunInfo)
    updated_at: str = ""
    phases: tuple[tuple[str, ...], ...] = ()
    projects: tuple[ProjectRecord, ...] = ()
    tasks: Mapping[str, TaskRecord] = field(default_factory=dict)


# --- JSON -------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return _record_json(value)
    return value


_JSON_NAMES: dict[type, tuple[tuple[str, str], ...]] = {}


def _json_names(cls: type) -> tuple[tuple[str, str], ...]:
    names = _JSON_NAMES.get(cls)
    if names is None:
        names = _JSON_NAMES[cls] = tuple((f.name, _camel(f.name)) for f in fields(cls))
    return names


def _record_json(record: Any) -> dict[str, object]:
    return {key: _plain(getattr(record, name)) for name, key in _json_names(type(record))}


def to_json(state: PlanState) -> dict[str, object]:
    """The JSON object written to state.json."""
    data: dict[str, object] = {"version": STATE_VERSION}
    data.update(_record_json(replace(state, tasks={})))
    data["tasks"] = [_record_json(task) for task in state.tasks.values()]
    return data


JsonCache = dict[tuple[str, str], tuple[object, str]]


def dumps_state(state: PlanState, cache: JsonCache) -> str:
    """state.json's text, one project or task per line; unchanged records reuse their JSON.

    Records are frozen, so the same object always has the same JSON: a run of 1,000 tasks
    re-encodes only the records an event replaced.
    """
    head = {"version": STATE_VERSION, **_record_json(replace(state, tasks={}, projects=()))}
    del head["projects"], head["tasks"]
    projects = ",\n".join(_row(cache, "p", p.name, p) for p in state.projects)
    tasks = ",\n".join(_row(cache, "t", t.id, t) for t in state.tasks.values())
    text = json.dumps(head, ensure_ascii=False)[:-1]
    return f'{text}, "projects": [\n{projects}\n], "tasks": [\n{tasks}\n]}}\n'


def _row(cache: JsonCache, kind: str, key: str, record: object) -> str:
    hit = cache.get((kind, key))
    # Tasks: the same frozen object means the same JSON. Projects are derived anew on each
    # write, so they compare by value (four strings).
    if hit is None or (hit[0] is not record and (kind == "t" or hit[0] != record)):
        hit = cache[(kind, key)] = (record, json.dumps(_record_json(record), ensure_ascii=False))
    return hit[1]


def _typed(*types: type) -> Callable[[object], object]:
    """A reader accepting exactly these JSON types (so True is not an int)."""

    def read(value: object) -> object:
        if type(value) not in types:
            raise TypeError(value)
        return value

    return read


def _as_list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError(value)
    return value


def _as_strs(value: object) -> tuple[str, ...]:
    return tuple(str(_typed(str)(item)) for item in _as_list(value))


def _as_phases(value: object) -> tuple[tuple[str, ...], ...]:
    return tuple(_as_strs(item) for item in _as_list(value))


def _from_fields(cls: type[Any], data: object, **given: object) -> Any:
    """Build a record from JSON, keeping a field's default where the value is missing or bad."""
    if not isinstance(data, dict):
        raise TypeError(data)
    kwargs = dict(given)
    for f in fields(cls):
        key = _camel(f.name)
        if f.name not in kwargs and key in data:
            try:
                kwargs[f.name] = _READERS[str(f.type)](data[key])
            except (TypeError, ValueError, KeyError):
                continue
    return cls(**kwargs)


def _as_questions(value: object) -> tuple[Question, ...]:
    return tuple(_from_fields(Question, item) for item in _as_list(value))


def _as_projects(value: object) -> tuple[ProjectRecord, ...]:
    return tuple(_from_fields(ProjectRecord, item) for item in _as_list(value))


_READERS: dict[str, Callable[[object], object]] = {
    "str": _typed(str),
    "int": _typed(int),
    "bool": _typed(bool),
    "int | None": _typed(int, type(None)),
    "float | None": _typed(float, int, type(None)),
    "str | None": _typed(str, type(None)),
    "tuple[str, ...]": _as_strs,
    "Status": lambda value: Status(value),
    "tuple[Question, ...]": _as_questions,
    "tuple[ProjectRecord, ...]": _as_projects,
    "tuple[tuple[str, ...], ...]": _as_phases,
    "RunInfo": lambda value: _from_fields(RunInfo, value),
}


def from_json(data: Mapping[str, object]) -> PlanState:
    """A PlanState from state.json's object; bad or missing fields fall back to defaults."""
    tasks: dict[str, TaskRecord] = {}
    items = data.get("tasks")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            tasks[item["id"]] = _from_fields(TaskRecord, item)
    plan_id = data.get("planId")
    plan_id = plan_id if isinstance(plan_id, str) else ""
    state: PlanState = _from_fields(PlanState, dict(data), plan_id=plan_id, tasks=tasks)
    return state


# --- derived values ---------------------------------------------------------------------


def has_open(record: TaskRecord) -> bool:
    """Whether the task has a question without an answer."""
    return bool(record.questions) and any(q.answer is None for q in record.questions)


def aggregate_status(statuses: Iterable[Status]) -> str:
    """The status of a group of tasks (a phase, a whole plan between runs)."""
    seen = set(statuses)
    if seen <= {Status.DONE}:
        return "completed"
    for status, verdict in _VERDICTS:
        if status in seen:
            return verdict
    return "in_progress" if Status.DONE in seen else "pending"


_VERDICTS = (
    (Status.IN_PROGRESS, "in_progress"),
    (Status.ERROR, "failed"),
    (Status.QUESTION, "waiting"),
    (Status.PAUSED, "waiting"),
    (Status.SKIPPED, "failed"),
)


def plan_status(state: PlanState) -> str:
    """in_progress while a run is going, else the aggregate of every task."""
    if state.run.started_at and not state.run.ended_at:
        return "in_progress"
    return aggregate_status(t.status for t in state.tasks.values())


def derive_projects(state: PlanState) -> tuple[ProjectRecord, ...]:
    """Projects with the terminal of their latest attempt and a status from their tasks.

    One pass over the tasks (it runs on every state write of a run).
    """
    seen: dict[str, _Seen] = {p.name: _Seen() for p in state.projects}
    for task in state.tasks.values():
        found = seen.get(task.project)
        if found is not None:
            found.add(task)
    return tuple(seen[p.name].project(p) for p in state.projects)


class _Seen:
    """What a project's tasks say: any running, any failed, all done, the latest terminal."""

    __slots__ = ("any_task", "failed", "latest", "running", "undone", "when")

    def __init__(self) -> None:
        self.any_task = self.failed = self.running = self.undone = False
        self.latest, self.when = "", ""

    def add(self, task: TaskRecord) -> None:
        status = task.status
        self.any_task = True
        self.running = self.running or status is Status.IN_PROGRESS
        self.failed = self.failed or status is Status.ERROR
        self.undone = self.undone or status is not Status.DONE
        when = task.started_at or task.finished_at
        if task.terminal_id and (not self.latest or when > self.when):
            self.latest, self.when = task.terminal_id, when

    def project(self, project: ProjectRecord) -> ProjectRecord:
        """active: a task runs; failed: a task failed; done: all done; idle otherwise."""
        status = "done" if self.any_task and not self.undone else "idle"
        status = "active" if self.running else "failed" if self.failed else status
        if (project.terminal_id, project.status) == (self.latest, status):
            return project  # unchanged: the same record keeps its cached JSON
        return replace(project, terminal_id=self.latest, status=status)


def qa_history(state: PlanState, task_id: str) -> list[tuple[str, str]]:
    """The task's answered questions, oldest first, as (question, answer) for the prompt."""
    record = state.tasks.get(task_id)
    questions = record.questions if record is not None else ()
    return [(q.question, q.answer) for q in questions if q.answer is not None]


def has_open_question(state: PlanState, task_id: str) -> bool:
    """Whether the task waits for `doit answer`."""
    record = state.tasks.get(task_id)
    return record is not None and has_open(record)


def merge_answers(mine: TaskRecord, disk: TaskRecord | None) -> TaskRecord:
    """`mine` with answers another process wrote to disk for the same questions (a newer
    answer replaces an older one while the task still waits)."""
    if disk is None or not (has_open(mine) or mine.status is Status.QUESTION):
        return mine
    answered = {(q.asked_at, q.question): q for q in disk.questions if q.answer is not None}

    def pick(q: Question) -> Question:
        given = answered.get((q.asked_at, q.question))
        if given is None or given == q:
            return q
        return given if q.answer is None or (given.answered_at or "") > (q.answered_at or "") else q

    merged = tuple(pick(q) for q in mine.questions)
    return mine if merged == mine.questions else replace(mine, questions=merged)
