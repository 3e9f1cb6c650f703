"""Usage limits (DESIGN §11): recognising a CLI's limit report and reading its reset time.

Pure functions over text. Each output adapter calls `recognise` only on its CLI's own error
channels (a `result` marked as an error, an `error` event, stderr), never on what the model
wrote, so a task whose code mentions "quota exceeded" does not pause anything. Each CLI's module
holds its own messages (`LIMITS`); docs/agents.md ("Usage limits") lists them all.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

TEXT_LIMIT = 300


@dataclass(frozen=True)
class LimitReport:
    """A usage or rate limit a CLI reported; `reset_at` is epoch seconds, None when unsaid."""

    text: str
    reset_at: float | None = None


# What any provider's API says when over its limit, which a CLI may relay as is (each CLI's
# own messages are in its module: `messages(...)`). Case-insensitive.
API = (
    r"quota exceeded|exceeded your current quota|resource_exhausted"  # Gemini/OpenAI 429
    r"|rate[_ ]limit(?:ed)?[_ ]?error|ratelimiterror"  # Anthropic API, litellm
    r"|too many requests|status(?:code)?\W{0,3}429\b|\b429 too many"
)
# The reset-time patterns are compiled on first use (re's cache): every `doit` imports this
# module, few ever read a limit report, and compiling them all costs ~2 ms of start-up.
_EPOCH = r"\|\s*(\d{10})(?:\d{3})?\b"
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_SPAN_PART = r"\d+(?:\.\d+)?\s*(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])"
_RELATIVE = rf"\b(?:in|after)\s+((?:{_SPAN_PART}[\s,]*(?:and\s+)?)+)"
_PART = r"(\d+(?:\.\d+)?)\s*([a-z]+)"
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_CLOCK = (
    r"\b(?:resets?|reset at|again at|until)\s+(?:at\s+|on\s+)?"
    r"(?:(?P<month>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s*"
    r"(?:(?P<year>\d{4}),?\s*)?(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>[ap]\.?m\b\.?)?"
    r"(?:\s*\((?P<tz>[A-Za-z_]+(?:/[A-Za-z_+\-0-9]+)*)\))?"
)


def messages(*own: str) -> str:
    """A CLI's limit messages: its `own` (regular expressions) and the providers' (`API`),
    one case-insensitive pattern that `recognise` compiles on first use (re's cache: every
    `doit` imports the agents, few read a limit report)."""
    return "|".join((*own, API))


ANY_API = messages()


def recognise(text: str, now: float | None = None, limits: str = ANY_API) -> LimitReport | None:
    """The limit report in `text` (one message of a CLI's error channel), if `limits` (a
    `messages` pattern) says it is one."""
    if not text or not re.search(limits, text, re.IGNORECASE):
        return None
    flat = " ".join(text.split())
    flat = flat if len(flat) <= TEXT_LIMIT else flat[: TEXT_LIMIT - 1] + "…"
    return LimitReport(flat, reset_time(text, time.time() if now is None else now))


def better(kept: LimitReport | None, new: LimitReport | None) -> LimitReport | None:
    """The report to keep: the first one, unless a later one says when the limit resets
    (a CLI often logs its own retries of a 429 before the final quota error)."""
    if kept is None or (kept.reset_at is None and new is not None and new.reset_at is not None):
        return new
    return kept


def reset_time(text: str, now: float) -> float | None:
    """When the limit ends, from the message: an epoch, `in 2h30m`, `resets 3pm (Europe/X)`."""
    if found := re.search(_EPOCH, text):
        return float(found[1])
    if found := re.search(_RELATIVE, text, re.IGNORECASE):
        parts = re.findall(_PART, found[1], re.IGNORECASE)
        seconds = sum(_span(int_or_float, unit) for int_or_float, unit in parts)
        return now + seconds if seconds > 0 else None
    if found := re.search(_CLOCK, text, re.IGNORECASE):
        return _clock_time(found, now)
    return None


def _span(amount: str, unit: str) -> float:
    """Seconds of one `2h` / `3 days` / `45 minutes` part."""
    letter = unit.lower()[0]
    return float(amount) * _UNITS.get(letter, 0)


def _clock_time(found: re.Match[str], now: float) -> float | None:
    """The next moment at the message's wall-clock time (in its time zone, else local)."""
    hour, minute = int(found["hour"]), int(found["minute"] or 0)
    ampm = (found["ampm"] or "").lower()[:1]
    if not ampm and not found["minute"]:
        return None  # a bare number ("resets 5") is no time
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "p" else 0)
    if hour > 23 or minute > 59:
        return None
    zone = _zone(found["tz"])
    here = datetime.fromtimestamp(now, zone)
    try:
        moment = here.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if found["month"]:
            month = _MONTHS.index(found["month"][:3].lower()) + 1
            year = int(found["year"]) if found["year"] else here.year
            moment = moment.replace(year=year, month=month, day=int(found["day"]))
            if not found["year"] and moment < here - timedelta(days=1):
                moment = moment.replace(year=year + 1)  # "Jan 2" said in December
        elif here - timedelta(minutes=2) < moment <= here:
            moment += timedelta(minutes=1)  # "3:28 PM" said at 3:28:40: seconds were cut
        elif moment <= here:
            moment += timedelta(days=1)
    except ValueError:  # an unknown month or day 31 of a short month
        return None
    return moment.timestamp()


def _zone(name: str | None) -> tzinfo | None:
    """The named IANA zone; None (local time) when absent or unknown."""
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # 2.4 ms, and only a limit needs it

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
