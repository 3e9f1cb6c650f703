"""The run's console: one line per event, readable with several tasks running at once.

Lines go to the stream given at construction (the real stdout captured at start: doit's
thread mode swaps `sys.stdout`, so nothing here looks it up at call time). On a terminal a
live footer under the lines shows every running task with its latest percent and the
counts so far; elsewhere (a pipe, a CI log) the output is plain lines only.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import IO

from orchlib import events as ev
from orchlib import executorregistry
from orchlib.bus import Subscriber
from orchlib.output.board import Board, Seen
from orchlib.output.consoletext import (
    clip,
    clock_time,
    is_terminal,
    paint,
    review_line,
    wants_color,
)
from orchlib.state.render import local_clock
from orchlib.state.table import format_duration
from orchlib.state.words import LOOKS, Shown

PROGRESS_EVERY = 2.0  # seconds between progress lines of one task...
PROGRESS_STEP = 10  # ...unless the percent moved this much
FOOTER_EVERY = 0.2  # seconds between redraws of the live footer for progress alone
_CLEAR_LINE = "\r\x1b[K"
Line = tuple[str, str, str]  # (label, kind, text) of one printed line


class Console(Subscriber):
    """A bus subscriber printing the run as it goes, and the summary at its end.

    Its `on_<event>` methods return the event's line, or None when it prints nothing.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        color: bool | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream, self._clock = stream, clock
        self._color = wants_color(stream) if color is None else color
        self._live = is_terminal(stream) if live is None else live
        self._footer_at = float("-inf")
        self._footer_shown = False
        self._began = clock()
        self._lock = threading.Lock()
        self._board = Board()
        self._up_to_date: dict[str, int] = {}
        self._width = 0

    def handle(self, event: ev.Event) -> None:
        """Print what the event says (progress lines are throttled per task)."""
        with self._lock:
            if isinstance(event, ev.TaskUpToDate):  # counted, printed as one line later
                self._up_to_date[event.plan_id] = self._up_to_date.get(event.plan_id, 0) + 1
                self._seen(event.plan_id, event.task_id).shown = Shown.UP_TO_DATE
                return
            self._flush_up_to_date(event)
            line: Line | None = self.dispatch(event)
            if line is not None:
                self._print(event, *line)
            elif self._live and self._clock() - self._footer_at >= FOOTER_EVERY:
                self._write(_CLEAR_LINE + self._footer())

    def close(self) -> None:
        """Take the live footer away (the summary follows on a clean line)."""
        with self._lock:
            if self._footer_shown:
                self._write(_CLEAR_LINE)

    def summary(self) -> str:
        """Counts per state, what to do about each unfinished task, and the wall time."""
        with self._lock:
            return self._board.summary(self._clock() - self._began)

    def answered(self, names: set[str]) -> None:
        """Tasks whose question was answered during the run: the summary says to resume."""
        with self._lock:
            self._board.answered(names)

    # --- lines --------------------------------------------------------------------------

    def on_run_started(self, e: ev.RunStarted) -> Line:
        labels = [f"{e.plan_id}:{task_id}" for task_id in e.task_ids]
        self._width = max([self._width, *map(len, labels)])
        for task_id in e.task_ids:  # the summary lists tasks in plan order
            self._seen(e.plan_id, task_id)
        n = len(e.task_ids)
        return e.plan_id, "dim", f"run started: {n} task{'' if n == 1 else 's'}"

    def on_run_finished(self, e: ev.RunFinished) -> Line:
        how = f" ({e.interrupted})" if e.interrupted else ""
        return e.plan_id, "dim", f"run finished{how}"

    def on_budget_spent(self, e: ev.BudgetSpent) -> Line:
        return self._name(e), "ask", f"{e.reason}: its running attempts are stopped"

    def on_budget_held(self, e: ev.BudgetHeld) -> Line:
        name, seen = self._named(e)
        seen.shown, seen.text = Shown.HELD, e.reason
        return name, "dim", f"{LOOKS[Shown.HELD].word}: {e.reason}"

    def on_task_reviewing(self, e: ev.TaskReviewing) -> Line:
        return self._name(e), *review_line(e)

    def on_task_reviewed(self, e: ev.TaskReviewed) -> Line:
        return self._name(e), *review_line(e)

    def on_tools_denied(self, e: ev.ToolsDenied) -> Line:
        tools = "; ".join(e.tools)
        return self._name(e), "ask", f"attempt {e.attempt}: the agent was refused {tools}"

    def on_task_paused(self, e: ev.TaskPaused) -> Line:
        name, seen = self._named(e)
        until = local_clock(e.until)
        seen.shown, seen.text = Shown.PAUSED, f"{e.profile}'s usage limit resets at {until}"
        if not e.hit:
            return name, "dim", f"PAUSED until {until}: waits for {e.profile}'s usage limit"
        said = clip(e.reason.removeprefix("usage limit: "))
        return (
            name,
            "ask",
            (
                f"PAUSED until {until}: {e.profile} usage limit (attempt {e.attempt}, no retry "
                f"used; other agents keep running): {said}"
            ),
        )

    def countdown(self, pauses: dict[str, float]) -> None:
        """While the run only waits for usage limits: the time left, in the live footer."""
        if not self._live:
            return
        now = time.time()
        left = ", ".join(
            f"{profile} in {format_duration(end - now)}" for profile, end in sorted(pauses.items())
        )
        with self._lock:
            text = f"waiting for usage limits to reset: {left}"
            self._footer_shown = True
            self._write(_CLEAR_LINE + (paint(text, "ask") if self._color else text))

    def gave_up(self, pauses: dict[str, float]) -> None:
        """`--no-wait-limits` ended the run: when to come back."""
        for profile, end in sorted(pauses.items()):
            at = datetime.fromtimestamp(end).astimezone().isoformat(timespec="seconds")
            self._write(
                (_CLEAR_LINE if self._live else "")
                + f"orchlib: {profile}'s usage limit resets at {local_clock(at)}; "
                f"come back then and re-run `doit` (tasks waiting on it are paused)\n"
            )

    def on_task_started(self, e: ev.TaskStarted) -> Line:
        name, seen = self._named(e)
        seen.shown, seen.printed_percent, seen.percent = Shown.RUNNING, -100, 0
        seen.started = self._clock()
        verb = "adopted running" if e.adopted else "started"
        where = f"pid {e.pid}" if e.host in ("", executorregistry.HERE) else f"on {e.host}"
        return name, "start", f"{verb} attempt {e.attempt} — {e.terminal_id} ({where})"

    def on_task_progress(self, e: ev.TaskProgress) -> Line | None:
        name, seen = self._named(e)
        seen.percent = e.percent
        now = self._clock()
        moved = abs(e.percent - seen.printed_percent) >= PROGRESS_STEP
        if not moved and now - seen.printed_at < PROGRESS_EVERY:
            return None
        seen.printed_at, seen.printed_percent = now, e.percent
        return name, "dim", f"{e.percent:3d}% {clip(e.text)}"

    def on_task_done(self, e: ev.TaskDone) -> Line:
        name, seen = self._named(e)
        seen.shown, seen.text = Shown.DONE, clip(e.summary)
        self._board.add_usage(e.usage)
        said = f": {seen.text}" if seen.text else ""
        return name, "ok", f"{LOOKS[Shown.DONE].word} in {format_duration(e.duration)}{said}"

    def on_task_failed(self, e: ev.TaskFailed) -> Line:
        name, seen = self._named(e)
        if not e.final:
            return name, "ask", f"attempt {e.attempt} failed: {clip(e.reason)} — retrying"
        seen.shown = Shown.INTERRUPTED if e.interrupted else Shown.FAILED
        seen.text = clip(e.reason)
        word = "INTERRUPTED" if e.interrupted else LOOKS[Shown.FAILED].word
        return name, "bad", f"{word} (attempt {e.attempt}): {seen.text}"

    def on_task_waiting(self, e: ev.TaskWaiting) -> Line:
        name, seen = self._named(e)
        seen.shown, seen.text = Shown.QUESTION, clip(e.question)
        word = "still waiting for an answer" if e.still else LOOKS[Shown.QUESTION].word
        return name, "ask", f'{word}: {seen.text} — doit answer {name} "..."'

    def on_task_approval(self, e: ev.TaskApproval) -> Line:
        name, seen = self._named(e)
        seen.shown, seen.text = Shown.APPROVAL, clip(e.summary)
        word = "still waiting for approval" if e.still else LOOKS[Shown.APPROVAL].word
        said = f": {seen.text}" if seen.text else ""
        return name, "ask", f'{word}{said} — doit approve {name}, or doit reject {name} "..."'

    def on_task_skipped(self, e: ev.TaskSkipped) -> Line:
        name, seen = self._named(e)
        seen.shown, seen.text = Shown.SKIPPED, self._board.why(e.plan_id, e.because)
        return name, "dim", f"skipped because {seen.text}"

    # --- output -------------------------------------------------------------------------

    def _seen(self, plan_id: str, task_id: str) -> Seen:
        return self._board.seen(plan_id, task_id)

    def _name(self, event: ev.Event) -> str:
        return f"{event.plan_id}:{getattr(event, 'task_id', '')}"

    def _named(self, event: ev.Event) -> tuple[str, Seen]:
        """PLAN:TASK of a task's event, and what the console knows of that task."""
        task_id = str(getattr(event, "task_id", ""))
        return f"{event.plan_id}:{task_id}", self._seen(event.plan_id, task_id)

    def _flush_up_to_date(self, event: ev.Event) -> None:
        count = self._up_to_date.pop(event.plan_id, 0)
        if count:
            noun = "task is" if count == 1 else "tasks are"
            self._print(event, event.plan_id, "ok", f"{count} {noun} up to date")

    def _print(self, event: ev.Event, label: str, kind: str, text: str) -> None:
        self._width = max(self._width, len(label))
        stamp = clock_time(event.at)
        if self._color:
            stamp, text = paint(stamp, "dim"), paint(text, kind)
        line = f"{stamp} {label.ljust(self._width)}  {text}\n"
        self._write(_CLEAR_LINE + line + self._footer() if self._live else line)

    def _footer(self) -> str:
        """The live footer: running tasks with their percent, then the counts (one line)."""
        self._footer_at = self._clock()
        text = self._board.footer(self._clock)
        text = text[: max(10, shutil.get_terminal_size().columns - 1)]
        self._footer_shown = bool(text)
        return paint(text, "dim") if text and self._color else text

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stdout
            self._stream.write(text)
            self._stream.flush()
