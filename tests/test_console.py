"""Console: one line per event on the stream it was given, throttled progress, the summary."""

from __future__ import annotations

import io
import re
import sys

import pytest

from orchlib.events import (
    Event,
    RunFinished,
    RunStarted,
    TaskDone,
    TaskFailed,
    TaskPaused,
    TaskProgress,
    TaskSkipped,
    TaskStarted,
    TaskUpToDate,
    TaskWaiting,
)
from orchlib.output.console import Console

P = "shop"
TIME = r"\d\d:\d\d:\d\d"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def started(task: str, attempt: int = 1, adopted: bool = False) -> TaskStarted:
    ref = {"pid": 321, "pgid": 321, "start": "1"}
    return TaskStarted(P, task, attempt, f"term-{task}", ref, "local", "log", "p", adopted=adopted)


def console_lines(*events: Event, clock: FakeClock | None = None) -> list[str]:
    out = io.StringIO()
    console = Console(out, clock=clock or FakeClock())
    for event in events:
        console.handle(event)
    return out.getvalue().splitlines()


def body(line: str) -> str:
    """The line without its time stamp."""
    assert re.match(f"{TIME} ", line), line
    return line[9:]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (RunStarted(P, ("t1", "t2")), "shop     run started: 2 tasks"),
        (RunStarted(P, ("t1",)), "shop     run started: 1 task"),
        (started("t1"), "shop:t1  started attempt 1 — term-t1 (pid 321)"),
        (started("t1", 2, adopted=True), "shop:t1  adopted running attempt 2 — term-t1 (pid 321)"),
        (TaskProgress(P, "t1", 45, "auth\nmiddleware"), "shop:t1   45% auth middleware"),
        (TaskDone(P, "t1", "API done", 1, "x", 125.0), "shop:t1  DONE in 2m05s: API done"),
        (TaskDone(P, "t1", "", 1, "x", 3.0), "shop:t1  DONE in 3s"),
        (
            TaskFailed(P, "t1", "exit 1", 1, final=False),
            "shop:t1  attempt 1 failed: exit 1 — retrying",
        ),
        (
            TaskFailed(P, "t1", "PostgreSQL refused", 2, final=True),
            "shop:t1  ERROR (attempt 2): PostgreSQL refused",
        ),
        (
            TaskFailed(P, "t1", "disk full", 1, final=True),
            "shop:t1  ERROR (attempt 1): disk full",
        ),
        (
            TaskFailed(P, "t1", "SIGINT", 1, final=True, interrupted=True),
            "shop:t1  INTERRUPTED (attempt 1): SIGINT",
        ),
        (
            TaskWaiting(P, "t1", "JWT or cookies?", 1, "x"),
            'shop:t1  QUESTION: JWT or cookies? — doit answer shop:t1 "..."',
        ),
        (
            TaskWaiting(P, "t1", "JWT?", 1, "x", still=True),
            'shop:t1  still waiting for an answer: JWT? — doit answer shop:t1 "..."',
        ),
        (TaskSkipped(P, "t1", ("t0",)), "shop:t1  skipped because t0 did not finish"),
        (RunFinished(P, interrupted="SIGTERM"), "shop  run finished (SIGTERM)"),
    ],
)
def test_one_line_per_event(event: Event, expected: str) -> None:
    [line] = console_lines(event)
    assert body(line) == expected


def test_labels_align_and_up_to_date_tasks_are_one_line() -> None:
    lines = console_lines(
        RunStarted(P, ("t1", "t2", "t3", "longer-task")),
        TaskUpToDate(P, "t1"),
        TaskUpToDate(P, "t2"),
        started("longer-task"),
        started("t3"),
        TaskFailed(P, "t3", "boom", 1, final=True),
        TaskSkipped(P, "longer-task", ("t3",)),
    )
    assert [body(line) for line in lines] == [
        "shop              run started: 4 tasks",
        "shop              2 tasks are up to date",
        "shop:longer-task  started attempt 1 — term-longer-task (pid 321)",
        "shop:t3           started attempt 1 — term-t3 (pid 321)",
        "shop:t3           ERROR (attempt 1): boom",
        "shop:longer-task  skipped because t3 failed",
    ]


