"""One attempt, followed: read the agent's log as it grows and feed it, the clock and the
exit to the attempt's state machine (`attemptstate`), which decides the outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from orchlib.executors.base import Handle
from orchlib.plan import Limits
from orchlib.run.attemptstate import RETRIED, AttemptState, Outcome, Result
from orchlib.run.spend import Meter
from orchlib.run.streams import OutputAdapter

__all__ = ["READ_BLOCK", "RETRIED", "Follow", "Outcome", "Result", "follow"]

READ_BLOCK = 1 << 16

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
    """Follow the attempt until its process has ended; the first final marker decides it."""
    state = AttemptState(f.terminal_id, f.limits, f.adapter, time.monotonic(), f.shell,
                         f.started_ago, f.quiet_for, f.verdicts)  # fmt: skip
    try:
        with f.log.open("rb") as reader:
            _read(f, state, reader, fresh=False)  # what an adopted attempt printed unwatched
            state.caught_up()
            _loop(f, state, reader)
            _read(f, state, reader, fresh=False)
            if f.meter is not None and f.meter.stopped and state.forced is None:
                state.over_budget(f.meter.reason)
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


def _read(f: Follow, state: AttemptState, reader: BinaryIO, fresh: bool) -> None:
    """Feed what the log grew by, a block at a time: a transcript is never held whole."""
    while block := reader.read(READ_BLOCK):
        _report(f, state.output(block, time.monotonic(), fresh))
        if f.meter is not None:
            f.meter.report(f.adapter.usage)


def _report(f: Follow, progress: list[tuple[int, str]]) -> None:
    for percent, text in progress:
        f.on_progress(percent, text)
