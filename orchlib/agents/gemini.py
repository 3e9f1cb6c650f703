"""Gemini CLI (`gemini --output-format stream-json`): command line, reader (docs/agents.md)."""

from __future__ import annotations

from collections.abc import Mapping

from orchlib.agents.base import Profile
from orchlib.agents.limits import messages
from orchlib.agents.streams import (
    Json,
    JsonStream,
    json_obj,
    nonempty_strs,
    numbers_as,
)

# Gemini streams assistant text in deltas; a line longer than this is emitted unfinished.
_MAX_PENDING = 1 << 16

_GEMINI_STATS: Mapping[str, str] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "total_tokens": "total_tokens",
    "cached": "cached_input_tokens",
    "duration_ms": "duration_ms",
    "tool_calls": "tool_calls",
}

# Gemini CLI's TerminalQuotaError (docs/agents.md); its 429s are the API's.
LIMITS = messages(r"exhausted your (?:capacity|quota)")


class GeminiStream(JsonStream):
    """`gemini --output-format stream-json`: init / message / tool_use / tool_result / result.

    Assistant text arrives in deltas that can split a marker, so deltas are joined and
    handed out a complete line at a time; any other event ends the message.
    """

    limits = LIMITS

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


# gemini stops waiting for stdin after 500 ms without data, so `-p` is safe here;
# `--prompt=` keeps a prompt that starts with "-" from being read as a flag.
PROFILE = Profile(
    name="gemini",
    program="gemini",
    base=("--output-format", "stream-json"),
    permission=("--approval-mode", "auto_edit"),
    permission_flags=("--approval-mode", "--yolo", "-y"),
    resume=("--resume",),
    prompt={"stdin": (), "arg": ("--prompt={prompt}",)},
    adapter=GeminiStream,
    # Headless gemini exits 55 in a folder it does not trust (0.61, folder trust on by
    # default). The variable, unlike `--skip-trust`, is harmless to releases without it.
    env={"GEMINI_CLI_TRUST_WORKSPACE": "true"},
    login=("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"),
    state=("~/.gemini/",),
)
