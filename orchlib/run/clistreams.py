"""The adapters of the JSON-streaming agent CLIs (claude, codex, gemini, opencode): each
reads one event of its CLI's headless format (docs/agents.md names the sources)."""

from __future__ import annotations

from collections.abc import Mapping

from orchlib.run.streams import (
    Json,
    JsonStream,
    block_texts,
    json_items,
    json_obj,
    nonempty_strs,
    numbers_as,
)

# Gemini streams assistant text in deltas; a line longer than this is emitted unfinished.
_MAX_PENDING = 1 << 16

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
_CLAUDE_STEP: Mapping[str, str] = {  # an assistant message's own usage, before the result
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
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


class ClaudeStream(JsonStream):
    """`claude -p --output-format stream-json --verbose`: system / assistant / user / result.

    Each content block comes as its own `assistant` event (same message id); a Write's
    `tool_use_result` holds the whole file written, so only `tool_result` blocks are read.
    """

    def __init__(self) -> None:
        super().__init__()
        self.denied: list[str] = []  # tool calls `-p` mode refused (`permission_denials`)
        self._message: object = None  # the id of the assistant message last counted

    def _event(self, doc: Json) -> list[str]:
        kind = doc.get("type")
        blocks = [json_obj(b) for b in json_items(json_obj(doc.get("message")).get("content"))]
        if kind == "assistant":
            self._add_message(json_obj(doc.get("message")))
            # text blocks only: tool_use inputs and thinking are not reports
            said = nonempty_strs(*(b.get("text") for b in blocks if b.get("type") == "text"))
            if doc.get("error") or json_obj(doc.get("message")).get("model") == "<synthetic>":
                self._limit(*said)  # the CLI's own message (an API error), not the model's
            return said
        if kind == "user":
            # tool results only; the top-level `tool_use_result` repeats them, so it is skipped
            results = (b.get("content") for b in blocks if b.get("type") == "tool_result")
            return [text for content in results for text in block_texts(content)]
        sid = doc.get("session_id")
        if isinstance(sid, str) and (kind == "result" or doc.get("subtype") == "init"):
            self.session_id = sid
        if kind == "result":
            self.usage = numbers_as(doc, _CLAUDE_RESULT) | numbers_as(
                json_obj(doc.get("usage")), _CLAUDE_TOKENS
            )
            if isinstance(subtype := doc.get("subtype"), str):
                self.usage["subtype"] = subtype
            if doc.get("is_error") is True:
                self._limit(doc.get("result"), *nonempty_strs(*json_items(doc.get("errors"))))
            self.denied = [_denial(json_obj(d)) for d in json_items(doc.get("permission_denials"))]
        return []

    def _add_message(self, message: Json) -> None:
        """Count one model message's tokens as it arrives (its blocks repeat its usage), so a
        budget sees the attempt's spend before the `result` gives the totals (and the cost)."""
        if message.get("id") == self._message or self.usage.get("subtype"):
            return
        self._message = message.get("id")
        step = numbers_as(json_obj(message.get("usage")), _CLAUDE_STEP)
        for key, value in step.items():
            before = self.usage.get(key, 0)
            if isinstance(value, int | float) and isinstance(before, int | float):
                self.usage[key] = before + value


def _denial(denial: Json) -> str:
    """`Bash: npm test` for one entry of a claude result's `permission_denials`."""
    tool = str(denial.get("tool_name") or "a tool")
    given = json_obj(denial.get("tool_input"))
    detail = next(iter(nonempty_strs(given.get("command"), given.get("file_path"))), "")
    detail = " ".join(detail.split())
    detail = detail if len(detail) <= 80 else detail[:79] + "…"
    return f"{tool}: {detail}" if detail else tool


class CodexJson(JsonStream):
    """`codex exec --json`: thread.started, turn.*, item.* with typed thread items."""

    def _event(self, doc: Json) -> list[str]:
        kind = doc.get("type")
        if kind == "thread.started" and isinstance(tid := doc.get("thread_id"), str):
            self.session_id = tid
        elif kind == "turn.completed":
            self.usage = numbers_as(json_obj(doc.get("usage")), _CODEX_TOKENS)
        elif kind == "item.completed":
            # started/updated items are incomplete copies of the completed one
            item = json_obj(doc.get("item"))
            if item.get("type") == "error":  # also a mere warning (unknown model metadata)
                self._limit(item.get("message"))
            return self._item(item)
        elif kind == "error":
            self._limit(doc.get("message"))
        elif kind == "turn.failed":
            self._limit(json_obj(doc.get("error")).get("message"))
        return []

    @staticmethod
    def _item(item: Json) -> list[str]:
        """Agent messages and tool output; reasoning and commands themselves are skipped."""
        kind = item.get("type")
        if kind == "agent_message":
            return nonempty_strs(item.get("text"))
        if kind == "command_execution":
            return nonempty_strs(item.get("aggregated_output"))
        if kind == "mcp_tool_call":
            result = json_obj(item.get("result"))
            error = json_obj(item.get("error"))
            return block_texts(result.get("content")) + nonempty_strs(error.get("message"))
        return []


class GeminiStream(JsonStream):
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
            found += nonempty_strs(doc.get("output"), json_obj(doc.get("error")).get("message"))
        elif kind == "result":
            self.usage = numbers_as(json_obj(doc.get("stats")), _GEMINI_STATS)
            if isinstance(status := doc.get("status"), str):
                self.usage["status"] = status
            if status == "error":
                self._limit(json_obj(doc.get("error")).get("message"))
        elif kind == "error":
            self._limit(doc.get("message"))
        return found

    def _delta(self, content: object, delta: bool) -> list[str]:
        """Complete lines of the assistant text so far."""
        if not isinstance(content, str):
            return []
        if not delta:
            return self._flush() + nonempty_strs(content)
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
        return nonempty_strs(text)


class OpencodeJson(JsonStream):
    """`opencode run --format json`: text / tool_use / step_start / step_finish / error."""

    def _event(self, doc: Json) -> list[str]:
        if isinstance(sid := doc.get("sessionID"), str):
            self.session_id = sid
        kind = doc.get("type")
        part = json_obj(doc.get("part"))
        if kind == "text":
            return nonempty_strs(part.get("text"))
        if kind == "tool_use":
            state = json_obj(part.get("state"))
            return nonempty_strs(state.get("output"), state.get("error"))
        if kind == "step_finish":
            self._add_step(part)
        elif kind == "error":
            error = json_obj(doc.get("error"))
            data = json_obj(error.get("data"))
            message = next(iter(nonempty_strs(data.get("message"), error.get("message"))), "")
            retry = json_obj(data.get("responseHeaders")).get("retry-after")
            if isinstance(retry, str) and retry.isdigit():
                message += f" (retry after {retry}s)"
            self._limit(f"status {data['statusCode']}: {message}" if "statusCode" in data else "",
                        message)  # fmt: skip
        return []

    def _add_step(self, part: Json) -> None:
        """Add one model step's cost and tokens (opencode reports them per step)."""
        tokens = json_obj(part.get("tokens"))
        step = numbers_as(part, {"cost": "cost_usd"}) | numbers_as(tokens, _OPENCODE_TOKENS)
        step |= numbers_as(json_obj(tokens.get("cache")), {"read": "cache_read_input_tokens"})
        step["num_steps"] = 1
        for key, value in step.items():
            before = self.usage.get(key, 0)
            if isinstance(value, int | float) and isinstance(before, int | float):
                self.usage[key] = before + value
