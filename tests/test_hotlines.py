"""The fast plain-text reader (`run/hotlines.py`): on any output, cut anywhere, an attempt
finds exactly the markers and the last line the line-by-line splitter finds."""

from __future__ import annotations

import random

import pytest

from orchlib.agents.streams import PlainText
from orchlib.plan import Limits
from orchlib.run.attemptstate import AttemptState
from orchlib.run.hotlines import HotLines
from orchlib.run.linesplit import LineSplitter

TID = "term-t-1-abc"
PIECES = [
    b"plain words", b"  ", b"\n", b"\r", b"\r\n", b"\n\n", f"[DONE:{TID}] shipped".encode(),
    f'echo "[ERROR:{TID}] broke" && x'.encode(), f"[PROGRESS:{TID}] 40% - half".encode(),
    b"[DONE:term-other-1] not ours", b"\x1b[32m", b"\x1b[0m", b"[DO", b"NE:", TID.encode(),
    b"] tail", b'{"text": "\\u005bDONE:' + TID.encode() + b'] escaped"}', b"\xe2\x82",
    b"\xe2\x82\xac", b"\xa0", b"\xc2\xa0", b"\x1c", b"[QUESTION:" + TID.encode() + b"] which?",
    b"[", b"x" * 40,
]  # fmt: skip


def _run(state: AttemptState, chunks: list[bytes]) -> tuple[list[tuple[int, str]], str, object]:
    progress = [p for chunk in chunks for p in state.output(chunk, 1.0)]
    progress += state.end_of_output(2.0)
    final = state.final and (state.final.kind, state.final.text)
    return progress, state.last_line, (final, state.done_marker and state.done_marker.text)


def _both(chunks: list[bytes], max_line: int = 1 << 20) -> None:
    fast = AttemptState(TID, Limits(), PlainText(), now=0.0, shell=True)
    slow = AttemptState(TID, Limits(), PlainText(), now=0.0, shell=True)
    assert isinstance(fast.splitter, HotLines)
    fast.splitter, slow.splitter = HotLines(max_line), LineSplitter(max_line)
    assert _run(fast, chunks) == _run(slow, chunks), chunks


def _cut(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 6))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("seed", range(300))
def test_same_markers_and_last_line_as_the_line_splitter(seed: int) -> None:
    rng = random.Random(seed)
    data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 30)))
    _both(_cut(data, rng), max_line=rng.choice([16, 64, 1 << 20]))


def test_a_marker_split_across_reads_counts() -> None:
    line = f"noise\n[DONE:{TID}] split\n".encode()
    for at in range(1, len(line)):
        state = AttemptState(TID, Limits(), PlainText(), now=0.0)
        state.output(line[:at], 1.0)
        state.output(line[at:], 1.0)
        assert state.final is not None and state.final.text == "split", at


def test_cold_lines_are_not_handed_out_one_by_one() -> None:
    reader = HotLines()
    lines = reader.feed(b"a\n" * 1000 + f"[DONE:{TID}] x\n".encode() + b"b\n" * 1000 + b"c")
    assert lines == ["a", f"[DONE:{TID}] x", "b"]
    assert reader.flush() == ["c"]


def test_a_marker_after_48_mib_on_one_line_counts() -> None:
    state = AttemptState(TID, Limits(), PlainText(), now=0.0)
    block = b"y" * (1 << 20)
    for _ in range(48):
        state.output(block, 1.0)
    state.output(f"[DONE:{TID}] at the end".encode(), 1.0)
    state.end_of_output(2.0)
    assert state.final is not None and state.final.text == "at the end"
