"""One attempt as a state machine: output chunks, clock ticks and the exit go in, the
decision comes out. No process, file, thread or clock here: the caller (`attempt.follow`)
reads the log, asks the handle, and passes the time; tests drive it with made-up bytes and
times (tests/test_attemptstate.py)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from orchlib.agents.streams import OutputAdapter, PlainText
from orchlib.plan import Limits
from orchlib.run.hotlines import HotLines
from orchlib.run.linesplit import LineSplitter
from orchlib.run.markers import Kind, Marker, scan, strip_ansi
from orchlib.state.model import Status


class Result(enum.Enum):
    """How an attempt ended."""

    DONE = "done"
    ERROR = "error"
    QUESTION = "question"
    CLOSED = "closed"
    STALLED = "stalled"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    PAUSED = "paused"  # the CLI reported a usage limit: no retry is used (DESIGN §11)
    LOST = "lost"  # the host running it died (a dask worker): run again, no retry used (§8)
    OVER_BUDGET = "over budget"  # usage went past a budget: stopped, no retry used (§15)


RETRIED = {Result.CLOSED, Result.STALLED, Result.TIMEOUT}

# The one vocabulary, from the agent's line to the task's state: a final marker ends the
# attempt with the like-named result, and a result that ends the task gives it its state.
_ENDED_BY: dict[Kind, Result] = {
    Kind.DONE: Result.DONE,
    Kind.ERROR: Result.ERROR,
    Kind.QUESTION: Result.QUESTION,
    Kind.APPROVE: Result.DONE,  # a reviewer's verdict (DESIGN §16): `review` reads it so
    Kind.REJECT: Result.ERROR,
}
VERDICTS = frozenset({Kind.APPROVE, Kind.REJECT})
_TASK_STATUS: dict[Result, Status] = {
    Result.DONE: Status.DONE,  # once its outputs and verify pass
    Result.QUESTION: Status.QUESTION,
    Result.PAUSED: Status.PAUSED,
    **{r: Status.ERROR for r in (Result.ERROR, Result.INTERRUPTED, Result.LOST, *RETRIED)},
    Result.OVER_BUDGET: Status.ERROR,  # its own budget; a project's or plan's holds it PENDING
}


def ended_by(kind: Kind) -> Result:
    """The result of an attempt ended by a final marker of this kind (not PROGRESS)."""
    return _ENDED_BY[kind]


def task_status(result: Result) -> Status:
    """The state a task takes when an attempt with this result ends it (a retried or lost
    attempt ends the task only when none is left: then it failed)."""
    return _TASK_STATUS[result]


_FOREIGN = re.compile(r"\[(?:PROGRESS|DONE|ERROR|QUESTION|APPROVE|REJECT):[A-Za-z0-9_.-]+\]\s*")


@dataclass(frozen=True)
class Outcome:
    """The result of an attempt, with the text that explains it."""

    result: Result
    text: str
    exit_code: int | None = None
    session_id: str | None = None
    usage: dict[str, object] = field(default_factory=dict)
    reset_at: float | None = None  # PAUSED: when the CLI said its limit resets (epoch)
    denied: tuple[str, ...] = ()  # tool calls the CLI refused (claude `-p` permissions)


@dataclass(frozen=True)
class Tick:
    """What to do next: wait `wait` seconds (None: until output or exit), send Enter, or
    stop (a limit was hit: end the attempt)."""

    wait: float | None = None
    send_enter: bool = False
    stop: bool = False


class AttemptState:
    """The bookkeeping of one attempt. Times are the caller's clock (monotonic seconds).

    An adopted attempt began `started_ago` seconds before `now` (its timeout counts from
    then) and its log last grew `quiet_for` seconds before (its stall clock counts from then).
    `verdicts`: a reviewer's attempt, decided by APPROVE / REJECT alone (DESIGN §16); a task's
    attempt ignores those.
    """

    def __init__(
        self,
        terminal_id: str,
        limits: Limits,
        adapter: OutputAdapter,
        now: float,
        shell: bool = False,
        started_ago: float = 0.0,
        quiet_for: float = 0.0,
        verdicts: bool = False,
    ) -> None:
        self.terminal_id, self.limits, self.shell = terminal_id, limits, shell
        self.verdicts = verdicts
        self.adapter = adapter
        self.splitter: LineSplitter | HotLines = _splitter(adapter)
        self.started = now - started_ago
        self.last_output = now - quiet_for
        self.final: Marker | None = None
        self.final_at = 0.0
        self.done_marker: Marker | None = None
        self.last_line = ""
        self.forced: Result | None = None
        self.budget_text = ""
        self.enter_sent = False
        self._progress: list[tuple[int, str]] = []

    # --- inputs ---------------------------------------------------------------------------

    def output(self, data: bytes, now: float, fresh: bool = True) -> list[tuple[int, str]]:
        """Take a chunk of output; the PROGRESS reports in it (percent, text).

        `fresh`: printed now (the stall clock restarts); False for what an adopted attempt
        printed before it was adopted."""
        if fresh and data:
            self.last_output, self.enter_sent = now, False
        for line in self.splitter.feed(data):
            self._line(line, now)
        return self._drain()

    def caught_up(self) -> None:
        """An adopted attempt's log was read: its final marker counts from the log's age."""
        if self.final is not None:
            self.final_at = min(self.final_at, self.last_output)

    def end_of_output(self, now: float) -> list[tuple[int, str]]:
        """The process has ended and its log was read to the end: the last, unfinished line."""
        for line in self.splitter.flush():
            self._line(line, now)
        return self._drain()

    def interrupted(self) -> None:
        """The run was interrupted (SIGINT/SIGTERM)."""
        self.forced = Result.INTERRUPTED

    def over_budget(self, text: str) -> None:
        """A budget the attempt counts toward is spent (DESIGN §15): stop as on Ctrl-C."""
        self.forced, self.budget_text = Result.OVER_BUDGET, text

    def entered(self, sent: bool, now: float) -> None:
        """The result of the Enter `tick` asked for: sent (the stall clock restarts) or not."""
        if sent:
            self.enter_sent, self.last_output = True, now
        else:
            self.forced = Result.STALLED

    def tick(self, now: float) -> Tick:
        """The next step at time `now`: how long to wait, or Enter, or stop at a limit."""
        limits, waits = self.limits, []
        if self.final is not None and not self.shell:
            waits.append(self.final_at + limits.exit_grace - now)
        if limits.timeout:
            left = self.started + limits.timeout - now
            if left <= 0:
                self.forced = Result.TIMEOUT
            waits.append(left)
        if limits.stall_timeout and self.final is None and self.forced is None:
            left = self.last_output + limits.stall_timeout - now
            if left <= 0 and not self.enter_sent:
                return Tick(send_enter=True)
            if left <= 0:
                self.forced = Result.STALLED
            waits.append(left)
        if self.forced is not None or (waits and min(waits) <= 0):
            return Tick(stop=True)
        return Tick(wait=min(waits, default=3600.0))

    # --- the decision ---------------------------------------------------------------------

    def decide(self, exit_code: int | None, lost_on: str | None = None) -> Outcome:
        """The outcome, once the process has ended with `exit_code` (None: unknown).

        `lost_on`: the host that died under the attempt (not stopped by us); a final marker
        the agent printed before still decides it.
        """
        if lost_on is not None and self.forced is None and (self.final is None or self.shell):
            return self._outcome(Result.LOST, f"worker lost: {lost_on}", exit_code)
        if self.shell:
            return self._decide_shell(exit_code)
        if self.final is not None:
            return self._outcome(ended_by(self.final.kind), self.final.text, exit_code)
        limit = self.adapter.limit
        if limit is not None and self.forced not in (Result.INTERRUPTED, Result.OVER_BUDGET):
            return self._outcome(Result.PAUSED, f"usage limit: {limit.text}", exit_code)
        if self.forced is not None:
            return self._outcome(self.forced, self._forced_text(), exit_code)
        tail = f": {self.last_line}" if self.last_line else ""
        text = f"agent exited (code {exit_code}) without DONE, ERROR or QUESTION{tail}"
        return self._outcome(Result.CLOSED, text, exit_code)

    def _decide_shell(self, code: int | None) -> Outcome:
        """The first ERROR or QUESTION decides, as for agents; else the exit code, which must
        agree with a DONE (DESIGN §5)."""
        if self.forced is not None:
            return self._outcome(self.forced, self._forced_text(), code)
        final = self.final
        if final is not None and final.kind is not Kind.DONE:
            return self._outcome(ended_by(final.kind), final.text, code)
        if code == 0:
            summary = self.done_marker.text if self.done_marker else self.last_line
            return self._outcome(Result.DONE, summary, code)
        if self.done_marker is not None:
            text = f"DONE was printed, but the command exited with code {code}"
            return self._outcome(Result.ERROR, text, code)
        tail = f": {self.last_line}" if self.last_line else ""
        return self._outcome(Result.ERROR, f"command exited with code {code}{tail}", code)

    def _outcome(self, result: Result, text: str, code: int | None) -> Outcome:
        adapter = self.adapter
        limit = adapter.limit if result is Result.PAUSED else None
        denied = tuple(getattr(adapter, "denied", ()))
        return Outcome(result, text, code, adapter.session_id, dict(adapter.usage),
                       limit.reset_at if limit else None, denied)  # fmt: skip

    def _forced_text(self) -> str:
        if self.forced is Result.TIMEOUT:
            return f"timed out after {self.limits.timeout:g}s; process group killed"
        if self.forced is Result.STALLED:
            sent = " (Enter was sent)" if self.enter_sent else ""
            return f"no output for {self.limits.stall_timeout:g}s{sent}; process group killed"
        if self.forced is Result.OVER_BUDGET:
            return self.budget_text
        return "interrupted"

    # --- lines and markers ----------------------------------------------------------------

    def _line(self, raw: str, now: float) -> None:
        for text in self.adapter.texts(raw):
            found = scan(text, self.terminal_id)
            # The last line said is what a person reads in an error: plain text, and for a
            # report of ours its text, never the raw `[KIND:id]` token or escape codes.
            said = found[-1].text if found else _plain_token(strip_ansi(text)).strip()
            if said:
                self.last_line = said
            for marker in found:
                self._marker(marker, now)

    def _marker(self, marker: Marker, now: float) -> None:
        if (marker.kind in VERDICTS) is not self.verdicts:  # not this attempt's vocabulary
            return
        if marker.kind is Kind.PROGRESS:
            if self.final is None:
                self._progress.append((marker.percent or 0, marker.text))
        elif marker.kind is Kind.DONE and self.done_marker is None:
            self.done_marker = marker
        if marker.final and self.final is None:
            self.final, self.final_at = marker, now

    def _drain(self) -> list[tuple[int, str]]:
        found, self._progress = self._progress, []
        return found


def _splitter(adapter: OutputAdapter) -> LineSplitter | HotLines:
    """Plain text needs only its hot lines and its last line; an adapter of its own (JSON
    events, a CLI's text) reads every line."""
    if type(adapter) is PlainText:
        return HotLines()
    return LineSplitter(json_events=adapter.json_events)


def _plain_token(text: str) -> str:
    """A line that holds another terminal's marker: the text after its token."""
    match = _FOREIGN.search(text)
    return text[match.end() :] if match else text
