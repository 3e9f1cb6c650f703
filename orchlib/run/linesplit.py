"""Incremental bytes to complete text lines, for the marker scanners (`markers`) reading a
growing log file in chunks: a line too long is cut in pieces, never before a marker's start.
"""

from __future__ import annotations

import codecs
import re

from orchlib.run.markers import LINE_BREAK

# What may start a marker at the end of a piece of a cut line: a whole token head, or the
# start of one that the cut would split (`[DO` | `NE:id]`).
_TOKEN_HEAD = re.compile(
    r"\[(?:(?:PROGRESS|DONE|ERROR|QUESTION|APPROVE|REJECT):|[A-Z]{0,8}(?::[A-Za-z0-9_.-]*)?$)"
)
MAX_LINE = 1 << 20
MAX_EVENT = 64 << 20
# A cut moves back to the start of a marker found this close before it, so the marker and
# the start of its text reach the scanner in one piece.
_CUT_WINDOW = 4096


class LineSplitter:
    """Incremental bytes -> complete text lines (for reading a growing log file in chunks).

    A line longer than `max_line` is handed out in pieces, each cut before any marker that
    starts near the cut. With `json_events` (a profile whose output is JSON events), a line
    opening with "{" is one event: it is kept whole up to `max_event` characters, and a
    longer one is dropped whole; a piece of an event no longer says which part of the event
    it came from (a marker in a tool's *input* must not count).
    """

    def __init__(
        self, max_line: int = MAX_LINE, *, json_events: bool = False, max_event: int = MAX_EVENT
    ) -> None:
        if max_line < 1 or max_event < 1:
            raise ValueError(f"max_line must be at least 1, got {min(max_line, max_event)}")
        self._max = max_line
        self._max_event = max_event if json_events else None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []
        self._size = 0
        # Whether the current line is a JSON event (None until its first non-blank char),
        # and whether it is one too long to keep, being skipped to its end.
        self._event: bool | None = None
        self._dropping = False
        # A chunk ending in "\r" has ended its line already (a progress bar must show at
        # once); a "\n" opening the next chunk then completes "\r\n", not an empty line.
        self._skip_lf = False

    def feed(self, data: bytes) -> list[str]:
        """Complete lines (or pieces of over-long ones), without line terminators."""
        return self._split(self._decoder.decode(data))

    def flush(self) -> list[str]:
        """The trailing partial line, if any (at EOF); the splitter is empty afterwards."""
        lines = self._split(self._decoder.decode(b"", final=True))
        if self._size or self._dropping:
            lines.extend(self._end(""))
        self._decoder.reset()
        self._skip_lf = False
        return lines

    def _split(self, text: str) -> list[str]:
        """Lines completed by `text`; its unterminated tail is kept (in max_line pieces)."""
        if not text:
            return []
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        self._skip_lf = text.endswith("\r")
        *complete, rest = LINE_BREAK.split(text)
        lines: list[str] = []
        for piece in complete:
            lines.extend(self._end(piece))
        if rest:
            self._grow(rest)
            lines.extend(self._overflow())
        return lines

    def _grow(self, text: str) -> None:
        """Add `text` to the current line."""
        if self._dropping:
            return
        if self._event is None and (head := text.lstrip()):
            self._event = self._max_event is not None and head[0] == "{"
        self._partial.append(text)
        self._size += len(text)

    def _overflow(self) -> list[str]:
        """Whole pieces of a current line grown past its limit; the rest stays."""
        if self._event and self._max_event is not None:
            if self._size > self._max_event:
                self._partial, self._size, self._dropping = [], 0, True
            return []
        if self._size <= self._max:
            return []
        pieces = self._cut(self._take(""))
        self._partial, self._size = [pieces[-1]], len(pieces[-1])
        return pieces[:-1]

    def _end(self, tail: str) -> list[str]:
        """The line (or its last pieces) that `tail` completes; a new line starts."""
        dropping = self._dropping
        self._grow(tail)
        event, line = self._event, self._take("")
        self._event, self._dropping = None, False
        if dropping or (event and self._max_event is not None and len(line) > self._max_event):
            return []
        return [line] if event else self._cut(line)

    def _take(self, tail: str) -> str:
        """The partial line plus `tail`, emptying the partial line."""
        line = "".join(self._partial) + tail
        self._partial, self._size = [], 0
        return line

    def _cut(self, line: str) -> list[str]:
        """`line` in pieces of at most max_line characters, none splitting a marker's start."""
        pieces: list[str] = []
        start = 0
        while len(line) - start > self._max:
            at = _cut_point(line, start, start + self._max)
            pieces.append(line[start:at])
            start = at
        pieces.append(line[start:])
        return pieces


def _cut_point(line: str, start: int, end: int) -> int:
    """Where to end the piece `line[start:end]`: before a marker starting near `end`, else `end`."""
    low = max(start + 1, end - _CUT_WINDOW)
    at = line.rfind("[", low, end)
    while at >= 0 and not _TOKEN_HEAD.match(line, at, end):
        at = line.rfind("[", low, at)
    if at < 0:
        return end
    # `echo "[DONE:id] x"`: the opening quote goes with the marker (it ends the text there).
    return at - 1 if line[at - 1] in "\"'" and at - 1 > start else at
