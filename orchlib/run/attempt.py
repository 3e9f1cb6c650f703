"""One attempt, followed: read the agent's log as it grows and feed it, the clock and the
exit to the attempt's state machine (`attemptstate`), which decides the outcome."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from orchlib.agents.streams import OutputAdapter
from orchlib.executors.base import Handle, Watchable
from orchlib.plan import Limits
from orchlib.run.attemptstate import RETRIED, AttemptState, Outcome, Result
from orchlib.run.spend import Meter

__all__ = ["READ_BLOCK", "RETRIED", "Follow", "Outcome", "Result", "follow"]

READ_BLOCK = 1 << 16
ENTER_CHECK = 0.02  # seconds between looks at an Enter still being sent

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
    meter: Meter | None = None  # takes the usage as the CLI reports it; a budget stops it
    verdicts: bool = False  # a reviewer: APPROVE / REJECT decide it (DESIGN §16)


def follow(f: Follow) -> Outcome:
    """Follow the attempt until its process has ended; the first final marker decides it.

    Where the executor watches all its attempts from one thread (`Watchable`), this thread
    only waits for the verdict; else it reads and waits itself."""
    state = AttemptState(f.terminal_id, f.limits, f.adapter, time.monotonic(), f.shell,
                         f.started_ago, f.quiet_for, f.verdicts)  # fmt: skip
    try:
        with f.log.open("rb", buffering=0) as reader:
            _read(f, state, reader, fresh=False)  # what an adopted attempt printed unwatched
            state.caught_up()
            stepper = _Stepper(f, state, reader)
            if isinstance(f.handle, Watchable) and f.handle.watch(stepper.step):
                stepper.wait()
            else:
                _loop(f, state, reader)
                _read(f, state, reader, fresh=False)
                _over_budget(f, state)
                _report(f, state.end_of_output(time.monotonic()))
    finally:
        f.handle.close()
        f.handle.terminate(grace=0.5 if state.forced else 2.0)
    lost = f.handle.host if getattr(f.handle, "lost", False) else None  # a dask worker died
    return state.decide(f.handle.poll(), lost_on=lost)


def _loop(f: Follow, state: AttemptState, reader: BinaryIO) -> None:
    while True:
        _read(f, state, reader, fresh=True)
        if f.meter is not None and f.meter.stopped:  # past a budget: stop as on Ctrl-C
            state.over_budget(f.meter.reason)
            return
        if f.handle.poll() is not None:
            return
        if f.stop.is_set():
            state.interrupted()
            return
        step = state.tick(time.monotonic())
        if step.send_enter:
            state.entered(f.handle.send_enter(), time.monotonic())
        elif step.stop:
            return
        else:
            f.handle.wait_output(step.wait)


def _over_budget(f: Follow, state: AttemptState) -> None:
    """A budget stopped it (its process may have ended of that first): it ends over budget."""
    if f.meter is not None and f.meter.stopped and state.forced is None:
        state.over_budget(f.meter.reason)


def _read(f: Follow, state: AttemptState, reader: BinaryIO, fresh: bool) -> None:
    """Feed what the log grew by, a block at a time: a transcript is never held whole."""
    while block := reader.read(READ_BLOCK):
        _report(f, state.output(block, time.monotonic(), fresh))
        if f.meter is not None:
            f.meter.report(f.adapter.usage)


class _Stepper:
    """`_loop` in steps, taken on the executor's watching thread: a block of output at a
    time (others take their turn between two), then the exit, the interrupt, the limits."""

    def __init__(self, f: Follow, state: AttemptState, reader: BinaryIO) -> None:
        self.f, self.state, self.reader = f, state, reader
        self.ending: int | None = None  # decided: read up to this offset, then done
        self.entering: _Call | None = None  # an Enter being sent
        self.done = threading.Event()
        self.error: BaseException | None = None

    def wait(self) -> None:
        """Until the steps have decided (and read the log to its end)."""
        self.done.wait()
        if self.error is not None:
            raise self.error

    def step(self, now: float) -> float | None:
        """One turn: the seconds until the next without an event, or None when decided."""
        try:
            return self._step(now)
        except BaseException as exc:  # raised again on the attempt's own thread
            self.error = exc
            self.done.set()
            return None

    def _step(self, now: float) -> float | None:
        f, state = self.f, self.state
        block = self.reader.read(READ_BLOCK)
        if block:
            _report(f, state.output(block, now, fresh=self.ending is None))
            if f.meter is not None:
                f.meter.report(f.adapter.usage)
        if self.ending is not None:
            if block and self.reader.tell() < self.ending:
                return 0.0
            _over_budget(f, state)
            _report(f, state.end_of_output(time.monotonic()))
            self.done.set()
            return None
        if len(block) == READ_BLOCK:
            return 0.0
        return self._decide(now)

    def _decide(self, now: float) -> float:
        f, state = self.f, self.state
        if f.handle.poll() is None:
            if f.meter is not None and f.meter.stopped:  # past a budget: stop as on Ctrl-C
                state.over_budget(f.meter.reason)
            elif f.stop.is_set():
                state.interrupted()
            elif self.entering is not None:
                return self._entered()
            else:
                tick = state.tick(now)
                if tick.send_enter:  # may be a call to a remote worker: not on this thread
                    self.entering = _Call(f.handle.send_enter)
                    return ENTER_CHECK
                if not tick.stop:
                    return math.inf if tick.wait is None else max(0.0, tick.wait)
        # Ended: what it printed up to now is read (a process still running may go on).
        self.ending = os.fstat(self.reader.fileno()).st_size
        return 0.0

    def _entered(self) -> float:
        """The Enter sent meanwhile, once its call has returned."""
        call = self.entering
        assert call is not None
        if not call.done.is_set():
            return ENTER_CHECK
        self.entering = None
        self.state.entered(call.result, time.monotonic())
        return 0.0


class _Call:
    """`fn()` on a thread of its own; `result` once `done` is set (False if it raised)."""

    def __init__(self, fn: Callable[[], bool]) -> None:
        self.result, self.done = False, threading.Event()

        def run() -> None:
            try:
                self.result = fn()
            finally:
                self.done.set()

        threading.Thread(target=run, name="orchlib-enter", daemon=True).start()


def _report(f: Follow, progress: list[tuple[int, str]]) -> None:
    for percent, text in progress:
        f.on_progress(percent, text)
