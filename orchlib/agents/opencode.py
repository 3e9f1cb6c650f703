"""opencode (`opencode run --format json`): its command line and event reader (docs/agents.md)."""

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

_OPENCODE_TOKENS: Mapping[str, str] = {
    "input": "input_tokens",
    "output": "output_tokens",
    "reasoning": "reasoning_tokens",
}

# opencode relays its provider's error (`status 429: ...`): the API's messages only.
LIMITS = messages()


class OpencodeJson(JsonStream):
    """`opencode run --format json`: text / tool_use / step_start / step_finish / error."""

    limits = LIMITS

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


# `opencode run` reads a piped stdin to EOF whether or not a message argument is given.
PROFILE = Profile(
    name="opencode",
    program="opencode",
    base=("run", "--format", "json"),
    permission_flags=("--auto", "--dangerously-skip-permissions", "--yolo"),
    resume=("--session",),
    prompt={"stdin": ()},
    adapter=OpencodeJson,
    reports_usd=True,
    # Each provider's `env` list from models.dev, which opencode reads for its key.
    login=(
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GENERATIVE_AI_API_KEY",
        "OPENROUTER_API_KEY",
        "OPENCODE_API_KEY",
        "GROQ_API_KEY",
        "DEEPSEEK_API_KEY",
    ),
    state=(
        "~/.local/share/opencode/",
        "~/.config/opencode/",
        "~/.cache/opencode/",
        "~/.local/state/opencode/",
    ),
)
