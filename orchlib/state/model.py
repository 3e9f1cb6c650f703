"""State records of a plan run, their JSON form (state.json), and values derived from them.

Records are frozen: the store swaps a task's record per event, so a snapshot is a cheap
shallow copy. Everything here is pure (no I/O); `store.py` owns the files and
`transitions.py` the rules for how events change records (`reconcile.py`: the plan and a
new run).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchlib.records import replace

STATE_VERSION = 1


class Status(enum.Enum):
    """The state of one task, as shown in orchestration.md."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    ERROR = "ERROR"
    QUESTION = "QUESTION"
    SKIPPED = "SKIPPED"
    PAUSED = "PAUSED"  # the agent's usage limit: waits until `paused_until` (DESIGN §11)
    APPROVAL = "APPROVAL"  # checked, waits for `doit approve` / `doit reject` (DESIGN §16)


class PlanStatus(enum.Enum):
    """The state of a plan or a phase: what its tasks add up to (state.json's `status`)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING = "waiting"  # for an answer, an approval or a usage limit


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
    # Seconds the task's ended attempts ran (their processes, not time queued for a slot),
    # summed since it last became DONE or was forgotten (DESIGN §15 "Elapsed is work").
    worked: float = 0.0
    summary: str = ""
    error: str = ""
    skipped_because: tuple[str, ...] = ()
    attempt: int = 0
    terminal_id: str = ""
    pid: int | None = None
    pgid: int | None = None
    pid_start: str = ""
    host: str = ""  # where the latest attempt runs: "local" or a worker's address
    ref: Mapping[str, object] = field(default_factory=dict)  # its executor's handle ref
    log: str = ""
    prompt_file: str = ""
    adopted: bool = False
    questions: tuple[Question, ...] = ()
    paused_until: str = ""  # PAUSED: ISO time the agent's usage limit resets
    denied: tuple[str, ...] = ()  # tool calls the agent's CLI refused in the latest attempt
    # isolation: the worktree (relative to the checkout) a waiting task's next attempt
    # continues in; empty when the next attempt starts afresh from the project's HEAD.
    continues_in: str = ""
    # `doit reject`'s words: what a person wants changed, the next attempt's feedback.
    rejected: str = ""
    # Why a task not shown DONE would run (`doit info`'s reason), once it ran or was stale.
    pending_reason: str = ""
    agent: str = ""  # the agent of the latest attempt (a fallback list's chosen one)
    # Spend (`usd`, `tokens`) since the task was last forgotten, and its own `budget`.
    spend: Mapping[str, object] = field(default_factory=dict)
    budget: Mapping[str, object] = field(default_factory=dict)
    held: bool = False  # PENDING because a project, plan or run budget is spent
    interrupted: bool = False  # ERROR because the run was stopped (SIGINT/SIGTERM), not failed


@dataclass(frozen=True)
class ProjectRecord:
    """A project as shown in the Projects table; terminal and status derive from its tasks."""

    name: str
    path: str = ""
    terminal_id: str = ""
    status: str = "idle"
    spend: Mapping[str, object] = field(default_factory=dict)  # the sum of its tasks'
    budget: Mapping[str, object] = field(default_factory=dict)


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
    status: PlanStatus = PlanStatus.PENDING
    run: RunInfo = field(default_factory=RunInfo)
    updated_at: str = ""
    phases: tuple[tuple[str, ...], ...] = ()
    projects: tuple[ProjectRecord, ...] = ()
    tasks: Mapping[str, TaskRecord] = field(default_factory=dict)
    spend: Mapping[str, object] = field(default_factory=dict)  # the sum of its tasks'
    budget: Mapping[str, object] = field(default_factory=dict)


# --- derived values ---------------------------------------------------------------------


def has_open(record: TaskRecord) -> bool:
    """Whether the task has a question without an answer."""
    return bool(record.questions) and any(q.answer is None for q in record.questions)


def aggregate_status(statuses: Iterable[Status]) -> PlanStatus:
    """The status of a group of tasks (a phase, a whole plan between runs)."""
    seen = set(statuses)
    if seen <= {Status.DONE}:
        return PlanStatus.COMPLETED
    for status, verdict in _VERDICTS:
        if status in seen:
            return verdict
    return PlanStatus.IN_PROGRESS if Status.DONE in seen else PlanStatus.PENDING


_VERDICTS = (
    (Status.IN_PROGRESS, PlanStatus.IN_PROGRESS),
    (Status.ERROR, PlanStatus.FAILED),
    (Status.QUESTION, PlanStatus.WAITING),
    (Status.PAUSED, PlanStatus.WAITING),
    (Status.APPROVAL, PlanStatus.WAITING),
    (Status.SKIPPED, PlanStatus.FAILED),
)


def plan_status(state: PlanState) -> PlanStatus:
    """in_progress while a run is going, else the aggregate of every task."""
    if state.run.started_at and not state.run.ended_at:
        return PlanStatus.IN_PROGRESS
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

    __slots__ = ("any_task", "failed", "latest", "running", "spend", "undone", "when")

    def __init__(self) -> None:
        self.any_task = self.failed = self.running = self.undone = False
        self.latest, self.when = "", ""
        self.spend: dict[str, object] = {}

    def add(self, task: TaskRecord) -> None:
        status = task.status
        self.any_task = True
        self.running = self.running or status is Status.IN_PROGRESS
        self.failed = self.failed or status is Status.ERROR
        self.undone = self.undone or status is not Status.DONE
        when = task.started_at or task.finished_at
        if task.terminal_id and (not self.latest or when > self.when):
            self.latest, self.when = task.terminal_id, when
        if task.spend:
            self.spend = add_spend(self.spend, task.spend)

    def project(self, project: ProjectRecord) -> ProjectRecord:
        """active: a task runs; failed: a task failed; done: all done; idle otherwise."""
        status = "done" if self.any_task and not self.undone else "idle"
        status = "active" if self.running else "failed" if self.failed else status
        now = (self.latest, status, self.spend)
        if (project.terminal_id, project.status, project.spend) == now:
            return project  # unchanged: the same record keeps its cached JSON
        return replace(project, terminal_id=self.latest, status=status, spend=self.spend)


def add_spend(a: Mapping[str, object], b: Mapping[str, object]) -> dict[str, object]:
    """Two `spend` mappings added (`usd`, `tokens`; bad figures count as 0)."""
    usd = _number(a.get("usd")) + _number(b.get("usd"))
    tokens = int(_number(a.get("tokens")) + _number(b.get("tokens")))
    return {"usd": round(usd, 6), "tokens": tokens}


def plan_spend(state: PlanState) -> dict[str, object]:
    """The plan's spend: the sum of its tasks'."""
    total: dict[str, object] = {}
    for task in state.tasks.values():
        if task.spend:
            total = add_spend(total, task.spend)
    return total


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


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
