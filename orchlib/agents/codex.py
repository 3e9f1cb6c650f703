"""Codex CLI (`codex exec --json`): command line, event reader, transcript (docs/agents.md)."""

from __future__ import annotations

from collections.abc import Mapping

from orchlib.agents.base import Profile, tool_line
from orchlib.agents.limits import messages
from orchlib.agents.streams import (
    Json,
    JsonStream,
    block_texts,
    json_obj,
    nonempty_strs,
    numbers_as,
)

_CODEX_TOKENS: Mapping[str, str] = {
    "input_tokens": "input_tokens",
    "cached_input_tokens": "cached_input_tokens",
    "output_tokens": "output_tokens",
}

# Codex's own limit message (codex-rs UsageLimitReachedError; docs/agents.md).
LIMITS = messages(r"hit your (?:usage |session |weekly |opus )?limit")


class CodexJson(JsonStream):
    """`codex exec --json`: thread.started, turn.*, item.* with typed thread items."""

    limits = LIMITS

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
            message = json_obj(doc.get("error")).get("message")
            self._limit(message)
            # why the turn failed is what a person reads in the attempt's error (the last
            # line said), not a warning codex printed before its events
            return nonempty_strs(message)
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


def transcript(doc: Json) -> list[str]:
    """What `doit log` shows of one event: messages, commands with their output, tool calls."""
    item = json_obj(doc.get("item"))
    if doc.get("type") != "item.completed":
        return []
    kind = item.get("type")
    if kind == "agent_message":
        return [str(item.get("text", ""))]
    if kind == "command_execution":
        output = str(item.get("aggregated_output", "")).rstrip("\n")
        return [tool_line("command", item.get("command", "")), *([output] if output else [])]
    if kind in ("mcp_tool_call", "file_change", "web_search"):
        return [tool_line(kind, item.get("tool") or item.get("changes") or item.get("query"))]
    return []


# `-` forces the prompt from stdin; with a prompt argument codex still reads a piped
# stdin to EOF (to append it), which an open pipe never reaches.
PROFILE = Profile(
    name="codex",
    program="codex",
    base=("exec", "--json", "--skip-git-repo-check"),
    permission=("--sandbox", "workspace-write"),
    permission_flags=(
        "--sandbox",
        "-s",
        "--full-auto",
        "--dangerously-bypass-approvals-and-sandbox",
        "--yolo",
    ),
    resume=("resume",),
    resume_last=True,
    prompt={"stdin": ("-",)},
    adapter=CodexJson,
    login=("OPENAI_API_KEY", "CODEX_API_KEY", "CODEX_ACCESS_TOKEN"),
    state=("~/.codex/",),
    transcript=transcript,
)
