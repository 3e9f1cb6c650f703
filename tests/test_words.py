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


def test_interrupted_is_learnt_from_the_field_not_from_the_error_text() -> None:
    from orchlib.state.model import PlanState
    from orchlib.state.table import next_steps

    stopped = TaskRecord(id="t1", status=Status.ERROR, error="SIGTERM", interrupted=True)
    # An agent's own error that happens to start with the word is a failure.
    failed = TaskRecord(id="t2", status=Status.ERROR, error="interrupted by a flaky test")
    steps = next_steps("p", PlanState(plan_id="p", tasks={"t1": stopped, "t2": failed}))
    assert "  p:t1 was interrupted: re-run `doit` to resume" in steps
    assert any(step.startswith("  p:t2 failed: fix the cause") for step in steps)
