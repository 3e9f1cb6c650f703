"""The one door every text of `doit mcp` goes out through (the secret filter of DESIGN §13).

Tool results and tool errors alike pass `shown`; until the filter exists it returns the text
as it is. Results are filtered string by string, before they are serialized, so a secret
holding a quote or a backslash is still found (JSON would escape it).
"""

from __future__ import annotations

from typing import Any


def shown(text: str) -> str:
    """`text` as an assistant may see it: every secret replaced by `[secret:NAME]` (§13)."""
    return text


def shown_value(value: Any) -> Any:
    """A JSON-able value with every string in it (keys too) passed through `shown`."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dict):
        return {shown(str(k)): shown_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shown_value(v) for v in value]
    return value
