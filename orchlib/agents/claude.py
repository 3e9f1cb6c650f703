"""Claude Code (`claude -p`): command line, stream-json reader, transcript (docs/agents.md)."""

from __future__ import annotations

from collections.abc import Mapping

from orchlib.agents.base import Profile, tool_line
from orchlib.agents.limits import messages
from orchlib.agents.streams import (
    Json,
    JsonStream,
    block_texts,
    json_items,
    json_obj,
    nonempty_strs,
    numbers_as,
)

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

# Claude Code's own limit messages (sources in docs/agents.md).
LIMITS = messages(
    r"usage limit reached",  # "Claude AI usage limit reached|<epoch>"
    r"hit your (?:usage |session |weekly |opus )?limit",  # Claude Code 2.x
    r"limit reached\s*[∙·•|-]\s*resets",  # "5-hour limit reached ∙ resets 3pm"
)


class ClaudeStream(JsonStream):
    """`claude -p --output-format stream-json --verbose`: system / assistant / user / result.

    Each content block comes as its own `assistant` event (same message id); a Write's
    `tool_use_result` holds the whole file written, so only `tool_result` blocks are read.
    """

    limits = LIMITS

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


def transcript(doc: Json) -> list[str]:
    """What `doit log` shows of one event: the assistant's text, its tool calls, the result."""
    kind = doc.get("type")
    message = json_obj(doc.get("message"))
    blocks = [b for b in json_items(message.get("content")) if isinstance(b, dict)]
    if kind == "assistant":
        found: list[str] = []
        for b in blocks:
            if b.get("type") == "text" and isinstance(text := b.get("text"), str):
                found.append(text)
            elif b.get("type") == "tool_use":
                found.append(tool_line(b.get("name"), b.get("input")))
        return found
    if kind == "result":
        cost = doc.get("total_cost_usd")
        tail = f" (${cost:.2f})" if isinstance(cost, int | float) else ""
        return [f"= result{tail}: {doc.get('result', doc.get('subtype', ''))}"]
    return []


# Prompt on stdin only: claude -p waits for stdin EOF even with a prompt argument, and
# its variadic options (--allowedTools, --add-dir) would swallow a trailing prompt.
PROFILE = Profile(
    name="claude",
    program="claude",
    base=("-p", "--output-format", "stream-json", "--verbose"),
    permission=("--permission-mode", "acceptEdits"),
    permission_flags=("--permission-mode", "--dangerously-skip-permissions"),
    resume=("--resume",),
    prompt={"stdin": ()},
    adapter=ClaudeStream,
    reports_usd=True,
    login=(
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
    ),
    state=("~/.claude/", "~/.claude.json"),
    transcript=transcript,
)
