"""The one table of status words, colours and advice that every screen reads."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path
from typing import Any

import pytest

import orchlib
from orchlib.events import TaskFailed, TaskPaused, TaskSkipped, TaskStarted
from orchlib.output.console import Console
from orchlib.state.model import PlanState, Question, Status, TaskRecord
from orchlib.state.render import skip_reason
from orchlib.state.table import next_steps
from orchlib.state.words import (
    LOOKS,
    Shown,
    Tone,
    advice,
    look_of,
    painted,
    plain_look,
    shown_of,
    step,
    table_json,
)


def test_every_shown_state_has_one_look_and_every_status_its_word() -> None:
    assert set(LOOKS) == set(Shown)
    assert all(plain_look(s).word == s.value for s in Status)  # the STATE word is the JSON's
    assert {look.status for look in LOOKS.values()} == set(Status)


def test_an_answered_question_looks_answered_and_an_open_one_a_question() -> None:
    asked = TaskRecord(id="t1", status=Status.QUESTION, questions=(Question("Which?"),))
    answered = TaskRecord(
        id="t1", status=Status.QUESTION, questions=(Question("Which?", answer="pg"),)
    )
    assert look_of(asked) is LOOKS[Shown.QUESTION]
    assert (shown_of(answered), look_of(answered).word) == (Shown.ANSWERED, "ANSWERED")


def test_pending_is_told_apart_by_its_fields() -> None:
    assert shown_of(TaskRecord("t1")) is Shown.PENDING
    held = TaskRecord("t1", held=True, pending_reason="plan budget spent")
    assert shown_of(held) is Shown.HELD
    assert shown_of(TaskRecord("t1", pending_reason="no completion stamp")) is Shown.STALE
    assert {look_of(t).word for t in (held, TaskRecord("t1"))} == {"PENDING"}


def test_painted_colours_only_a_look_with_a_colour() -> None:
    assert painted("ERROR", LOOKS[Shown.FAILED]) == "\x1b[31mERROR\x1b[0m"
    assert painted("PAUSED", LOOKS[Shown.PAUSED]) == "PAUSED"


def test_interrupted_is_learnt_from_the_field_not_from_the_error_text() -> None:
    stopped = TaskRecord(id="t1", status=Status.ERROR, error="SIGTERM", interrupted=True)
    # An agent's own error that happens to start with the word is a failure.
    failed = TaskRecord(id="t2", status=Status.ERROR, error="interrupted by a flaky test")
    steps = next_steps("p", PlanState(plan_id="p", tasks={"t1": stopped, "t2": failed}))
    assert "  p:t1 was interrupted: re-run `doit` to resume" in steps
    assert any(step.startswith("  p:t2 failed: fix the cause") for step in steps)


def test_advice_and_steps_come_from_the_table() -> None:
    assert advice(Shown.FAILED, "p:t1", "boom") == (
        "p:t1 failed: boom — fix the cause and re-run `doit`"
    )
    assert step(Shown.HELD, "p:t1", "plan budget spent") == (
        "p:t1 waits: plan budget spent; raise that budget and run `doit`"
    )
    assert advice(Shown.DONE, "p:t1") == step(Shown.RUNNING, "p:t1") == ""
    # Agent text is a value, never a template: braces in it stay as they are.
    assert (
        advice(Shown.QUESTION, "p:t1", "{name}?") == 'p:t1 asks: {name}? — doit answer p:t1 "..."'
    )


def test_a_dependency_reads_the_same_in_the_console_and_in_doit_status() -> None:
    """Both screens say why a skipped task's dependency blocks it from the table's `why`."""
    until = "2030-01-02T15:00:00.000000Z"
    out = io.StringIO()
    console = Console(out, color=False, live=False)
    ref = {"pid": 1}
    for event in [
        TaskStarted("p", "a", 1, "x", ref, "local", "log", "pr"),
        TaskFailed("p", "a", "SIGINT", 1, final=True, interrupted=True),
        TaskPaused("p", "b", 1, "claude", until, "usage limit"),
        TaskSkipped("p", "c", ("a", "b")),
    ]:
        console.handle(event)
    said = out.getvalue().splitlines()[-1]
    state = PlanState(
        "p",
        tasks={
            "a": TaskRecord("a", status=Status.ERROR, interrupted=True),
            "b": TaskRecord("b", status=Status.PAUSED),
            "c": TaskRecord("c", status=Status.SKIPPED, skipped_because=("a", "b")),
        },
    )
    reason = skip_reason(state.tasks["c"], state)
    assert reason == "a did not finish, b waits for a usage limit"
    assert said.endswith(f"skipped because {reason}")


def test_the_dashboard_is_served_the_table() -> None:
    served = table_json()
    assert set(served) == {s.value for s in Status}
    assert served["ERROR"] == {"word": "ERROR", "tone": Tone.ERROR.value}
    css = (Path(orchlib.__file__).parent / "web" / "static" / "dashboard.css").read_text()
    for tone in Tone:  # every tone has its colour on the page
        assert f".t-{tone.value}" in css, tone


DISPLAY_WORDS = {"failed", "done", "waiting", "answered", "approval", "paused", "skipped",
                 "held", "running", "interrupted", "up to date", "pending"}  # fmt: skip


@pytest.mark.parametrize("package", ["output", "state", "doitedge", "web", "run", "assistant"])
def test_no_display_word_is_compared_as_a_string(package: str) -> None:
    """`x == "failed"` or `x in ("running", ...)`: a state learnt from its word."""
    found = []
    for path in sorted((Path(orchlib.__file__).parent / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            if isinstance(node.left, ast.Attribute) and node.left.attr == "verdict":
                continue  # a reviewer's verdict (event data: approve, reject, paused), no status
            for side in [node.left, *node.comparators]:
                words = [n.value for n in ast.walk(side) if isinstance(n, ast.Constant)]
                hits = [w for w in words if isinstance(w, str) and w.lower() in DISPLAY_WORDS]
                found += [f"{path.name}:{node.lineno}: {w!r}" for w in hits]
    assert not found, found


def test_console_words_are_the_tables() -> None:
    source = (Path(orchlib.__file__).parent / "output" / "console.py").read_text()
    assert not re.search(r"\"(up to date|interrupted|answered|held)\"", source)


def test_orchestration_md_and_doit_status_give_the_same_next_step(tmp_path: Path) -> None:
    from orchlib.state.escape import md_text
    from orchlib.state.render import view

    answered = TaskRecord("t1", status=Status.QUESTION, questions=(Question("Q", answer="A"),))
    approval = TaskRecord("t2", status=Status.APPROVAL, summary="ready")
    state = PlanState("p", phases=(("t1", "t2"),), tasks={"t1": answered, "t2": approval})
    steps = next_steps("p", state)
    phases: Any = view(state, tmp_path)["phases"]
    for task in phases[0]["tasks"]:
        wanted = step(shown_of(state.tasks[task["id"]]), f"p:{task['id']}")
        assert f"  {wanted}" in steps
        assert dict(task["details"])["Next"] == md_text(wanted)


def test_orchestration_md_graph_colours_a_state_by_its_tone(tmp_path: Path) -> None:
    from orchlib.state.render import view

    tasks = {
        "a": TaskRecord("a", status=Status.APPROVAL),  # waits for a person, as a question does
        "b": TaskRecord("b", status=Status.ERROR, interrupted=True),
        "c": TaskRecord("c", status=Status.PAUSED),  # a tone without a classDef: its name
    }
    graph: Any = view(PlanState("p", phases=(("a", "b", "c"),), tasks=tasks), tmp_path)["graph"]
    assert [n["css"] for n in graph["nodes"]] == ["question", "error", "paused"]
    assert [name for name, _ in graph["classes"]] == [
        "pending", "in_progress", "done", "error", "question", "skipped",
    ]  # fmt: skip


def test_orchestration_md_from_kept_rows_is_the_text_a_fresh_render_gives(tmp_path: Path) -> None:
    """The renderer keeps each task's escaped row and node while its record is the same
    object; a row that reads other tasks (PENDING, SKIPPED) or the clock (PAUSED) is made
    again each time. Every render equals a fresh renderer's, through a run's changes."""
    from dataclasses import replace

    from orchlib.state.render import MarkdownRenderer

    kept = MarkdownRenderer([], tmp_path)
    ids = ["t1", "t2", "t3", "t4"]
    tasks = {tid: TaskRecord(tid, title=f"<{tid}> | x", depends_on=tuple(ids[:i]))
             for i, tid in enumerate(ids)}  # fmt: skip
    steps = [
        ("t1", {"status": Status.IN_PROGRESS, "percent": 40, "started_at": "2026-12-07T07:00Z"}),
        ("t1", {"status": Status.DONE, "summary": "`x` [ok]", "finished_at": "2026-12-07T07:01Z"}),
        ("t2", {"status": Status.ERROR, "error": "boom | <b>"}),
        ("t3", {"status": Status.SKIPPED, "skipped_because": ("t2",)}),
        ("t2", {"status": Status.PAUSED, "paused_until": "2026-12-07T09:00:00Z"}),
        ("t2", {"status": Status.DONE, "summary": "again"}),
        ("t3", {"status": Status.PENDING}),
        ("t4", {"status": Status.QUESTION, "questions": (Question("why?"),)}),
    ]  # fmt: skip
    texts = set()
    for tid, change in steps:
        tasks[tid] = replace(tasks[tid], **change)
        state = PlanState("p", phases=(tuple(ids),), tasks=dict(tasks))
        text = kept.render(state)
        assert text == MarkdownRenderer([], tmp_path).render(state)
        texts.add(text)
    assert len(texts) == len(steps)  # every change showed
    assert "Blocked by: t2" not in text and "Skipped because" not in text  # t3 re-derived
