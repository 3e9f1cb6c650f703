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

from orchlib.limits import LimitReport, better, recognise

# Gemini streams assistant text in deltas; a line longer than this is emitted unfinished.
_MAX_PENDING = 1 << 16
Json = dict[str, object]

# The CLIs' own names for the usage figures we keep -> ours.
_CLAUDE_RESULT: Mapping[str, str] = {
    "total_cost_usd": "cost_usd",
    "num_turns": "num_turns",
    "duration_ms": "duration_ms",
    "duration_api_ms": "duration_api_ms",
    "is_error": "is_error",
}
_CLAUDE_TOKENS: Mapping[str, str] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_input_tokens",
    "cache_creation_input_tokens": "cache_creation_input_tokens",
}
_CODEX_TOKENS: Mapping[str, str] = {
    "input_tokens": "input_tokens",
    "cached_input_tokens": "cached_input_tokens",
    "output_tokens": "output_tokens",
}
_GEMINI_STATS: Mapping[str, str] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "total_tokens": "total_tokens",
    "cached": "cached_input_tokens",
    "duration_ms": "duration_ms",
    "tool_calls": "tool_calls",
}
_OPENCODE_TOKENS: Mapping[str, str] = {
    "input": "input_tokens",
    "output": "output_tokens",
    "reasoning": "reasoning_tokens",
}


class OutputAdapter(Protocol):
    """Reads one agent's output line by line."""

    session_id: str | None
    usage: dict[str, object]
    # Whether lines are JSON events, each to be read whole (markers.LineSplitter).
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


class _JsonStream:
    """Shared line handling of JSONL adapters; subclasses read one event in `_event`."""

    json_events = True

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
                self.limit = better(self.limit, recognise(text))


def _obj(value: object) -> Json:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _items(value: object) -> list[object]:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def _strs(*values: object) -> list[str]:
    """The values that are non-empty strings."""
    return [v for v in values if isinstance(v, str) and v]


def _numbers(source: Json, names: Mapping[str, str]) -> dict[str, object]:
    """`source[key]` as `names[key]` for every key present with a number (or bool) value."""
    return {
        ours: value
        for theirs, ours in names.items()
        if isinstance(value := source.get(theirs), int | float)
    }


def _block_texts(content: object) -> list[str]:
    """Texts of a string or of a list of `{"type": "text", "text": ...}` blocks."""
    if isinstance(content, str):
        return _strs(content)
    blocks = [_obj(b) for b in _items(content)]
    return _strs(*(b.get("text") for b in blocks if b.get("type") == "text"))


class ClaudeStream(_JsonStream):
    """`claude -p --output-format stream-json --verbose`: system / assistant / user / result.

    Each content block comes as its own `assistant` event (same message id); a Write's
    `tool_use_result` holds the whole file written, so only `tool_result` blocks are read.
    """

    def __init__(self) -> None:
        super().__init__()
        self.denied: list[str] = []  # tool calls `-p` mode refused (`permission_denials`)

    def _event(self, doc: Json) -> list[str]:
        kind = doc.get("type")
        blocks = [_obj(b) for b in _items(_obj(doc.get("message")).get("content"))]
        if kind == "assistant":
            # text blocks only: tool_use inputs and thinking are not reports
            said = _strs(*(b.get("text") for b in blocks if b.get("type") == "text"))
            if doc.get("error") or _obj(doc.get("message")).get("model") == "<synthetic>":
                self._limit(*said)  # the CLI's own message (an API error), not the model's
            return said
        if kind == "user":
            # tool results only; the top-level `tool_use_result` repeats them, so it is skipped
            results = (b.get("content") for b in blocks if b.get("type") == "tool_result")
            return [text for content in results for text in _block_texts(content)]
        sid = doc.get("session_id")
        if isinstance(sid, str) and (kind == "result" or doc.get("subtype") == "init"):
            self.session_id = sid
        if kind == "result":
            self.usage = _numbers(doc, _CLAUDE_RESULT) | _numbers(
                _obj(doc.get("usage")), _CLAUDE_TOKENS
            )
            if isinstance(subtype := doc.get("subtype"), str):
                self.usage["subtype"] = subtype
            if doc.get("is_error") is True:
                self._limit(doc.get("result"), *_strs(*_items(doc.get("errors"))))
            self.denied = [_denial(_obj(d)) for d in _items(doc.get("permission_denials"))]
        return []


def _denial(denial: Json) -> str:
    """`Bash: npm test` for one entry of a claude result's `permission_denials`."""
    tool = str(denial.get("tool_name") or "a tool")
    given = _obj(denial.get("tool_input"))
    detail = next(iter(_strs(given.get("command"), given.get("file_path"))), "")
    detail = " ".join(detail.split())
    detail = detail if len(detail) <= 80 else detail[:79] + "…"
    return f"{tool}: {detail}" if detail else tool


