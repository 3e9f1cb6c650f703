"""Plan and agent text made safe to print on a terminal, or to put on one line.

Its own small module: every orchlib command prints through it, so importing it must not
pull in the state renderer (its regexes cost ~9 ms of a no-op `doit`).
"""

from __future__ import annotations

# C0 and C1 controls (C1 includes 8-bit CSI and OSC), newline and tab kept, each escaped.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]}
# C0 and C1 controls and the Unicode line breaks, each to a space. Tables, not regexes:
# compiling such a class costs ~0.4 ms, on every `doit` (a no-op too) importing this module.
_BREAKS = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029], " ")


def printable(text: str) -> str:
    """`text` with control characters but newline and tab shown escaped (`\\x1b`): plan
    and agent text printed to a terminal must not drive it (retitle it, move the cursor)."""
    return text.translate(_CONTROLS)


def flat_line(text: str) -> str:
    """`text` on one line to read: line breaks and control characters become single spaces."""
    return " ".join(text.translate(_BREAKS).split())


def escaped_line(text: str) -> str:
    """`text` on one line, every character kept: breaks and unprintables escaped (`\\n`)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
