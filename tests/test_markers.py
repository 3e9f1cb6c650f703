"""Tests for the marker parser and the incremental line splitter (DESIGN §5)."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchlib.run.linesplit import LineSplitter
from orchlib.run.markers import Kind, Marker, scan, scan_line, strip_ansi

TID = "t-1"


def done(text: str, tid: str = TID) -> Marker:
    return Marker(Kind.DONE, tid, text)


def progress(percent: int, text: str, tid: str = TID) -> Marker:
    return Marker(Kind.PROGRESS, tid, text, percent)


def split_all(chunks: list[bytes], max_line: int = 1 << 20) -> list[str]:
    splitter = LineSplitter(max_line)
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    return lines + splitter.flush()


# --- plain markers -------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.DONE, Kind.ERROR, Kind.QUESTION])
def test_final_marker_of_each_kind(kind: Kind) -> None:
    [marker] = scan(f"[{kind.value}:{TID}] built src/app.py and tests", TID)
    assert marker == Marker(kind, TID, "built src/app.py and tests")
    assert marker.final
    assert marker.percent is None


def test_progress_marker() -> None:
    [marker] = scan(f"[PROGRESS:{TID}] 45% - Implementing auth middleware", TID)
    assert marker == progress(45, "Implementing auth middleware")
    assert not marker.final


def test_marker_anywhere_in_line_and_text_stripped() -> None:
    assert scan(f"agent says:   [DONE:{TID}]    all good   ") == [done("all good")]


def test_done_without_text_is_a_marker() -> None:
    assert scan(f"[DONE:{TID}]") == [done("")]


def test_scan_line_matches_scan_for_one_line() -> None:
    line = f"x [QUESTION:{TID}] Which database?"
    assert (
        scan_line(line, TID) == scan(line, TID) == [Marker(Kind.QUESTION, TID, "Which database?")]
    )


def test_no_filter_returns_every_id() -> None:
    text = "[DONE:a] one\n[DONE:b] two\n"
    assert scan(text) == [done("one", "a"), done("two", "b")]


def test_lines_split_on_lf_crlf_and_bare_cr() -> None:
    text = f"[PROGRESS:{TID}] 10% - a\r[PROGRESS:{TID}] 20% - b\r\n[DONE:{TID}] c\nend"
    assert scan(text, TID) == [progress(10, "a"), progress(20, "b"), done("c")]


# --- progress variants -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "percent", "text"),
    [
        ("30% - Database schema created", 30, "Database schema created"),
        ("30%", 30, ""),
        ("30% Database schema", 30, "Database schema"),
        ("30%- Database schema", 30, "Database schema"),
        ("30 % -   spaced  ", 30, "spaced"),
        ("0% - start", 0, "start"),
        ("100% - end", 100, "end"),
        ("007% - leading zeros", 7, "leading zeros"),
        ("50% — em dash", 50, "em dash"),
        ("50% - - a dash", 50, "- a dash"),
    ],
)
def test_progress_variants(body: str, percent: int, text: str) -> None:
    assert scan(f"[PROGRESS:{TID}] {body}", TID) == [progress(percent, text)]


@pytest.mark.parametrize(
    "body", ["101% - too much", "-1% - negative", "abc% - words", "50.5% - fraction", "half", ""]
)
def test_invalid_progress_is_ignored(body: str) -> None:
    assert scan(f"[PROGRESS:{TID}] {body}\n[DONE:{TID}] ok", TID) == [done("ok")]


def test_progress_with_huge_number_is_ignored_not_an_error() -> None:
    assert scan(f"[PROGRESS:{TID}] {'9' * 5000}% - x", TID) == []


# --- ids and malformed tokens ------------------------------------------------------------


def test_other_ids_ignored_when_terminal_id_given() -> None:
    text = f"[DONE:t-10] not mine\n[DONE:x{TID}] not mine\n[DONE:{TID}] mine\n"
    assert scan(text, TID) == [done("mine")]


@pytest.mark.parametrize(
    "line",
    [
        "[DONE:] empty id",
        "[DONE t-1] no colon",
        "[DONE:t-1 no bracket",
        "[DONE:t 1] space in id",
        "[done:t-1] lower case",
        "[FINISHED:t-1] unknown kind",
        "DONE:t-1] no opening bracket",
        "[DONE:t-1:x] colon in id",
    ],
)
def test_malformed_tokens_are_not_markers(line: str) -> None:
    assert scan(line, TID) == []
    assert scan(line) == []


def test_id_charset() -> None:
    assert scan("[DONE:Ab_9.x-Z] ok") == [done("ok", "Ab_9.x-Z")]


def test_empty_terminal_id_filter_matches_nothing() -> None:
    assert scan(f"[DONE:{TID}] ok", "") == []


# --- ANSI ------------------------------------------------------------------------------------


def test_strip_ansi_kinds_of_sequence() -> None:
    text = "\x1b[1;31mred\x1b[0m \x1b]0;title\x07osc \x1b]8;;http://x\x1b\\link\x1b(B\x1b7end\x1b"
    assert strip_ansi(text) == "red osc linkend"


def test_ansi_coloured_marker() -> None:
    line = f"\x1b[32m[DONE:{TID}]\x1b[0m \x1b[1mbuilt\x1b[22m it\x1b[0m"
    assert scan(line, TID) == [done("built it")]


@pytest.mark.parametrize(
    "token",
    [
        f"[DO\x1b[1mNE:{TID}]",
        f"\x1b[1m[\x1b[0mDONE:{TID}]",
        f"[DONE\x1b]0;x\x07:{TID}]",
        "[DONE:t\x1b[K-1]",
        f"[DONE:{TID}\x1b[0m]",
    ],
)
def test_ansi_inside_token(token: str) -> None:
    assert scan(f"{token} summary", TID) == [done("summary")]


# --- quoted markers -----------------------------------------------------------------------


def test_marker_in_double_quotes_ends_at_closing_quote() -> None:
    line = f'$ echo "[DONE:{TID}] Task complete: auth implemented" && true'
    assert scan(line, TID) == [done("Task complete: auth implemented")]


def test_marker_in_single_quotes_ends_at_closing_quote() -> None:
    assert scan(f"echo '[DONE:{TID}] x y' ; ls", TID) == [done("x y")]


def test_escaped_quote_does_not_close() -> None:
    line = f'echo "[DONE:{TID}] said \\"hi\\" there" | tee log'
    assert scan(line, TID) == [done('said "hi" there')]


def test_unclosed_quote_runs_to_end_of_line() -> None:
    assert scan(f'echo "[DONE:{TID}] no closing quote', TID) == [done("no closing quote")]


def test_quote_not_right_before_token_is_plain_text() -> None:
    assert scan(f'note: [DONE:{TID}] a "quoted" word"', TID) == [done('a "quoted" word"')]


def test_double_quoted_escapes_decoded_and_newline_ends_text() -> None:
    line = f'log("[DONE:{TID}] caf\\u00e9 \\\\ ok\\nsecond line")'
    assert scan(line, TID) == [done("café \\ ok")]


def test_quoted_placeholder_is_ignored() -> None:
    assert scan(f'echo "[DONE:{TID}] <one-line summary of deliverables>"', TID) == []


# --- JSON lines ---------------------------------------------------------------------------


def claude_line(text: str) -> str:
    message = {"content": [{"type": "text", "text": text}]}
    return json.dumps({"type": "assistant", "message": message})


def test_claude_stream_json_line() -> None:
    line = claude_line(f"All finished.\n\n[DONE:{TID}] built src/app.py and tests")
    assert scan(line, TID) == [done("built src/app.py and tests")]


def test_json_text_value_ends_at_end_of_value() -> None:
    line = f'{{"type":"text","text":"Done [DONE:{TID}] built src/app.py"}}'
    assert scan(line, TID) == [done("built src/app.py")]


def test_json_escapes_decoded() -> None:
    line = json.dumps({"text": f'[DONE:{TID}] said "hi" to café ☕\nnext [ERROR:{TID}] boom'})
    assert "\\u00e9" in line and '\\"' in line and "\\n" in line
    assert scan(line, TID) == [done('said "hi" to café ☕'), Marker(Kind.ERROR, TID, "boom")]


def test_json_keys_are_not_scanned() -> None:
    line = json.dumps({f"[DONE:{TID}] key": "value", "v": f"[ERROR:{TID}] value"})
    assert scan(line, TID) == [Marker(Kind.ERROR, TID, "value")]


def test_json_values_in_document_order() -> None:
    doc: dict[str, object] = {
        "a": [f"[PROGRESS:{TID}] 10% - one", {"b": f"[PROGRESS:{TID}] 20% - two"}],
        "c": f"[DONE:{TID}] three",
    }
    assert scan(json.dumps(doc), TID) == [progress(10, "one"), progress(20, "two"), done("three")]


def test_json_tool_input_with_echo_gets_quote_rule() -> None:
    line = json.dumps({"input": {"command": f'echo "[DONE:{TID}] from echo"'}})
    assert scan(line, TID) == [done("from echo")]


def test_json_escaped_ansi_inside_token() -> None:
    line = json.dumps({"text": f"[DO\x1b[1mNE:{TID}] bold"})
    assert "\\u001b" in line and "[DONE:" not in line
    assert scan(line, TID) == [done("bold")]


def test_json_escaped_bracket() -> None:
    assert scan(f'{{"text": "\\u005bDONE:{TID}] escaped"}}', TID) == [done("escaped")]


def test_json_string_holding_json_is_scanned_too() -> None:
    inner = json.dumps({"text": f"[DONE:{TID}] nested"})
    assert scan(json.dumps({"result": inner}), TID) == [done("nested")]


def test_ansi_around_json_line() -> None:
    line = f"\x1b[2m{json.dumps({'text': f'[DONE:{TID}] x'})}\x1b[0m"
    assert scan(line, TID) == [done("x")]


def test_broken_json_line_scanned_raw_with_quote_rule() -> None:
    line = f'{{"type":"text","text":"[DONE:{TID}] cut off \\u00e9\\nrest'
    assert scan(line, TID) == [done("cut off é")]


def test_bracket_line_that_is_not_json_scanned_raw() -> None:
    assert scan(f"[DONE:{TID}] starts with a bracket", TID) == [done("starts with a bracket")]


def test_deeply_nested_json_does_not_raise() -> None:
    line = "[" * 100_000 + f'"[DONE:{TID}] deep"' + "]" * 100_000
    assert scan(line, TID) == [done("deep")]


def test_json_surrogate_pair_in_quoted_raw_text() -> None:
    line = f'print("[DONE:{TID}] party \\ud83c\\udf89 and lone \\ud800")'
    assert scan(line, TID) == [done("party 🎉 and lone \ufffd")]


# --- unicode, placeholders, several markers ------------------------------------------------


@pytest.mark.parametrize("summary", ["🎉 shipped ✅", "实现了用户认证 API", "café — naïve résumé"])
def test_unicode_summaries(summary: str) -> None:
    assert scan(f"[DONE:{TID}] {summary}", TID) == [done(summary)]
    assert scan(claude_line(f"[DONE:{TID}] {summary}"), TID) == [done(summary)]


@pytest.mark.parametrize("kind", ["DONE", "ERROR", "QUESTION"])
@pytest.mark.parametrize(
    "placeholder",
    [
        "<one-line summary of deliverables>",
        "<specific question>",
        "<specific question with options if applicable>",
        "<what went wrong and what was tried>",
        "<what went wrong and what you tried>",
    ],
)
def test_placeholders_ignored(kind: str, placeholder: str) -> None:
    assert scan(f"[{kind}:{TID}] {placeholder}", TID) == []


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (Kind.DONE, "<Header/> and <Footer/>"),
        (Kind.DONE, "<App/>"),
        (Kind.ERROR, "<stdin>: cannot open <config.yaml>"),
        (Kind.QUESTION, "<nav> or <header>?"),
        (Kind.DONE, "<>"),
    ],
)
def test_real_reports_in_angle_brackets_count(kind: Kind, text: str) -> None:
    # only the prompt's literal placeholder texts are the prompt echoed back
    assert scan(f"[{kind.value}:{TID}] {text}", TID) == [Marker(kind, TID, text)]
    assert scan(f'echo "[{kind.value}:{TID}] {text}"', TID) == [Marker(kind, TID, text)]
    assert scan(claude_line(f"[{kind.value}:{TID}] {text}"), TID) == [Marker(kind, TID, text)]


def test_prompt_echo_of_protocol_yields_nothing() -> None:
    prompt = (
        f'   echo "[PROGRESS:{TID}] <0-100>% - <what you just completed>"\n'
        f'   echo "[DONE:{TID}] <one-line summary of deliverables>"\n'
        f'   echo "[ERROR:{TID}] <what went wrong and what was tried>"\n'
        f'   echo "[QUESTION:{TID}] <specific question>"\n'
    )
    assert scan(prompt, TID) == []


def test_angle_brackets_inside_real_text_kept() -> None:
    assert scan(f"[DONE:{TID}] <b> tag fixed", TID) == [done("<b> tag fixed")]


def test_several_markers_in_one_line() -> None:
    line = f"[PROGRESS:{TID}] 90% - tests pass [DONE:other] theirs [DONE:{TID}] all done"
    assert scan(line, TID) == [progress(90, "tests pass"), done("all done")]
    assert scan(line) == [progress(90, "tests pass"), done("theirs", "other"), done("all done")]


def test_adjacent_tokens() -> None:
    assert scan("[DONE:a][ERROR:b] e") == [done("", "a"), Marker(Kind.ERROR, "b", "e")]


def test_several_markers_in_text_in_order() -> None:
    text = "\n".join(
        [
            f"[PROGRESS:{TID}] 10% - scaffold",
            "noise",
            claude_line(f"[PROGRESS:{TID}] 60% - api"),
            f'echo "[QUESTION:{TID}] Postgres or SQLite?"',
            f"[DONE:{TID}] done",
        ]
    )
    assert scan(text, TID) == [
        progress(10, "scaffold"),
        progress(60, "api"),
        Marker(Kind.QUESTION, TID, "Postgres or SQLite?"),
        done("done"),
    ]


def test_marker_is_frozen() -> None:
    marker = done("x")
    with pytest.raises(AttributeError):
        marker.text = "y"  # type: ignore[misc]


# --- LineSplitter ------------------------------------------------------------------------------


def test_splitter_lines_and_partial() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\r\nthree\rfour") == ["two", "three"]
    assert splitter.flush() == ["four"]
    assert splitter.flush() == []


def test_splitter_crlf_split_across_chunks_is_one_terminator() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\r") == ["a"]  # a bare CR ends the line at once
    assert splitter.feed(b"\nb\n") == ["b"]
    assert splitter.flush() == []


def test_splitter_keeps_empty_lines() -> None:
    assert split_all([b"a\n\n\r\n\rb"]) == ["a", "", "", "", "b"]


def test_splitter_multibyte_char_split_across_chunks() -> None:
    data = "é日🎉\n".encode()
    chunks = [data[i : i + 1] for i in range(len(data))]
    assert split_all(chunks) == ["é日🎉"]


def test_splitter_invalid_bytes_become_replacement_chars() -> None:
    assert split_all([b"a\xff\xfeb\n", b"c\xe6\x97"]) == ["a\ufffd\ufffdb", "c\ufffd"]


def test_splitter_cuts_huge_line() -> None:
    splitter = LineSplitter(max_line=1000)
    lines = splitter.feed(b"x" * 2500 + b"\nshort\n")
    assert lines == ["x" * 1000, "x" * 1000, "x" * 500, "short"]


def test_splitter_cuts_huge_line_fed_in_chunks_with_bounded_buffer() -> None:
    splitter = LineSplitter(max_line=1000)
    out: list[str] = []
    for _ in range(250):
        out += splitter.feed(b"y" * 10)
        assert splitter._size <= 1000  # memory stays bounded while the line grows
    out += splitter.feed(b"\n") + splitter.flush()
    assert out == ["y" * 1000, "y" * 1000, "y" * 500]


def test_splitter_default_limit_cuts_a_multi_megabyte_line() -> None:
    lines = split_all([b"z" * (3 << 20) + b"\n"])
    assert [len(line) for line in lines] == [1 << 20] * 3


@pytest.mark.parametrize("offset", [0, 1, 3, 5, 9, 12, 17, 40])
def test_marker_across_a_cut_is_found_whole(offset: int) -> None:
    # the marker starts `offset` characters before the cut: it must not be split by it
    marker = f"[DONE:{TID}] shipped the parser"
    data = ("a" * (1000 - offset) + marker + "\n").encode()
    lines = split_all([data], max_line=1000)
    assert [m for line in lines for m in scan_line(line, TID)] == [done("shipped the parser")]
    assert "".join(lines) == data.decode().rstrip("\n")
    assert all(len(line) <= 1000 for line in lines)


def test_quoted_marker_across_a_cut_keeps_its_quote() -> None:
    data = ("a" * 995 + f'echo "[DONE:{TID}] ok" | tee x\n').encode()
    lines = split_all([data[i : i + 7] for i in range(0, len(data), 7)], max_line=1000)
    assert [m for line in lines for m in scan_line(line, TID)] == [done("ok")]


def test_marker_after_48_mib_on_one_line_is_found() -> None:
    splitter = LineSplitter()
    found: list[Marker] = []
    block = b"x" * 65536
    for _ in range(48 * 16):
        for line in splitter.feed(block):
            found += scan_line(line, TID)
    # the marker starts 7 characters before the cut at 49 MiB
    tail = b"x" * ((1 << 20) - 7) + f"[DONE:{TID}] after 48 MiB\n".encode()
    for line in splitter.feed(tail) + splitter.flush():
        found += scan_line(line, TID)
    assert found == [done("after 48 MiB")]


def test_cut_points_do_not_depend_on_chunking() -> None:
    text = "".join(f"[DO{i}[DONE:x] y " for i in range(400)) + "\n"
    data = text.encode()
    whole = split_all([data], max_line=300)
    assert split_all([data[i : i + 13] for i in range(0, len(data), 13)], max_line=300) == whole
    assert "".join(whole) == text.rstrip("\n")


def test_json_event_line_is_kept_whole_past_max_line() -> None:
    event = claude_line(f"[DONE:{TID}] big").replace("big", "big" + " " * 5000)
    splitter = LineSplitter(max_line=1000, json_events=True)
    assert splitter.feed((event + "\nplain\n").encode()) == [event, "plain"]


def test_json_event_line_past_max_event_is_dropped_whole() -> None:
    forged = json.dumps({"type": "tool_use", "input": "x" * 3000 + f"[DONE:{TID}] forged"})
    splitter = LineSplitter(max_line=100, json_events=True, max_event=1000)
    data = (forged + "\n" + "y" * 250 + "\n").encode()
    out = [line for i in range(0, len(data), 64) for line in splitter.feed(data[i : i + 64])]
    assert out + splitter.flush() == ["y" * 100, "y" * 100, "y" * 50]
    assert splitter._size == 0


def test_json_events_leave_plain_text_lines_cut_as_text() -> None:
    splitter = LineSplitter(max_line=100, json_events=True)
    assert splitter.feed(b"  " + b"z" * 248 + b"\n") == ["  " + "z" * 98, "z" * 100, "z" * 50]


def test_splitter_rejects_nonpositive_limit() -> None:
    with pytest.raises(ValueError, match="max_line"):
        LineSplitter(0)


def test_splitter_then_scan_finds_markers_fed_byte_by_byte() -> None:
    data = f"\x1b[1m[DONE:{TID}] 日本語 🎉\x1b[0m\r\n".encode()
    lines = split_all([data[i : i + 1] for i in range(len(data))])
    assert [m for line in lines for m in scan_line(line, TID)] == [done("日本語 🎉")]


# --- properties --------------------------------------------------------------------------------

_FRAGMENTS = [
    f"[DONE:{TID}] ",
    f"[PROGRESS:{TID}] 50% - ",
    "[ERROR:x.y] ",
    "[QUESTION:",
    "[DONE:]",
    "]",
    " summary ",
    "é",
    "日本",
    "🎉",
    "\n",
    "\r",
    "\r\n",
    '"',
    "'",
    "\\",
    "\\n",
    "\\u00e9",
    "\\ud83c\\udf89",
    '{"text":"',
    '"}',
    "[",
    "{",
    "\x1b[1m",
    "\x1b]0;t\x07",
    "\x1b",
    "<x>",
    "100%",
    "101%",
]
_BYTE_FRAGMENTS = [f.encode() for f in _FRAGMENTS] + [b"\xff", b"\xe6\x97", b"\xf0\x9f", b"\x80"]

markerish_text = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=4), max_size=40).map(
    "".join
)
markerish_bytes = st.lists(
    st.sampled_from(_BYTE_FRAGMENTS) | st.binary(max_size=4), max_size=40
).map(b"".join)


@given(data=markerish_bytes, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_property_chunking_does_not_change_markers(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    via_splitter = [m for line in split_all(chunks) for m in scan_line(line)]
    assert via_splitter == scan(data.decode("utf-8", errors="replace"))


# Noise that cannot form a marker, a quote before a token, JSON, an escape or a placeholder.
noise = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs"), blacklist_characters="[]{}\"'\\<>\u2028\u2029"
    ),
    max_size=20,
)
marker_spec = st.tuples(
    st.sampled_from(list(Kind)),
    st.sampled_from([TID, "other-2"]),
    st.integers(min_value=0, max_value=100),
    noise,
    noise,
    st.sampled_from(["raw", "double", "single", "json"]),
)


def _render(spec: tuple[Kind, str, int, str, str, str]) -> tuple[str, Marker]:
    kind, tid, percent, prefix, body, style = spec
    token = f"[{kind.value}:{tid}]"
    if kind is Kind.PROGRESS:
        marker = Marker(kind, tid, body.strip(), percent)
        body = f"{percent}% - {body}"
    else:
        marker = Marker(kind, tid, body.strip())
    if style == "double":
        return f'{prefix}echo "{token} {body}" > /dev/null', marker
    if style == "single":
        return f"{prefix}echo '{token} {body}' ; true", marker
    if style == "json":
        return json.dumps({"type": "text", "text": f"{prefix}{token} {body}\nmore"}), marker
    return f"{prefix}{token} {body}", marker


@given(
    items=st.lists(st.tuples(noise, marker_spec), max_size=8),
    trailer=noise,
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_property_markers_in_noise_found_exactly_in_order(
    items: list[tuple[str, tuple[Kind, str, int, str, str, str]]], trailer: str, newline: str
) -> None:
    lines: list[str] = []
    expected: list[Marker] = []
    for noise_line, spec in items:
        line, marker = _render(spec)
        lines += [noise_line, line]
        expected.append(marker)
    text = newline.join([*lines, trailer])
    assert scan(text) == expected
    assert scan(text, TID) == [m for m in expected if m.terminal_id == TID]


_ID = re.compile(r"[A-Za-z0-9_.-]+")


@given(text=markerish_text | st.text(st.characters(blacklist_categories=())))
def test_property_random_text_never_raises(text: str) -> None:
    markers = scan(text)
    for marker in markers:
        assert _ID.fullmatch(marker.terminal_id)
        assert marker.text == marker.text.strip()
        assert marker.final == (marker.percent is None)
        assert marker.percent is None or 0 <= marker.percent <= 100
    assert scan(text, TID) == [m for m in markers if m.terminal_id == TID]
