"""Run events: what the runner reports, and the bus that hands them to state, console, notifiers.

The runner publishes; `StateStore`, `Console` and `Notifier` subscribe. Handlers run
synchronously on the publishing thread, one event at a time (the bus holds a lock), so a
handler must be quick: anything slow (a notification) goes to its own worker.

A subscriber takes the events it cares about as methods named after them: a `Subscriber`'s
`on_task_done(event)` gets each `TaskDone` (`Event.handler` names the method), and events
it has no method for pass it by; it imports no list of event classes to test against.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
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


Handler = Callable[[Event], None]


class Subscriber:
    """A bus subscriber whose methods are named after the events they take (`on_task_done`)."""

    def handle(self, event: Event) -> None:
        """The bus handler: the event's method, if this subscriber has one."""
        self.dispatch(event)

    def dispatch(self, event: Event) -> Any:
        """What the event's method returns; None when this subscriber has no such method."""
        method = getattr(self, event.handler, None)
        return None if method is None else method(event)


def scrubbed(event: Event, clean: Callable[[str], str]) -> Event:
    """`event` with `clean` applied to its text fields (strings and tuples of strings)."""
    changes: dict[str, Any] = {}
    for item in fields(event):
        value = getattr(event, item.name)
        if isinstance(value, str):
            new: Any = clean(value)
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            new = tuple(clean(v) for v in value)
        else:
            continue
        if new != value:
            changes[item.name] = new
    return replace(event, **changes) if changes else event


class Bus:
    """Publishes events to subscribers in order; a failing handler never stops the run.

    `clean`, when given, is applied to every event's text first (the secret filter)."""

    def __init__(self, clean: Callable[[str], str] | None = None) -> None:
        self._clean = clean
        self._handlers: list[Handler] = []
        self._syncs: list[Callable[[], None]] = []
        self._lock = threading.RLock()
        self.errors: list[str] = []

    def subscribe(self, handler: Handler, sync: Callable[[], None] | None = None) -> None:
        """Add a handler; it sees every later event. `sync` makes its effects durable."""
        with self._lock:
            self._handlers.append(handler)
            if sync is not None:
                self._syncs.append(sync)

    def sync(self) -> None:
        """Wait until every handler has made the events so far durable (outside the bus lock)."""
        for sync in list(self._syncs):
            sync()

    def publish(self, event: Event) -> None:
        """Hand the event to every handler, in subscription order."""
        if self._clean is not None:
            event = scrubbed(event, self._clean)
        with self._lock:
            for handler in self._handlers:
                try:
                    handler(event)
                except Exception as exc:  # a broken display must not kill agent runs
                    self.errors.append(f"{getattr(handler, '__qualname__', handler)!s}: {exc!r}")
