"""One table of how a task's state looks and what to do about it, on every screen.

A task's `Status` is refined where the screens tell cases apart (`Shown`: a question
answered but not resumed, a failure that was an interrupt, a task held by a budget, ...).
Each `Shown` has one `Look`: its STATE word, its tone (a colour on a terminal, on the
dashboard and in orchestration.md's graph), its word in the run's counts, how it reads as
a dependency that blocks another, and the advice after a run (the console) and the next
step (`doit status`, orchestration.md). The console, `doit status` and its JSON,
orchestration.md, notifications and the dashboard read it here, so no screen compares a
display word as a string to learn a state (STYLE: one vocabulary).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from orchlib.state.model import Status, TaskRecord


class Shown(enum.Enum):
    """A task's state as the screens tell it apart, in the order the run's counts list it."""

    DONE = enum.auto()
    UP_TO_DATE = enum.auto()  # done by an earlier run (the console's count)
    FAILED = enum.auto()
    INTERRUPTED = enum.auto()  # ERROR with `interrupted` set (a signal, not the agent)
    QUESTION = enum.auto()
    ANSWERED = enum.auto()  # a QUESTION answered but not yet resumed
    APPROVAL = enum.auto()
    PAUSED = enum.auto()
    SKIPPED = enum.auto()
    HELD = enum.auto()  # PENDING: a project, plan or run budget is spent
    RUNNING = enum.auto()
    STALE = enum.auto()  # PENDING: its stamp no longer holds (`pending_reason` says why)
    PENDING = enum.auto()


class Tone(enum.Enum):
    """A state's colour by meaning: SGR on a terminal, a CSS class, a class of the md graph."""

    PENDING = "pending"  # no colour on a terminal
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    ASK = "question"
    SKIPPED = "skipped"
    PAUSED = "paused"


SGR = {Tone.DONE: "32", Tone.ERROR: "31", Tone.ASK: "33", Tone.SKIPPED: "2"}  # others: none
# orchestration.md's mermaid graph: a tone's class and its classDef (others: the tone's
# name, unstyled); the names are the seed's, which named them after task statuses.
MERMAID = {
    Tone.PENDING: ("pending", "fill:#f2f2f2,stroke:#999999,color:#333333"),
    Tone.RUNNING: ("in_progress", "fill:#cfe2ff,stroke:#0d6efd,color:#052c65"),
    Tone.DONE: ("done", "fill:#d1e7dd,stroke:#198754,color:#0a3622"),
    Tone.ERROR: ("error", "fill:#f8d7da,stroke:#dc3545,color:#58151c"),
    Tone.ASK: ("question", "fill:#fff3cd,stroke:#ffc107,color:#664d03"),
    Tone.SKIPPED: ("skipped", "fill:#e2e3e5,stroke:#6c757d,color:#41464b,stroke-dasharray:4 2"),
}


@dataclass(frozen=True)
class Look:
    """How a state is shown and what the user can do about it.

    `advice` (the console's summary after a run) and `step` (`doit status`'s next steps)
    are templates over `{name}` (PLAN:TASK) and `{text}` (the task's reason, question or
    summary); "" when there is nothing to do.
    """

    status: Status  # the record's status in this state
    word: str  # the STATE cell and the JSON `state`
    tone: Tone
    counted: str  # in the run's counts: `3 failed`
    why: str  # as a dependency that blocks another: `t2 failed`
    advice: str = ""
    step: str = ""

    @property
    def colour(self) -> str:
        """The SGR colour on a terminal ("" for none)."""
        return SGR.get(self.tone, "")


