"""One table of how each task status looks: its display word and its colour.

`doit status`, its JSON form and orchestration.md read the word and colour here, so no
screen compares a display word as a string to learn a state (STYLE: one vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchlib.state.model import Status, TaskRecord


@dataclass(frozen=True)
class Look:
    """A status as shown: its word (the STATE cell) and its SGR colour ("" for none)."""

    word: str
    colour: str = ""


LOOKS: dict[Status, Look] = {
    Status.PENDING: Look("PENDING"),
    Status.IN_PROGRESS: Look("IN_PROGRESS"),
    Status.DONE: Look("DONE", "32"),
    Status.ERROR: Look("ERROR", "31"),
    Status.QUESTION: Look("QUESTION", "33"),
    Status.SKIPPED: Look("SKIPPED", "2"),
    Status.PAUSED: Look("PAUSED"),
    Status.APPROVAL: Look("APPROVAL", "33"),
}
ANSWERED = Look("ANSWERED", "33")  # a QUESTION answered but not yet resumed


def look_of(task: TaskRecord) -> Look:
    """How the task's status looks now: `ANSWERED` for an answered, unresumed question."""
    if task.status is Status.QUESTION and task.questions and task.questions[-1].answer is not None:
        return ANSWERED
    return LOOKS[task.status]


def painted(text: str, look: Look) -> str:
    """`text` in the look's colour (unchanged when it has none)."""
    return f"\x1b[{look.colour}m{text}\x1b[0m" if look.colour else text
