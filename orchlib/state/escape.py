"""Plan and agent text escaped for the place it lands in orchestration.md (DESIGN §6): YAML
front matter, a markdown line or table cell, a mermaid label. It is data there, never
template source.
"""

from __future__ import annotations

import json
import re

from orchlib.textsafe import flat_line

# str.translate tables: one C pass per value (a value per cell, thousands per render).
_MARKDOWN = str.maketrans({"|": "\\|", "<": "&lt;", "[": "\\[", "]": "\\]", "`": "\\`"})
_MERMAID = str.maketrans({"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;"})
_PLAIN_YAML = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*|\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?")
# Compiled on first use (re's cache): a class spanning all of Unicode takes ~4 ms of CPU to
# compile, and most runs never quote a front-matter value.
_YAML_RAW = (
    "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}
_FRACTION = re.compile(r"\.\d+(?=Z$|[+-]\d\d:\d\d$)")


def md_text(text: str) -> str:
    """Text safe on one markdown line or in a table cell (no breaks, pipes, links, HTML)."""
    return flat_line(text).translate(_MARKDOWN)


def mermaid_text(text: str) -> str:
    """Text safe inside a quoted mermaid label (entity codes for quotes, #, <, >, backticks)."""
    return flat_line(text).translate(_MERMAID)


def yaml_scalar(text: str) -> str:
    """A front-matter value: plain when YAML reads it back as written, else double-quoted."""
    if _PLAIN_YAML.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    # A JSON string is a YAML double-quoted scalar once what YAML may not hold raw (controls,
    # DEL, C1, line separators, BOM, surrogates) is written as an escape.
    quoted = json.dumps(text, ensure_ascii=False)
    return re.sub(_YAML_RAW, lambda m: f"\\u{ord(m.group()):04x}", quoted)


def short_time(stamp: str) -> str:
    """An ISO time without its fraction of a second, as the seed's orchestration.md shows it."""
    return _FRACTION.sub("", stamp)