def test_progress_is_throttled_per_task() -> None:
    clock = FakeClock()
    out = io.StringIO()
    console = Console(out, clock=clock)
    for percent, task, advance in [
        (1, "t1", 0),
        (2, "t1", 0.5),
        (3, "t2", 0),
        (9, "t1", 0.5),
        (11, "t1", 0),
        (12, "t1", 2.5),
        (13, "t1", 0.1),
    ]:
        clock.now += advance
        console.handle(TaskProgress(P, task, percent, f"step {percent}"))
    shown = [body(line) for line in out.getvalue().splitlines()]
    assert shown == [
        "shop:t1    1% step 1",
        "shop:t2    3% step 3",
        "shop:t1   11% step 11",
        "shop:t1   12% step 12",
    ]


def test_summary_counts_states_and_says_what_to_do() -> None:
    clock = FakeClock()
    out = io.StringIO()
    console = Console(out, clock=clock)
    for event in [
        TaskUpToDate(P, "t0"),
        started("t1"),
        TaskDone(P, "t1", "ok", 1, "x", 3.0),
        started("t2"),
        TaskFailed(P, "t2", "tests\nfail", 1, final=True),
        TaskWaiting(P, "t3", "Which DB?", 1, "x"),
        TaskSkipped(P, "t4", ("t2", "t3")),
        started("t5"),
        TaskFailed(P, "t5", "SIGINT", 1, final=True, interrupted=True),
    ]:
        console.handle(event)
    clock.now += 192
    assert console.summary().splitlines() == [
        "orchlib: 1 done, 1 up to date, 1 failed, 1 interrupted, 1 waiting, 1 skipped in 3m12s",
        "  shop:t2 failed: tests fail — fix the cause and re-run `doit`",
        '  shop:t3 asks: Which DB? — doit answer shop:t3 "..."',
        "  shop:t4 skipped: t2 failed, t3 waits for an answer — it runs once that is resolved",
        "  shop:t5 did not finish — re-run `doit` to resume it",
    ]


def test_summary_of_an_empty_run() -> None:
    assert Console(io.StringIO(), clock=FakeClock()).summary() == "orchlib: nothing to do in 0s"


def test_writes_to_the_stream_captured_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    out, swapped = io.StringIO(), io.StringIO()
    console = Console(out)
    monkeypatch.setattr(sys, "stdout", swapped)  # as doit's thread mode does
    console.handle(started("t1"))
    assert "started attempt 1" in out.getvalue() and swapped.getvalue() == ""


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty, plain = TTY(), io.StringIO()
    for stream in (tty, plain):
        Console(stream).handle(TaskFailed(P, "t1", "boom", 1, final=True))
    assert "\x1b[31mERROR (attempt 1): boom\x1b[0m" in tty.getvalue()
    assert "\x1b" not in plain.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    quiet = TTY()
    Console(quiet).handle(TaskFailed(P, "t1", "boom", 1, final=True))
    assert "ERROR (attempt 1): boom\n" in quiet.getvalue()
    assert not re.search(r"\x1b\[[0-9;]*m", quiet.getvalue())  # the live footer, no colour


def test_agent_text_cannot_inject_terminal_codes() -> None:
    [line] = console_lines(TaskDone(P, "t1", "ok\x1b]0;pwned\x07\x1b[2J", 1, "x", 1.0))
    assert "\x1b" not in line and "\x07" not in line


def test_a_closed_stream_does_not_raise() -> None:
    out = io.StringIO()
    console = Console(out)
    out.close()
    console.handle(started("t1"))
    assert "1 running" in console.summary()


def test_summary_lists_tasks_in_plan_order_whatever_finished_first() -> None:
    console = Console(io.StringIO(), clock=FakeClock())
    for event in (
        RunStarted(P, ("t1", "t2", "t3")),
        TaskWaiting(P, "t3", "JWT?", 1, "x"),
        TaskFailed(P, "t2", "disk full", 1, final=True),
        TaskFailed(P, "t1", "exited with code 4", 1, final=True),
    ):
        console.handle(event)
    assert console.summary().splitlines()[1:] == [
        "  shop:t1 failed: exited with code 4 — fix the cause and re-run `doit`",
        "  shop:t2 failed: disk full — fix the cause and re-run `doit`",
        '  shop:t3 asks: JWT? — doit answer shop:t3 "..."',
    ]


