"""One attempt: follow an agent's log as it grows, act on its markers, decide the outcome."""

from __future__ import annotations

import enum
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from orchlib.executors.base import Handle
from orchlib.plan import Limits
from orchlib.run.markers import Kind, LineSplitter, Marker, scan, strip_ansi
from orchlib.run.streams import OutputAdapter


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


READ_BLOCK = 1 << 16
_FOREIGN = re.compile(r"\[(?:PROGRESS|DONE|ERROR|QUESTION):[A-Za-z0-9_.-]+\]\s*")
RETRIED = {Result.CLOSED, Result.STALLED, Result.TIMEOUT}


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


ProgressFn = Callable[[int, str], None]


@dataclass
class Follow:
    """The parameters of following one attempt."""

    handle: Handle
    log: Path
    terminal_id: str
    limits: Limits
    adapter: OutputAdapter
    stop: threading.Event
    on_progress: ProgressFn
    shell: bool = False
    # An adopted attempt began in an earlier run: its timeout counts from then, and its
    # stall clock from the last time its log grew.
    started_ago: float = 0.0
    quiet_for: float = 0.0


class _Watch:
    """Mutable bookkeeping of a followed attempt."""

    def __init__(self, follow: Follow) -> None:
        self.f = follow
        self.splitter = LineSplitter(json_events=follow.adapter.json_events)
        now = time.monotonic()
        self.started = now - follow.started_ago
        self.last_output = now - follow.quiet_for
        self.final: Marker | None = None
        self.final_at = 0.0
        self.done_marker: Marker | None = None
        self.last_line = ""
        self.forced: Result | None = None
        self.enter_sent = False

    def take(self, data: bytes, at_eof: bool = False) -> None:
        lines = self.splitter.feed(data)
        if at_eof:
            lines += self.splitter.flush()
        for line in lines:
            self.line(line)

    def line(self, raw: str) -> None:
        for text in self.f.adapter.texts(raw):
            found = scan(text, self.f.terminal_id)
            # The last line said is what a person reads in an error: plain text, and for a
            # report of ours its text, never the raw `[KIND:id]` token or escape codes.
            said = found[-1].text if found else _plain_token(strip_ansi(text)).strip()
            if said:
                self.last_line = said
            for marker in found:
                self.marker(marker)

    def marker(self, marker: Marker) -> None:
        if marker.kind is Kind.PROGRESS:
            if self.final is None:
                self.f.on_progress(marker.percent or 0, marker.text)
        elif marker.kind is Kind.DONE and self.done_marker is None:
            self.done_marker = marker
        if marker.final and self.final is None:
            self.final, self.final_at = marker, time.monotonic()


def follow(f: Follow) -> Outcome:
    """Follow the attempt until its process has ended; the first final marker decides it."""
    watch = _Watch(f)
    try:
        with f.log.open("rb") as reader:
            _catch_up(watch, reader)
            _loop(watch, reader)
            _consume(watch, reader)
            watch.take(b"", at_eof=True)
    finally:
        f.handle.close()
        f.handle.terminate(grace=0.5 if watch.forced else 2.0)
    return _decide(watch)


def _catch_up(watch: _Watch, reader: BinaryIO) -> None:
    """Read what an adopted attempt printed unwatched; its marker counts from the log's mtime."""
    _consume(watch, reader)
    if watch.final is not None:
        watch.final_at = min(watch.final_at, watch.last_output)


def _loop(watch: _Watch, reader: BinaryIO) -> None:
    f = watch.f
    while True:
        if _consume(watch, reader):
            watch.last_output = time.monotonic()
            watch.enter_sent = False
        if f.handle.poll() is not None:
            return
        if f.stop.is_set():
            watch.forced = Result.INTERRUPTED
            return
        next_check = _deadlines(watch)
        if next_check is None:
            return
        f.handle.wait_output(next_check)


