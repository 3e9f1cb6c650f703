"""Plan and agent text made safe to print on a terminal.

Its own small module: every orchlib command prints through it, so importing it must not
pull in the state renderer (its regexes cost ~9 ms of a no-op `doit`).
"""

from __future__ import annotations

import re

# C0 and C1 controls (C1 includes 8-bit CSI and OSC), newline and tab kept.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters but newline and tab shown escaped (`\\x1b`): plan
    and agent text printed to a terminal must not drive it (retitle it, move the cursor)."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m[0]):02x}", text)
