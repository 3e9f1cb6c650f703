"""The attempt state machine on its own: bytes, times and exit codes in, decisions out.
No process, file or clock: every time is given."""

from __future__ import annotations

from orchlib.agents.streams import PlainText
from orchlib.doitedge.runner import task_failure
from orchlib.plan import Limits
from orchlib.run.attemptstate import RETRIED, AttemptState, Result, Tick, ended_by, task_status
from orchlib.run.markers import Kind
from orchlib.run.taskrun import TaskResult
from orchlib.state.model import Status

TID = "term-t-1-abc"


def machine(shell: bool = False, **limits: float | None) -> AttemptState:
    return AttemptState(TID, Limits(**limits), PlainText(), now=0.0, shell=shell)  # type: ignore[arg-type]


def test_progress_then_done_decides_done_after_the_exit() -> None:
    m = machine(stall_timeout=None)
    assert m.output(f"[PROGRESS:{TID}] 40% parsed\n".encode(), 1.0) == [(40, "parsed")]
    # A marker split across two chunks is still one marker.
    done = f"[DONE:{TID}] all good\n".encode()
    assert m.output(done[:9], 2.0) == []
    m.output(done[9:], 2.5)
    assert m.tick(3.0) == Tick(wait=29.5)  # exit grace counts from the DONE
    assert m.decide(0).result is Result.DONE and m.decide(0).text == "all good"


def test_a_silent_agent_gets_enter_once_then_is_stalled() -> None:
    m = machine(stall_timeout=10.0)
    assert m.tick(0.0) == Tick(wait=10.0)
    assert m.tick(10.0) == Tick(send_enter=True)
    m.entered(True, 10.0)
    assert m.tick(12.0) == Tick(wait=8.0)
    m.output(b"thinking\n", 15.0)  # output restarts the stall clock and re-arms Enter
    assert m.tick(25.0) == Tick(send_enter=True)
    m.entered(True, 25.0)
    assert m.tick(35.0) == Tick(stop=True)
    outcome = m.decide(-15)
    assert outcome.result is Result.STALLED
    assert outcome.text == "no output for 10s (Enter was sent); process group killed"


def test_no_stdin_to_send_enter_to_means_stalled_at_once() -> None:
    m = machine(stall_timeout=5.0)
    assert m.tick(5.0) == Tick(send_enter=True)
    m.entered(False, 5.0)
    assert m.tick(5.0) == Tick(stop=True)
    assert m.decide(None).text == "no output for 5s; process group killed"


def test_timeout_bounds_the_whole_attempt_and_counts_from_an_adopted_start() -> None:
    m = machine(timeout=60.0, stall_timeout=None)
    assert m.tick(59.0) == Tick(wait=1.0)
    assert m.tick(60.0) == Tick(stop=True)
    assert m.decide(None).result is Result.TIMEOUT
    adopted = AttemptState(TID, Limits(timeout=60.0), PlainText(), now=100.0, started_ago=61.0)
    assert adopted.tick(100.0) == Tick(stop=True)


def test_an_adopted_attempts_old_done_counts_from_the_logs_age() -> None:
    m = AttemptState(TID, Limits(exit_grace=30.0), PlainText(), now=100.0, quiet_for=40.0)
    m.output(f"[DONE:{TID}] finished long ago\n".encode(), 100.0, fresh=False)
    m.caught_up()
    assert m.tick(100.0) == Tick(stop=True)  # its exit grace ran out while nobody watched
    assert m.decide(-1).result is Result.DONE


def test_exit_without_a_marker_is_closed_with_the_last_plain_line() -> None:
    m = machine()
    m.output(b"working\n[DONE:term-other-1-xyz] not mine\n", 1.0)
    m.end_of_output(2.0)
    outcome = m.decide(0)
    assert outcome.result is Result.CLOSED
    assert outcome.text == "agent exited (code 0) without DONE, ERROR or QUESTION: not mine"


def test_first_final_marker_decides_and_question_is_kept() -> None:
    m = machine()
    m.output(f"[QUESTION:{TID}] which db?\n[DONE:{TID}] done anyway\n".encode(), 1.0)
    assert (m.decide(0).result, m.decide(0).text) == (Result.QUESTION, "which db?")


def test_shell_commands_are_decided_by_their_exit_code_and_must_agree_with_done() -> None:
    plain = machine(shell=True)
    plain.output(b"compiling\nbroke", 1.0)
    plain.end_of_output(2.0)  # the last line had no newline
    assert plain.decide(3).text == "command exited with code 3: broke"
    assert plain.decide(0).result is Result.DONE and plain.decide(0).text == "broke"
    said = machine(shell=True)
    said.output(f"[DONE:{TID}] built\n".encode(), 1.0)
    assert said.tick(1.0) == Tick(wait=3600.0)  # no exit grace, no stall: its exit decides
    assert said.decide(1).text == "DONE was printed, but the command exited with code 1"
    assert said.decide(0).text == "built"


def test_an_interrupt_is_the_outcome_unless_a_marker_came_first() -> None:
    m = machine()
    m.interrupted()
    assert (m.decide(None).result, m.decide(None).text) == (Result.INTERRUPTED, "interrupted")


# --- one status vocabulary: marker kind -> attempt result -> task status -> doit -----------


def test_every_final_marker_and_every_result_has_one_meaning() -> None:
    assert {k: ended_by(k) for k in (Kind.DONE, Kind.ERROR, Kind.QUESTION)} == {
        Kind.DONE: Result.DONE,
        Kind.ERROR: Result.ERROR,
        Kind.QUESTION: Result.QUESTION,
    }
    statuses = {r: task_status(r) for r in Result}  # a new Result without a status fails here
    assert statuses[Result.DONE] is Status.DONE and statuses[Result.PAUSED] is Status.PAUSED
    assert statuses[Result.QUESTION] is Status.QUESTION
    failed = {r for r, s in statuses.items() if s is Status.ERROR}
    assert failed == {*RETRIED, Result.ERROR, Result.INTERRUPTED, Result.LOST, Result.OVER_BUDGET}


def test_doit_sees_a_task_result_as_before() -> None:
    assert task_failure(TaskResult(Status.DONE, "ok")) is None
    ended = [(Status.QUESTION, False), (Status.ERROR, False), (Status.ERROR, True)]
    said = [task_failure(TaskResult(status, "why", stopped)) for status, stopped in ended]
    assert [f.message if f else None for f in said] == [
        "waiting for an answer: why",
        "failed: why",
        "interrupted: why",
    ]
