"""Plan and agent text made safe to print on a terminal, or to put on one line.

Its own small module: every orchlib command prints through it, so importing it must not
pull in the state renderer (its regexes cost ~9 ms of a no-op `doit`).
"""

from __future__ import annotations

import re

# C0 and C1 controls (C1 includes 8-bit CSI and OSC), newline and tab kept.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# C0 and C1 controls and the Unicode line breaks.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with control characters but newline and tab shown escaped (`\\x1b`): plan
    and agent text printed to a terminal must not drive it (retitle it, move the cursor)."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def flat_line(text: str) -> str:
    """`text` on one line to read: line breaks and control characters become single spaces."""
    return " ".join(_BREAKS.sub(" ", text).split())


def escaped_line(text: str) -> str:
    """`text` on one line, every character kept: breaks and unprintables escaped (`\\n`)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
