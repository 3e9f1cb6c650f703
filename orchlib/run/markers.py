"""The marker protocol (DESIGN §5): find `[KIND:terminal-id] text` reports in agent output.

Everything here is a pure function over text; `linesplit.LineSplitter` turns the byte
chunks read from a growing log file into the complete lines the scanners take.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass


class Kind(enum.Enum):
    """What a marker reports."""

    PROGRESS = "PROGRESS"
    DONE = "DONE"
    ERROR = "ERROR"
    QUESTION = "QUESTION"
    APPROVE = "APPROVE"  # a reviewer's verdicts (DESIGN §16)
    REJECT = "REJECT"


@dataclass(frozen=True)
class Marker:
    """One report an agent printed; `percent` is set for PROGRESS only."""

    kind: Kind
    terminal_id: str
    text: str
    percent: int | None = None

    @property
    def final(self) -> bool:
        """Whether the marker decides the attempt (DONE, ERROR, QUESTION; a review's verdict)."""
        return self.kind is not Kind.PROGRESS


# OSC first (ESC ] ... BEL or ESC \), then CSI, then two-char (and nF) escapes; the empty
# alternative drops a lone ESC (a sequence cut at the end of a line).
_ANSI = re.compile(r"\x1b(?:\][^\x07\x1b]*(?:\x07|\x1b\\)|\[[0-?]*[ -/]*[@-~]|[ -/]*[0-~]|)")
_TOKEN = re.compile(r"\[(PROGRESS|DONE|ERROR|QUESTION|APPROVE|REJECT):([A-Za-z0-9_.-]+)\]")
# Cheap pre-check: a line without this cannot hold a marker, not even JSON-escaped.
_HINT = re.compile(r"\[(?:PROGRESS|DONE|ERROR|QUESTION|APPROVE|REJECT):|\\u00(?:1[bB]|5[bB])")
LINE_BREAK = re.compile(r"\r\n|\r|\n")
# The prompt's placeholder texts (templates/task.md.j2, DESIGN §5 and the seed skill): a
# marker with one of these as its text is the prompt echoed back, never a report.
PLACEHOLDERS = frozenset(
    {
        "<one-line summary of deliverables>",
        "<what went wrong and what you tried>",
        "<what went wrong and what was tried>",
        "<specific question with options if applicable>",
        "<specific question>",
        "<summary of what was done>",
        "<why the work is acceptable>",  # templates/review.md.j2
        "<what must change, specifically>",
    }
)
# Leading zeros allowed, at most three significant digits, so int() never sees a huge number.
_PERCENT = re.compile(r"0*([0-9]{1,3})\s*%\s*(?:[-–—]\s*)?(.*)", re.DOTALL)
# Body of a quoted string up to (not including) its closing quote; backslash escapes a char.
_QUOTED_BODY = {
    '"': re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL),
    "'": re.compile(r"[^'\\]*(?:\\.[^'\\]*)*", re.DOTALL),
}
_ESCAPE = re.compile(
    r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|u([0-9a-fA-F]{4})|([\"\\/bfnrt]))"
)
_SIMPLE_ESCAPES = dict(zip('"\\/bfnrt', '"\\/\b\f\n\r\t', strict=True))


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences."""
    if "\x1b" not in text:
        return text
    return _ANSI.sub("", text)


def scan(text: str, terminal_id: str | None = None) -> list[Marker]:
    """Markers in `text` (any number of lines), in order; only `terminal_id`'s if given."""
    return [m for line in LINE_BREAK.split(text) for m in scan_line(line, terminal_id)]


def scan_line(line: str, terminal_id: str | None = None) -> list[Marker]:
    """Markers in one line (no terminator), in order; only `terminal_id`'s if given."""
    clean = strip_ansi(line)
    if not _HINT.search(clean):
        return []
    doc = _load_json(clean)
    if doc is None:
        return _scan_raw(clean, terminal_id)
    return [m for value in _json_strings(doc) for m in scan(value, terminal_id)]


def _load_json(line: str) -> object | None:
    """The JSON object or array `line` holds, or None when it is not one."""
    stripped = line.strip()
    if stripped[:1] not in ("{", "["):
        return None
    try:
        doc: object = json.loads(stripped, strict=False)
    except (ValueError, RecursionError):
        return None
    return doc


def _json_strings(doc: object) -> list[str]:
    """Every string value (not key) of a JSON document, in document order."""
    # An explicit stack: a deeply nested document must not exhaust Python's recursion.
    found: list[str] = []
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


def _scan_raw(line: str, terminal_id: str | None) -> list[Marker]:
    """Markers written directly in an ANSI-free, non-JSON line."""
    tokens = list(_TOKEN.finditer(line))
    found: list[Marker] = []
    for index, token in enumerate(tokens):
        if terminal_id is not None and token[2] != terminal_id:
            continue
        # A marker's text stops where the next token starts, so two markers on one line
        # each get their own text whatever the filter.
        end = tokens[index + 1].start() if index + 1 < len(tokens) else len(line)
        marker = _build(Kind(token[1]), token[2], _marker_text(line, token, end))
        if marker is not None:
            found.append(marker)
    return found


def _marker_text(line: str, token: re.Match[str], end: int) -> str:
    """The raw text of `token`: to `end`, or to the closing quote when the token opens one."""
    body = line[token.end() : end]
    quote = line[token.start() - 1] if token.start() else ""
    if quote not in _QUOTED_BODY:
        return body.strip()
    inside = _QUOTED_BODY[quote].match(body)
    closing = inside.end() if inside else 0
    if body[closing : closing + 1] == quote:
        body = body[:closing]
    if quote == '"':
        # `echo "..."` or JSON text: decode its escapes; a summary is one line.
        body = LINE_BREAK.split(_ESCAPE.sub(_unescape, body), maxsplit=1)[0]
    return body.strip()


def _unescape(match: re.Match[str]) -> str:
    """The character a JSON backslash escape stands for."""
    high, low, code, simple = match.groups()
    if high is not None:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
    if code is not None:
        value = int(code, 16)
        # A lone surrogate cannot be encoded later (log, state file): replace it.
        return "\ufffd" if 0xD800 <= value <= 0xDFFF else chr(value)
    return _SIMPLE_ESCAPES[simple]


def _build(kind: Kind, terminal_id: str, text: str) -> Marker | None:
    """The marker for `text`, or None when the text is not a valid report."""
    if kind is Kind.PROGRESS:
        match = _PERCENT.fullmatch(text)
        if match is None or int(match[1]) > 100:
            return None
        return Marker(kind, terminal_id, match[2].strip(), int(match[1]))
    # The agent echoing our prompt's protocol lines, not a report. Only those literal texts:
    # a real summary may well start with "<" and end with ">" (`<Header/> and <Footer/>`).
    if text in PLACEHOLDERS:
        return None
    return Marker(kind, terminal_id, text)
