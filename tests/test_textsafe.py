"""The one-line forms of plan and agent text: flattened to read, or escaped to keep all."""

from __future__ import annotations

import pytest

from orchlib.textsafe import escaped_line, flat_line, printable


@pytest.mark.parametrize(
    ("text", "flat", "escaped"),
    [
        ("plain text", "plain text", "plain text"),
        ("two\nlines", "two lines", "two\\nlines"),
        ("  tabs\tand\r\n breaks ", "tabs and breaks", "  tabs\\tand\\r\\n breaks "),
        ("a\x1b[31mred\x1b[0m", "a [31mred [0m", "a\\x1b[31mred\\x1b[0m"),
        ("para\u2028graph", "para graph", "para\\u2028graph"),
    ],
)
def test_flat_and_escaped_lines(text: str, flat: str, escaped: str) -> None:
    assert (flat_line(text), escaped_line(text)) == (flat, escaped)
    assert "\n" not in flat_line(text) + escaped_line(text)


def test_printable_keeps_newlines_and_escapes_controls() -> None:
    assert printable("a\nb\tc\x1b]0;title\x07") == "a\nb\tc\\x1b]0;title\\x07"