_RESUME = "re-run `doit` to resume it"
_ANSWER = 'doit answer {name} "..."'
_APPROVE = 'doit approve {name}, or doit reject {name} "..."'
LOOKS: dict[Shown, Look] = {
    Shown.DONE: Look(Status.DONE, "DONE", Tone.DONE, "done", "is done"),
    Shown.UP_TO_DATE: Look(Status.DONE, "DONE", Tone.DONE, "up to date", "is done"),
    Shown.FAILED: Look(
        Status.ERROR, "ERROR", Tone.ERROR, "failed", "failed",
        "{name} failed: {text} — fix the cause and re-run `doit`",
        "{name} failed: fix the cause and re-run `doit` (`doit forget {name}` resets it)",
    ),
    Shown.INTERRUPTED: Look(
        Status.ERROR, "ERROR", Tone.ERROR, "interrupted", "did not finish",
        f"{{name}} did not finish — {_RESUME}", "{name} was interrupted: re-run `doit` to resume",
    ),
    Shown.QUESTION: Look(
        Status.QUESTION, "QUESTION", Tone.ASK, "waiting", "waits for an answer",
        f"{{name}} asks: {{text}} — {_ANSWER}",
        '{name} waits for an answer: doit answer {name} "<your answer>"',
    ),
    Shown.ANSWERED: Look(
        Status.QUESTION, "ANSWERED", Tone.ASK, "answered", "waits for an answer",
        "{name} was answered — run `doit` to resume it with the answer",
        "{name} is answered: run `doit` to resume it",
    ),
    Shown.APPROVAL: Look(
        Status.APPROVAL, "APPROVAL", Tone.ASK, "approval", "waits for approval",
        f"{{name}} waits for approval — {_APPROVE}", f"{{name}} waits for approval: {_APPROVE}",
    ),
    Shown.PAUSED: Look(
        Status.PAUSED, "PAUSED", Tone.PAUSED, "paused", "waits for a usage limit",
        "{name} paused: {text} — re-run `doit` then",
        "{name} waits for its agent's usage limit: {text}, then `doit`",
    ),
    Shown.SKIPPED: Look(
        Status.SKIPPED, "SKIPPED", Tone.SKIPPED, "skipped", "was skipped",
        "{name} skipped: {text} — it runs once that is resolved", "{name} skipped: {text}",
    ),
    Shown.HELD: Look(
        Status.PENDING, "PENDING", Tone.PENDING, "held", "did not finish",
        "{name} held: {text} — raise that budget and re-run `doit`",
        "{name} waits: {text}; raise that budget and run `doit`",
    ),
    Shown.RUNNING: Look(
        Status.IN_PROGRESS, "IN_PROGRESS", Tone.RUNNING, "running", "did not finish",
        f"{{name}} did not finish — {_RESUME}",
    ),
    Shown.STALE: Look(
        Status.PENDING, "PENDING", Tone.PENDING, "pending", "did not finish", "",
        "{name} would run again ({text}): run `doit`",
    ),
    Shown.PENDING: Look(Status.PENDING, "PENDING", Tone.PENDING, "pending", "did not finish"),
}  # fmt: skip
# A record's plain status as shown, before its refinements.
_PLAIN = {
    Status.PENDING: Shown.PENDING, Status.IN_PROGRESS: Shown.RUNNING, Status.DONE: Shown.DONE,
    Status.ERROR: Shown.FAILED, Status.QUESTION: Shown.QUESTION, Status.SKIPPED: Shown.SKIPPED,
    Status.PAUSED: Shown.PAUSED, Status.APPROVAL: Shown.APPROVAL,
}  # fmt: skip


def shown_of(task: TaskRecord) -> Shown:
    """The task's state as shown, from its record's fields (never from its texts)."""
    if task.status is Status.QUESTION and task.questions and task.questions[-1].answer is not None:
        return Shown.ANSWERED
    if task.status is Status.ERROR and task.interrupted:
        return Shown.INTERRUPTED
    if task.status is Status.PENDING and task.held:
        return Shown.HELD
    if task.status is Status.PENDING and task.pending_reason:
        return Shown.STALE
    return _PLAIN[task.status]


def look_of(task: TaskRecord) -> Look:
    """How the task looks now."""
    return LOOKS[shown_of(task)]


def plain_look(status: Status) -> Look:
    """How a status looks without the refinements of a record (the STATE word of a status)."""
    return LOOKS[_PLAIN[status]]


def advice(shown: Shown, name: str, text: str = "") -> str:
    """The console's line after a run for a task in this state ("" when nothing to do)."""
    return LOOKS[shown].advice.format(name=name, text=text)


def step(shown: Shown, name: str, text: str = "") -> str:
    """The next step for a task in this state (`doit status`, orchestration.md; "": none)."""
    return LOOKS[shown].step.format(name=name, text=text)


def painted(text: str, look: Look) -> str:
    """`text` in the look's colour (unchanged when it has none)."""
    return f"\x1b[{look.colour}m{text}\x1b[0m" if look.colour else text


def table_json() -> dict[str, dict[str, str]]:
    """The table for the dashboard: each status's word and tone (its CSS class `t-<tone>`)."""
    return {s.value: {"word": LOOKS[_PLAIN[s]].word, "tone": LOOKS[_PLAIN[s]].tone.value}
            for s in Status}  # fmt: skip