def _deadlines(watch: _Watch) -> float | None:
    """Seconds to sleep before the next limit; None when a limit was hit (attempt ends)."""
    f, now = watch.f, time.monotonic()
    waits: list[float] = []
    if watch.final is not None and not f.shell:
        waits.append(watch.final_at + f.limits.exit_grace - now)
    if f.limits.timeout:
        left = watch.started + f.limits.timeout - now
        if left <= 0:
            watch.forced = Result.TIMEOUT
        waits.append(left)
    if f.limits.stall_timeout and watch.final is None:
        left = watch.last_output + f.limits.stall_timeout - now
        if left <= 0 and not watch.enter_sent and f.handle.send_enter():
            watch.enter_sent, watch.last_output = True, now
            left = f.limits.stall_timeout
        elif left <= 0:
            watch.forced = Result.STALLED
        waits.append(left)
    if watch.forced is not None or (waits and min(waits) <= 0):
        return None
    return min(waits, default=3600.0)


def _consume(watch: _Watch, reader: BinaryIO) -> bool:
    """Feed what the log grew by, a block at a time: a transcript is never held whole."""
    got = False
    while block := reader.read(READ_BLOCK):
        watch.take(block)
        got = True
    return got


def _outcome(watch: _Watch, result: Result, text: str) -> Outcome:
    f = watch.f
    usage = dict(f.adapter.usage)
    limit = f.adapter.limit if result is Result.PAUSED else None
    denied = tuple(getattr(f.adapter, "denied", ()))
    return Outcome(result, text, f.handle.poll(), f.adapter.session_id, usage,
                   limit.reset_at if limit else None, denied)  # fmt: skip


def _decide(watch: _Watch) -> Outcome:
    lost = _lost(watch)
    if lost is not None and (watch.final is None or watch.f.shell):
        return lost
    if watch.f.shell:
        return _decide_shell(watch)
    if watch.final is not None:
        return _outcome(watch, Result[watch.final.kind.value], watch.final.text)
    limit = watch.f.adapter.limit
    if limit is not None and watch.forced is not Result.INTERRUPTED:
        return _outcome(watch, Result.PAUSED, f"usage limit: {limit.text}")
    if watch.forced is not None:
        return _outcome(watch, watch.forced, _forced_text(watch))
    tail = f": {watch.last_line}" if watch.last_line else ""
    code = watch.f.handle.poll()
    text = f"agent exited (code {code}) without DONE, ERROR or QUESTION{tail}"
    return _outcome(watch, Result.CLOSED, text)


def _lost(watch: _Watch) -> Outcome | None:
    """`worker lost` when the attempt's host died under it (not when we stopped it); a
    final marker it printed before still decides an agent's attempt."""
    if watch.forced is not None or not getattr(watch.f.handle, "lost", False):
        return None
    return _outcome(watch, Result.LOST, f"worker lost: {watch.f.handle.host}")


def _decide_shell(watch: _Watch) -> Outcome:
    """The first ERROR or QUESTION decides, as for agents; else the exit code, which must
    agree with a DONE (DESIGN §5)."""
    if watch.forced is not None:
        return _outcome(watch, watch.forced, _forced_text(watch))
    final = watch.final
    if final is not None and final.kind is not Kind.DONE:
        return _outcome(watch, Result[final.kind.value], final.text)
    code = watch.f.handle.poll()
    if code == 0:
        summary = watch.done_marker.text if watch.done_marker else watch.last_line
        return _outcome(watch, Result.DONE, summary)
    if watch.done_marker is not None:
        return _outcome(
            watch, Result.ERROR, f"DONE was printed, but the command exited with code {code}"
        )
    tail = f": {watch.last_line}" if watch.last_line else ""
    return _outcome(watch, Result.ERROR, f"command exited with code {code}{tail}")


def _plain_token(text: str) -> str:
    """A line that holds another terminal's marker: the text after its token."""
    match = _FOREIGN.search(text)
    return text[match.end() :] if match else text


def _forced_text(watch: _Watch) -> str:
    limits = watch.f.limits
    if watch.forced is Result.TIMEOUT:
        return f"timed out after {limits.timeout:g}s; process group killed"
    if watch.forced is Result.STALLED:
        sent = " (Enter was sent)" if watch.enter_sent else ""
        return f"no output for {limits.stall_timeout:g}s{sent}; process group killed"
    return "interrupted"
