"""Output adapters: turn one raw line of an agent's output into the texts to scan for markers.

Each coding-agent CLI prints its own headless format (docs/agents.md names the sources).
An adapter knows one of them: it hands back only what the agent *said* (assistant text) and
what its tools *returned* (tool results), never tool inputs (the `echo "[DONE:..]"` command
line itself) nor the user prompt a CLI echoes back, so a marker is counted once. It also
picks up the session id (for `session: continue`) and the CLI's own usage figures.

Adapters see every line of large transcripts: each keeps only a few scalars of state, and
none ever raises on odd input. A line of a JSON profile that is not JSON (stderr noise, a
crash trace) is passed through as plain text, except one that opens like an event ("{"): a
cut or garbled event no longer says which part of it a marker sat in (a tool's input?), so
it yields nothing. `json_events` tells the line splitter to keep events whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol

from orchlib.agents.limits import ANY_API, LimitReport, better, recognise

Json = dict[str, object]


class OutputAdapter(Protocol):
    """Reads one agent's output line by line."""

    session_id: str | None
    usage: dict[str, object]
    # Whether lines are JSON events, each to be read whole (linesplit.LineSplitter).
    json_events: bool
    limit: LimitReport | None  # the CLI reported a usage/rate limit (DESIGN §11)

    def texts(self, line: str) -> list[str]:
        """The texts of one raw output line (no newline) in which to look for markers."""
        ...


class PlainText:
    """Any output that is not a JSON event stream: every line is text."""

    json_events = False

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.usage: dict[str, object] = {}
        self.limit: LimitReport | None = None

    def texts(self, line: str) -> list[str]:
        """The line itself."""
        return [line]


class JsonStream:
    """Shared line handling of JSONL adapters; subclasses read one event in `_event`."""

    json_events = True
    limits: str = ANY_API  # the CLI's limit messages (its module's `LIMITS`)

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.usage: dict[str, object] = {}
        self.limit: LimitReport | None = None

    def texts(self, line: str) -> list[str]:
        """Assistant text and tool results of one event line; a non-JSON line as is.

        A non-JSON line is the CLI's own stderr (it shares the log), so a limit report there
        counts.
        """
        if not line.lstrip().startswith("{"):
            self._limit(line)
            return [line]
        try:
            doc: Json = json.loads(line, strict=False)  # "{..." parses to an object or fails
        except (ValueError, RecursionError):
            self._limit(line)
            return []  # a broken event (cut by a crash): not evidence of a report
        try:
            return self._event(doc)
        except Exception:  # a malformed event must never stop the attempt
            return []

    def _event(self, doc: Json) -> list[str]:
        raise NotImplementedError

    def _limit(self, *texts: object) -> None:
        """Keep the limit report among the CLI's error texts (one with a reset time wins)."""
        for text in texts:
            if isinstance(text, str) and (self.limit is None or self.limit.reset_at is None):
                self.limit = better(self.limit, recognise(text, limits=self.limits))


def json_obj(value: object) -> Json:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def json_items(value: object) -> list[object]:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def nonempty_strs(*values: object) -> list[str]:
    """The values that are non-empty strings."""
    return [v for v in values if isinstance(v, str) and v]


def numbers_as(source: Json, names: Mapping[str, str]) -> dict[str, object]:
    """`source[key]` as `names[key]` for every key present with a number (or bool) value."""
    return {
        ours: value
        for theirs, ours in names.items()
        if isinstance(value := source.get(theirs), int | float)
    }


def block_texts(content: object) -> list[str]:
    """Texts of a string or of a list of `{"type": "text", "text": ...}` blocks."""
    if isinstance(content, str):
        return nonempty_strs(content)
    blocks = [json_obj(b) for b in json_items(content)]
    return nonempty_strs(*(b.get("text") for b in blocks if b.get("type") == "text"))