class CodexJson(_JsonStream):
    """`codex exec --json`: thread.started, turn.*, item.* with typed thread items."""

    def _event(self, doc: Json) -> list[str]:
        kind = doc.get("type")
        if kind == "thread.started" and isinstance(tid := doc.get("thread_id"), str):
            self.session_id = tid
        elif kind == "turn.completed":
            self.usage = _numbers(_obj(doc.get("usage")), _CODEX_TOKENS)
        elif kind == "item.completed":
            # started/updated items are incomplete copies of the completed one
            item = _obj(doc.get("item"))
            if item.get("type") == "error":  # also a mere warning (unknown model metadata)
                self._limit(item.get("message"))
            return self._item(item)
        elif kind == "error":
            self._limit(doc.get("message"))
        elif kind == "turn.failed":
            self._limit(_obj(doc.get("error")).get("message"))
        return []

    @staticmethod
    def _item(item: Json) -> list[str]:
        """Agent messages and tool output; reasoning and commands themselves are skipped."""
        kind = item.get("type")
        if kind == "agent_message":
            return _strs(item.get("text"))
        if kind == "command_execution":
            return _strs(item.get("aggregated_output"))
        if kind == "mcp_tool_call":
            result = _obj(item.get("result"))
            error = _obj(item.get("error"))
            return _block_texts(result.get("content")) + _strs(error.get("message"))
        return []


class GeminiStream(_JsonStream):
    """`gemini --output-format stream-json`: init / message / tool_use / tool_result / result.

    Assistant text arrives in deltas that can split a marker, so deltas are joined and
    handed out a complete line at a time; any other event ends the message.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []
        self._size = 0

    def _event(self, doc: Json) -> list[str]:
        kind = doc.get("type")
        if kind == "message" and doc.get("role") == "assistant":
            return self._delta(doc.get("content"), doc.get("delta") is True)
        found = self._flush()
        if kind == "init" and isinstance(sid := doc.get("session_id"), str):
            self.session_id = sid
        elif kind == "tool_result":
            # the tool's output (or its error); the user message echoing our prompt is skipped
            found += _strs(doc.get("output"), _obj(doc.get("error")).get("message"))
        elif kind == "result":
            self.usage = _numbers(_obj(doc.get("stats")), _GEMINI_STATS)
            if isinstance(status := doc.get("status"), str):
                self.usage["status"] = status
            if status == "error":
                self._limit(_obj(doc.get("error")).get("message"))
        elif kind == "error":
            self._limit(doc.get("message"))
        return found

    def _delta(self, content: object, delta: bool) -> list[str]:
        """Complete lines of the assistant text so far."""
        if not isinstance(content, str):
            return []
        if not delta:
            return self._flush() + _strs(content)
        head, newline, tail = content.rpartition("\n")
        if not newline:
            self._pending.append(content)
            self._size += len(content)
            return self._flush() if self._size > _MAX_PENDING else []
        found = self._flush(head)
        self._pending, self._size = ([tail], len(tail)) if tail else ([], 0)
        return found

    def _flush(self, tail: str = "") -> list[str]:
        """The buffered assistant text plus `tail`, emptying the buffer."""
        text = "".join(self._pending) + tail
        self._pending, self._size = [], 0
        return _strs(text)


class OpencodeJson(_JsonStream):
    """`opencode run --format json`: text / tool_use / step_start / step_finish / error."""

    def _event(self, doc: Json) -> list[str]:
        if isinstance(sid := doc.get("sessionID"), str):
            self.session_id = sid
        kind = doc.get("type")
        part = _obj(doc.get("part"))
        if kind == "text":
            return _strs(part.get("text"))
        if kind == "tool_use":
            state = _obj(part.get("state"))
            return _strs(state.get("output"), state.get("error"))
        if kind == "step_finish":
            self._add_step(part)
        elif kind == "error":
            error = _obj(doc.get("error"))
            data = _obj(error.get("data"))
            message = next(iter(_strs(data.get("message"), error.get("message"))), "")
            retry = _obj(data.get("responseHeaders")).get("retry-after")
            if isinstance(retry, str) and retry.isdigit():
                message += f" (retry after {retry}s)"
            self._limit(f"status {data['statusCode']}: {message}" if "statusCode" in data else "",
                        message)  # fmt: skip
        return []

    def _add_step(self, part: Json) -> None:
        """Add one model step's cost and tokens (opencode reports them per step)."""
        tokens = _obj(part.get("tokens"))
        step = _numbers(part, {"cost": "cost_usd"}) | _numbers(tokens, _OPENCODE_TOKENS)
        step |= _numbers(_obj(tokens.get("cache")), {"read": "cache_read_input_tokens"})
        step["num_steps"] = 1
        for key, value in step.items():
            before = self.usage.get(key, 0)
            if isinstance(value, int | float) and isinstance(before, int | float):
                self.usage[key] = before + value
