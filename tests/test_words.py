"""The one table of status words and colours that every screen reads."""

from __future__ import annotations

from orchlib.state.model import Question, Status, TaskRecord
from orchlib.state.words import ANSWERED, LOOKS, look_of, painted


def test_every_status_has_one_look_whose_word_is_its_json_form() -> None:
    assert set(LOOKS) == set(Status)
    assert all(LOOKS[s].word == s.value for s in Status)


def test_an_answered_question_looks_answered_and_an_open_one_a_question() -> None:
    asked = TaskRecord(id="t1", status=Status.QUESTION, questions=(Question("Which?"),))
    answered = TaskRecord(
        id="t1", status=Status.QUESTION, questions=(Question("Which?", answer="pg"),)
    )
    assert look_of(asked) is LOOKS[Status.QUESTION]
    assert look_of(answered) is ANSWERED


def test_painted_colours_only_a_look_with_a_colour() -> None:
    assert painted("ERROR", LOOKS[Status.ERROR]) == "\x1b[31mERROR\x1b[0m"
    assert painted("PAUSED", LOOKS[Status.PAUSED]) == "PAUSED"
