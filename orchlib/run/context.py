"""What one run owns: its stop switch, bus, executor, repositories, pauses, ledger and
attempt numbers, made when the run starts and handed down explicitly to whatever runs.

Nothing of it outlives the run, so two runs in one process (two `cli.main` calls) never
share a subscriber or a switch; nothing outside the run reaches it through the checkout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from orchlib.bus import Bus
from orchlib.checkout import Checkout, attempts_on_disk
from orchlib.executors.base import Executor
from orchlib.run.git import Repos
from orchlib.run.pauses import Pauses
from orchlib.run.spend import Ledger


@dataclass
class Interrupt:
    """The run's stop switch: set by SIGINT/SIGTERM, seen by every attempt at once.

    The wake pipe exists from the start: created lazily, two attempts starting at once
    could each make one, and the one `trigger` does not write to would never wake.
    """

    event: threading.Event = field(default_factory=threading.Event)
    signal_name: str = ""
    _pipe: tuple[int, int] = field(default_factory=os.pipe, repr=False)

    @property
    def wake_fd(self) -> int:
        """A descriptor that becomes readable (and stays so) once the run is interrupted."""
        return self._pipe[0]

    def trigger(self, signal_name: str) -> None:
        """Stop the run: no new attempt starts, running agents are terminated."""
        self.signal_name = self.signal_name or signal_name
        self.event.set()
        os.write(self._pipe[1], b"!")

    def is_set(self) -> bool:
        """True once the run was interrupted."""
        return self.event.is_set()

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """While inside, SIGINT/SIGTERM trigger this switch (the previous handlers after)."""

        def handler(signum: int, frame: object) -> None:
            self.trigger(signal.Signals(signum).name)

        old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, previous in old.items():
                signal.signal(sig, previous)


@dataclass(eq=False)
class RunContext:
    """One run of the checkout `co`: the services every part of the run is handed.

    A race runs its racers on a copy (`records.replace`) with a stop switch and an
    executor of its own; the pauses, ledger, repositories and attempt numbers stay shared.
    """

    co: Checkout
    interrupt: Interrupt
    executor: Executor  # where the run's processes start
    bus: Bus  # the run's events, free of secrets before any subscriber sees them (§13)
    repos: Repos = field(default_factory=Repos)  # `isolation: worktree` locks, identities
    sandbox: str = ""  # `--sandbox` / ORCH_SANDBOX for this run ("": each task's own)
    # Why the run starts no more agents though running ones go on (a full disk); "" if not.
    stopped: str = ""
    pauses: Pauses = field(default_factory=Pauses)  # profiles waiting for a usage limit
    ledger: Ledger = field(default_factory=Ledger)  # spend against budgets (DESIGN §15)
    attempts: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_attempt(self, plan_id: str, task_id: str) -> int:
        """Attempt numbers count across runs (from the logs on disk), so logs never collide."""
        with self.lock:
            if plan_id not in self.attempts:
                self.attempts[plan_id] = attempts_on_disk(self.co.layout.logs(plan_id))
            numbers = self.attempts[plan_id]
            numbers[task_id] = numbers.get(task_id, 0) + 1
            return numbers[task_id]


def new_run(
    co: Checkout, interrupt: Interrupt, executor: Executor, sandbox: str = ""
) -> RunContext:
    """The context of a run starting now, its bus redacting the checkout's secrets."""
    bus = Bus(co.secrets.redact if co.secrets else None)
    return RunContext(co, interrupt, executor, bus, sandbox=sandbox)