def test_live_footer_on_a_terminal_shows_running_tasks_and_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "200")
    tty, clock = TTY(), FakeClock()
    console = Console(tty, clock=clock)
    for event in (RunStarted(P, ("t1", "t2", "t3")), started("t1"), started("t2")):
        console.handle(event)
    console.handle(TaskProgress(P, "t1", 45, "routes"))
    console.handle(TaskProgress(P, "t2", 40, "models"))
    clock.now += 0.5
    console.handle(TaskProgress(P, "t2", 47, "models"))  # within PROGRESS_STEP: footer only
    assert tty.getvalue().count("models") == 1
    footer = tty.getvalue().rsplit("\n", 1)[1].rsplit("\r\x1b[K", 1)[1]
    assert footer == "running 2: shop:t1 45% 0s, shop:t2 47% 0s | 1 pending"  # elapsed after %
    console.handle(TaskDone(P, "t1", "routes done", 1, "x", 3.0))
    line, footer = tty.getvalue().rsplit("\n", 2)[1:]
    assert line.endswith("shop:t1  DONE in 3s: routes done")
    assert footer == "running 1: shop:t2 47% 0s | 1 done, 1 pending"
    console.close()
    assert tty.getvalue().endswith("\r\x1b[K")


def test_live_footer_redraws_for_progress_a_few_times_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    tty, clock = TTY(), FakeClock()
    console = Console(tty, clock=clock, color=False)
    console.handle(started("t1"))
    console.handle(TaskProgress(P, "t1", 1, "x"))  # the task's first progress line
    before = tty.getvalue()
    for percent in range(2, 9):  # small steps within FOOTER_EVERY: no line, no redraw
        console.handle(TaskProgress(P, "t1", percent, "x"))
    assert tty.getvalue() == before
    clock.now += 0.25
    console.handle(TaskProgress(P, "t1", 9, "x"))
    assert tty.getvalue() == before + "\r\x1b[Krunning 1: shop:t1 9% 0s"


def test_no_footer_off_a_terminal() -> None:
    lines = console_lines(started("t1"), TaskProgress(P, "t1", 45, "x"))
    assert all("\r" not in line and "running" not in line for line in lines)


def test_summary_totals_cost_and_tokens_and_says_answered() -> None:
    console = Console(io.StringIO(), color=False, live=False)
    usage = {"cost_usd": 0.25, "input_tokens": 1000, "output_tokens": 200}
    console.handle(TaskDone(P, "t1", "ok", 1, "x", 3.0, usage))
    console.handle(TaskDone(P, "t2", "ok", 1, "x", 3.0, {**usage, "cost_usd": 0.5}))
    console.handle(TaskWaiting(P, "t3", "Which port?", 1, "x"))
    console.answered({"shop:t3"})
    summary = console.summary()
    assert summary.splitlines()[0].endswith("— $0.75 spent, 2,400 tokens")
    assert "shop:t3 was answered — run `doit` to resume it" in summary


def test_a_usage_limit_is_one_line_and_the_summary_says_when_to_come_back() -> None:
    until = "2030-01-02T15:00:00.000000Z"
    out = io.StringIO()
    console = Console(out, clock=FakeClock())
    console.handle(RunStarted(P, ("t1",)))
    console.handle(started("t1"))
    console.handle(TaskPaused(P, "t1", 1, "claude", until, "usage limit: Claude AI usage limit"))
    line = body(out.getvalue().splitlines()[-1])
    assert line.startswith("shop:t1  PAUSED until ")
    assert "claude usage limit (attempt 1, no retry used; other agents keep running)" in line
    assert "1 paused" in console.summary()
    assert "shop:t1 paused: claude's usage limit resets at" in console.summary()


def test_the_countdown_shows_only_on_a_terminal() -> None:
    piped, live = io.StringIO(), io.StringIO()
    Console(piped, live=False).countdown({"claude": 10**10})
    Console(live, live=True, color=False).countdown({"claude": 10**10})
    assert piped.getvalue() == ""
    assert "waiting for usage limits to reset: claude in " in live.getvalue()
    assert live.getvalue().startswith("\r\x1b[K") and "\n" not in live.getvalue()
