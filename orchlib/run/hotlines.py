"""Plain-text output, bytes in, only the lines worth reading out: a fast `LineSplitter`.

A text line can hold a marker only if it holds a marker's head (`[DONE:` ...), a JSON
escape that may hide one, or an ANSI escape that may split one (`markers._HINT`). Bytes
searches over each chunk (two compiled patterns and a find) find those *hot* lines; they go
through `LineSplitter` (decoding, 1 MiB pieces cut before a marker) exactly as before. Every
other line can only be an agent's *last line* (the text of an error or of a shell task's
summary), so of each chunk's cold lines only the last non-blank one is handed out. A caller
reading the lines in order (`AttemptState`) thus finds the same markers and the same last
line as with `LineSplitter`, at a cost per chunk and per hit, not per line.
"""

from __future__ import annotations

import re

from orchlib.run.linesplit import MAX_LINE, LineSplitter
from orchlib.run.markers import Kind

# markers._HINT, in bytes, plus ESC: strip_ansi runs before the hint check there, so an
# escape code inside a marker's head (`[DO\x1b[0mNE:`) must make its line hot here. Two
# patterns that each open with a literal, and a find: each runs at GB/s, where one pattern
# of alternatives tries every byte (~0.2 GB/s).
_WORDS = b"|".join(kind.value.encode() for kind in Kind)  # every marker kind, verdicts too
_HEADS = (
    re.compile(rb"\[(?:" + _WORDS + rb"):"),
    re.compile(rb"\\u00(?:1[bB]|5[bB])"),
)
_ESC = b"\x1b"
# The longest hint (`[QUESTION:`, or `\u001b`): what may straddle two chunks.
_HINT_SPAN = max(10, *(len(kind.value) + 2 for kind in Kind))


class HotLines:
    """Incremental bytes -> the hot lines and the last cold line of each chunk, in order."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max = max_line
        self._splitter = LineSplitter(max_line)
        self._pending: list[bytes] = []  # the current (cold) line so far
        self._size = 0
        self._tail = b""  # its last bytes, where a hint may start that this chunk ends
        self._hot = False  # the current line is in the splitter
        self._skip_lf = False  # the last chunk ended in "\r": a leading "\n" completes it

    def feed(self, data: bytes) -> list[str]:
        """The lines to read that `data` completes (see the module doc), in order."""
        start = 1 if self._skip_lf and data[:1] == b"\n" else 0
        self._skip_lf = data.endswith(b"\r")
        out: list[str] = []
        last = max(data.rfind(b"\n", start), data.rfind(b"\r", start))
        if last < 0:
            self._extend(data[start:] if start else data, out)
            return out
        first = _find_break(data, start, last + 1)
        self._extend(data[start:first], out)
        self._end_line(out)
        body = first + 1
        if body < last and data[first : first + 2] == b"\r\n":
            body += 1
        if body < last:
            self._body(data, body, last, out)
        rest = last + 1
        self._extend(data[rest:], out)
        return out

    def flush(self) -> list[str]:
        """The trailing partial line, if any (at EOF); the reader is empty afterwards."""
        out: list[str] = []
        if self._hot:
            out.extend(self._splitter.flush())
        elif self._pending:
            out.append(_decode(b"".join(self._pending)))
        self._reset()
        self._skip_lf = False
        return out

    def _body(self, data: bytes, lo: int, hi: int, out: list[str]) -> None:
        """The complete lines of data[lo:hi] (hi is a line break): hot ones and the last."""
        spans: list[tuple[int, int]] = []
        end = lo
        for hit in _hits(data, lo, hi):
            if hit < end:
                continue  # another hint of a line already taken
            begin = _line_start(data, lo, hit)
            end = _find_break(data, hit, hi)
            spans.append((begin, end))
        hot = {begin for begin, _ in spans}
        last = _last_cold(data, lo, hi, hot)
        if last is not None:
            spans.append(last)
            spans.sort()
        for begin, finish in spans:
            if begin in hot or finish - begin > self._max:  # a long line goes in pieces
                out.extend(self._splitter.feed(data[begin:finish]))
                out.extend(self._splitter.feed(b"\n"))
            else:
                out.append(_decode(data[begin:finish]))

    def _extend(self, data: bytes, out: list[str]) -> None:
        """The current line grows by `data` (no line break in it)."""
        if not data:
            return
        if self._hot:
            out.extend(self._splitter.feed(data))
            return
        window = self._tail + data[: _HINT_SPAN - 1]
        if _hinted(data) or _hinted(window) or self._size + len(data) > self._max:
            self._hot = True
            for piece in self._pending:
                out.extend(self._splitter.feed(piece))
            self._pending, self._size, self._tail = [], 0, b""
            out.extend(self._splitter.feed(data))
            return
        self._pending.append(data)
        self._size += len(data)
        self._tail = (self._tail + data)[-(_HINT_SPAN - 1) :]

    def _end_line(self, out: list[str]) -> None:
        """The current line has ended."""
        if self._hot:
            out.extend(self._splitter.feed(b"\n"))
        elif self._pending:
            out.append(_decode(b"".join(self._pending)))
        self._reset()

    def _reset(self) -> None:
        self._pending, self._size, self._tail, self._hot = [], 0, b"", False


def _hinted(data: bytes) -> bool:
    """Whether `data` holds a hint."""
    return _ESC in data or any(head.search(data) for head in _HEADS)


def _hits(data: bytes, lo: int, hi: int) -> list[int]:
    """Where the hints in data[lo:hi] start, in order."""
    found = [hit.start() for head in _HEADS for hit in head.finditer(data, lo, hi)]
    at = data.find(_ESC, lo, hi)
    while at >= 0:
        found.append(at)
        at = data.find(_ESC, at + 1, hi)
    return sorted(found)


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "replace")


def _find_break(data: bytes, lo: int, hi: int) -> int:
    """The first line break in data[lo:hi], or hi."""
    found = [at for at in (data.find(b"\n", lo, hi), data.find(b"\r", lo, hi)) if at >= 0]
    return min(found, default=hi)


def _line_start(data: bytes, lo: int, at: int) -> int:
    """Where the line holding data[at] starts (not before lo)."""
    return max(data.rfind(b"\n", lo, at), data.rfind(b"\r", lo, at), lo - 1) + 1


def _last_cold(data: bytes, lo: int, hi: int, hot: set[int]) -> tuple[int, int] | None:
    """The span of the last line in data[lo:hi] that is not hot and not blank."""
    while hi > lo:
        hi = lo + len(data[lo:hi].rstrip())  # past blank lines and trailing blanks
        if hi <= lo:
            return None
        begin = _line_start(data, lo, hi - 1)
        if begin not in hot and _decode(data[begin:hi]).strip():
            return begin, _find_break(data, hi, len(data))
        hi = begin
    return None
