"""How the console writes: colour only on a terminal that wants it, one-line texts, clocks."""

from __future__ import annotations

import os
from datetime import datetime
from typing import IO

from orchlib.events import TaskReviewed, TaskReviewing
from orchlib.state.table import wants_color as wants_color  # one rule for every screen
from orchlib.state.transitions import parse_time
from orchlib.textsafe import flat_line

TEXT_LIMIT = 200
COLORS = {"ok": "32", "bad": "31", "ask": "33", "start": "36", "dim": "2"}


def clip(text: str) -> str:
    """`text` on one line, cut to TEXT_LIMIT characters."""
    flat = flat_line(text)
    return flat if len(flat) <= TEXT_LIMIT else flat[: TEXT_LIMIT - 1] + "…"


def clock_time(at: str) -> str:
    """The local wall-clock time of an event (now when unparsable)."""
    moment = parse_time(at)
    return (moment.astimezone() if moment else datetime.now()).strftime("%H:%M:%S")


def is_terminal(stream: IO[str]) -> bool:
    """True for a terminal that takes escape codes (TERM=dumb does not)."""
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, kind: str) -> str:
    """`text` in the colour of `kind`."""
    return f"\x1b[{COLORS[kind]}m{text}\x1b[0m"


def review_line(event: TaskReviewing | TaskReviewed) -> tuple[str, str]:
    """The console's style and line for a reviewer's start or verdict (DESIGN §16)."""
    if isinstance(event, TaskReviewing):
        where = f" (pid {event.pid})" if event.pid else ""
        return (
            "start",
            f"reviewing ({event.agent}) attempt {event.attempt} — {event.terminal_id}{where}",
        )
    said = f": {clip(event.text)}" if event.text else ""
    if event.verdict == "approve":
        return "ok", f"review by {event.agent}: APPROVE{said}"
    if event.verdict == "reject":
        return "ask", f"review by {event.agent}: REJECT{said}"
    if event.verdict == "paused":
        return "ask", f"review by {event.agent} waits{said} (no retry used)"
    return "ask", f"review by {event.agent} gave no verdict{said}"
