"""Durations in plans: a number of seconds or text such as `90s`, `10m`, `2h`, `1h30m`, `500ms`."""

from __future__ import annotations

import math
import re

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*")
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*")


def parse_duration(value: object) -> float | None:
    """Seconds in `value`; None for 0 or null (no limit). Raises ValueError when malformed."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        kind = type(value).__name__
        raise ValueError(f"expected a duration like 90, '90s', '10m' or '1h30m', got {kind}")
    try:
        seconds = _seconds(value) if isinstance(value, str) else float(value)
    except OverflowError:
        seconds = math.inf
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {value!r}")
    return seconds or None


def _seconds(text: str) -> float:
    """Sum the `<number><unit>` parts of `text`; a bare number is seconds."""
    if _NUMBER.fullmatch(text):
        return float(text)
    position, total = 0, 0.0
    while position < len(text) or not position:
        part = _PART.match(text, position)
        if part is None:
            raise ValueError(
                f"bad duration {text!r}: use a number of seconds or a number with a unit "
                "ms, s, m, h, d (e.g. '90s', '10m', '1h30m')"
            )
        total += float(part.group(1)) * UNITS[part.group(2)]
        position = part.end()
    return total
