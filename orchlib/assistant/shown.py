"""The one door every text of `doit mcp` goes out through (the secret filter, DESIGN §13).

Tool results and tool errors alike pass `Door.shown`. Results are filtered string by string,
before they are serialized, so a secret holding a quote or a backslash is still found (JSON
would escape it). Which secrets there are depends on the checkout (its plans' `exclude`
globs), so the server asks `Tools.door()` for the door of each call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _unchanged(text: str) -> str:
    return text


@dataclass(frozen=True)
class Door:
    """Shows text as an assistant may see it: every secret value replaced by `redact`."""

    redact: Callable[[str], str] = _unchanged  # the §13 filter: `[secret:NAME]` for values

    def shown(self, text: str) -> str:
        """`text` with every secret replaced."""
        return self.redact(text)

    def shown_value(self, value: Any) -> Any:
        """A JSON-able value with every string in it (keys too) shown."""
        if isinstance(value, str):
            return self.shown(value)
        if isinstance(value, dict):
            return {self.shown(str(k)): self.shown_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.shown_value(v) for v in value]
        return value
