"""Run events: the frozen records of what the runner reports (`orchlib.bus` hands them out).

Each event names the subscriber method that takes it (`Event.handler`: `TaskDone` goes
to `on_task_done`), so a subscriber needs no list of event classes to test against.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds and a Z suffix."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Event:
    """Base of every event: which plan, when."""

    plan_id: str
    at: str = field(default_factory=now_iso, kw_only=True)
    handler: ClassVar[str] = "on_event"  # the subscriber's method for it: `on_task_done`

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handler = "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


@dataclass(frozen=True)
class RunStarted(Event):
    """A `doit` run starts working on this plan; `task_ids` are the tasks it may dispatch."""

    task_ids: tuple[str, ...] = ()
    pid: int = 0


@dataclass(frozen=True)
class TaskUpToDate(Event):
    """A task is done from an earlier run (valid stamp); nothing is dispatched."""

    task_id: str
    summary: str = ""
    finished_at: str = ""
    terminal_id: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class TaskStarted(Event):
    """An attempt's process exists but has not been let run yet (state must be on disk now)."""

    task_id: str
    attempt: int
    terminal_id: str
    ref: Mapping[str, object]  # the executor's handle ref: what finds the attempt again
    host: str  # where it runs: "local" or a worker's address
    log: str
    prompt_file: str
    adopted: bool = False
    agent: str = ""  # the agent running it (of a fallback list, the one chosen)

    @property
    def pid(self) -> int:
        """The process id in the ref (0 when the executor names none)."""
        pid = self.ref.get("pid")
        return pid if isinstance(pid, int) else 0


@dataclass(frozen=True)
class TaskProgress(Event):
    """A PROGRESS marker: percent done and what was just completed."""

    task_id: str
    percent: int
    text: str


@dataclass(frozen=True)
class TaskDone(Event):
    """The task is done: checks passed and its stamp is written."""

    task_id: str
    summary: str
    attempt: int
    terminal_id: str
    duration: float
    usage: Mapping[str, object] = field(default_factory=dict)  # the agent's cost and tokens


@dataclass(frozen=True)
class TaskFailed(Event):
    """An attempt failed. `final` False: another attempt follows; True: the task failed."""

    task_id: str
    reason: str
    attempt: int
    final: bool
    interrupted: bool = False


@dataclass(frozen=True)
class TaskWaiting(Event):
    """A QUESTION marker: the task waits for `doit answer`.

    `still` is True when the question was asked in an earlier run and is still open (the
    task is not dispatched again; notifiers stay quiet, they told the user already).
    """

    task_id: str
    question: str
    attempt: int
    terminal_id: str
    still: bool = False


@dataclass(frozen=True)
class TaskPaused(Event):
    """The agent's CLI reported a usage limit: the task waits until `until` (ISO, UTC).

    Every task of `profile` waits with it; the attempt used no retry (DESIGN §11).
    """

    task_id: str
    attempt: int
    profile: str
    until: str
    reason: str
    hit: bool = True  # False: the attempt was not started, another task hit the limit


@dataclass(frozen=True)
class TaskApproval(Event):
    """The task's checks passed and it waits for a person: `doit approve` or `doit reject`.

    `still`: it waited so before this run (nobody is told again)."""

    task_id: str
    summary: str
    attempt: int
    terminal_id: str
    duration: float | None = None
    still: bool = False


@dataclass(frozen=True)
class AttemptRan(Event):
    """An attempt ended: its process ran `seconds` (from its start, not from when it was
    queued for a slot, to its outcome's checks), which count to the task's elapsed time."""

    task_id: str
    attempt: int
    seconds: float


@dataclass(frozen=True)
class WorkKept(Event):
    """A waiting task (question, usage limit, interrupt) keeps its worktree: `worktree`,
    relative to the checkout, is where its next attempt continues (DESIGN §10)."""

    task_id: str
    worktree: str


@dataclass(frozen=True)
class TaskSpent(Event):
    """A task's spend so far (`usd`, `tokens`; its attempts since it was last forgotten)."""

    task_id: str
    spend: Mapping[str, object]


@dataclass(frozen=True)
class BudgetSpent(Event):
    """Usage took a task, project, plan or the run past its budget (DESIGN §15)."""

    task_id: str  # the task whose attempt's usage crossed it
    scope: str  # task | project | plan | run
    reason: str  # `budget spent: $5.13 of $5.00`, `plan budget spent ($20.04 of $20.00)`


@dataclass(frozen=True)
class BudgetHeld(Event):
    """A task stays PENDING: a project, plan or run budget is spent (`reason` says which)."""

    task_id: str
    reason: str


@dataclass(frozen=True)
class TaskReviewing(Event):
    """A reviewer agent starts on an attempt's checked DONE (DESIGN §16)."""

    task_id: str
    attempt: int
    agent: str
    terminal_id: str
    log: str
    pid: int = 0


@dataclass(frozen=True)
class TaskReviewed(Event):
    """A reviewer ended: `verdict` "approve", "reject" or "none"; `usage` is the reviewer's
    own cost and tokens, in the shape of `TaskDone.usage` (part of the task's spend, §15)."""

    task_id: str
    attempt: int
    agent: str
    verdict: str
    text: str
    usage: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolsDenied(Event):
    """The agent's CLI refused these tool calls in an attempt (e.g. `Bash: npm test`)."""

    task_id: str
    attempt: int
    tools: tuple[str, ...]


@dataclass(frozen=True)
class TaskSkipped(Event):
    """The task was not run because these dependencies failed, wait, or were skipped."""

    task_id: str
    because: tuple[str, ...]


@dataclass(frozen=True)
class RunFinished(Event):
    """The run ended for this plan. `interrupted` names the signal (SIGINT/SIGTERM) if any."""

    interrupted: str = ""
