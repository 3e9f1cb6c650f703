"""A checkout: the folder with `dodo.py` and `plans/`, its plans, and its runtime layout."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from orchlib.plan import Plan
from orchlib.plan.environment import DEFAULT_EXCLUDE
from orchlib.plan.file import load_plans
from orchlib.redact import Secrets, secrets_in
from orchlib.run import templates
from orchlib.run.pauses import Pauses
from orchlib.run.spend import Ledger
from orchlib.state import stamps
from orchlib.state.uptodate import Specs

if TYPE_CHECKING:
    from orchlib.events import Bus
    from orchlib.executors.base import Executor
    from orchlib.run.git import Repos


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


@dataclass
class RunContext:
    """What one run owns, made afresh by each run: its bus, interrupt, executor, attempt
    numbers, usage-limit pauses and the repositories' locks. Nothing of it outlives the run,
    so two runs in one process (two `cli.main` calls) never share a subscriber or a switch."""

    interrupt: Interrupt = field(default_factory=Interrupt)
    # Why the run starts no more agents though running ones go on (a full disk); "" if not.
    stopped: str = ""
    pauses: Pauses = field(default_factory=Pauses)  # profiles waiting for a usage limit
    ledger: Ledger = field(default_factory=Ledger)  # spend against budgets (DESIGN §15)
    attempts: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    repos: Repos | None = field(default=None, repr=False)
    executor: Executor | None = field(default=None, repr=False)
    bus: Bus | None = field(default=None, repr=False)
    sandbox: str = ""  # `--sandbox` / ORCH_SANDBOX for this run ("": each task's own)


@dataclass
class Checkout:
    """The plans of a checkout, where their runtime files go, and their tasks' spec hashes;
    `run` is the context of the run working on it now (`new_run` starts another)."""

    root: Path
    plans: dict[str, Plan]
    # Tasks a pruned `doit run` left out because they and their upstream are done.
    up_to_date: dict[str, list[str]] = field(default_factory=dict)
    # Why each task of a plan would run (None: up to date), as computed while loading.
    verdicts: dict[str, dict[str, str | None]] = field(default_factory=dict)
    run: RunContext = field(default_factory=RunContext, repr=False)

    def new_run(self) -> RunContext:
        """A fresh context for the run starting now (the last run's is dropped)."""
        self.run = RunContext()
        return self.run

    @property
    def interrupt(self) -> Interrupt:
        """The run's stop switch."""
        return self.run.interrupt

    @property
    def stopped(self) -> str:
        """Why the run starts no more agents ("" while it may)."""
        return self.run.stopped

    @stopped.setter
    def stopped(self, reason: str) -> None:
        self.run.stopped = reason

    @property
    def pauses(self) -> Pauses:
        """The run's profiles waiting for a usage limit."""
        return self.run.pauses

    @classmethod
    def load(cls, root: Path) -> Checkout:
        """Load and validate every plan of the checkout (PlanError lists every problem)."""
        root = root.resolve()
        plans = {plan.plan_id: plan for plan in load_plans(root)}
        return cls(root=root, plans=plans)

    @property
    def bus(self) -> Bus:
        """The run's event bus (created when the run first needs it); the text of every
        event is free of secrets before any subscriber sees it (DESIGN §13)."""
        with self.run.lock:
            if self.run.bus is None:
                from orchlib import events

                self.run.bus = events.Bus(self.secrets.redact if self.secrets else None)
            return self.run.bus

    @cached_property
    def secrets(self) -> Secrets:
        """This process's secret values: of every CLI's login variables, and of those the
        default excludes or any `exclude` of the plans name (`include` gives a variable to
        a task; it does not make its value fit to show)."""
        from orchlib.agents import all_logins

        patterns = {glob for plan in self.plans.values() for task in plan.tasks.values()
                    for glob in task.environment.exclude}  # fmt: skip
        return secrets_in(os.environ, (*DEFAULT_EXCLUDE, *sorted(patterns)), all_logins())

    @property
    def repos(self) -> Repos:
        """The run's project repositories (`isolation: worktree`): their locks and identities."""
        with self.run.lock:  # asked for on several threads at once: one per run
            if self.run.repos is None:
                from orchlib.run.git import Repos  # only isolated projects pay for its imports

                self.run.repos = Repos()
            return self.run.repos

    @property
    def executor(self) -> Executor:
        """Where the run's processes start (local unless the run chose another)."""
        with self.run.lock:
            if self.run.executor is None:
                from orchlib.executors.local import LocalExecutor

                interrupt = self.run.interrupt
                self.run.executor = LocalExecutor(interrupt.wake_fd, interrupt.is_set)
            return self.run.executor

    @executor.setter
    def executor(self, executor: Executor) -> None:
        self.run.executor = executor

    @property
    def orch_dir(self) -> Path:
        """`.orch/` inside the checkout."""
        return self.root / ".orch"

    def plan_dir(self, plan_id: str) -> Path:
        """`.orch/<planId>/`."""
        return self.orch_dir / plan_id

    @cached_property
    def specs(self) -> Specs:
        """The tasks' spec hashes (`specs.of(plan, task)`), under the effective prompt
        template (a checkout copy overrides the packaged one)."""
        return Specs(templates.template_source(self.root))

    def stamp_path(self, plan_id: str, task_id: str) -> Path:
        """The task's completion stamp (its doit target)."""
        return stamps.stamp_path(self.orch_dir, plan_id, task_id)

    def stamp(self, plan_id: str, task_id: str) -> stamps.Stamp | None:
        """The task's valid stamp, if any."""
        return stamps.read(self.stamp_path(plan_id, task_id), task_id)

    def log_path(self, plan_id: str, task_id: str, attempt: int, suffix: str = "log") -> Path:
        """The transcript of one attempt."""
        return self.plan_dir(plan_id) / "logs" / f"{task_id}.{attempt}.{suffix}"

    def prompt_path(self, plan_id: str, task_id: str, attempt: int) -> Path:
        """The rendered prompt of one attempt."""
        return self.plan_dir(plan_id) / "prompts" / f"{task_id}.{attempt}.md"

    def latest_attempt(self, plan_id: str, task_id: str) -> int:
        """The task's highest attempt number with a transcript on disk (0: none)."""
        return _attempts_on_disk(self.plan_dir(plan_id) / "logs").get(task_id, 0)

    def next_attempt(self, plan_id: str, task_id: str) -> int:
        """Attempt numbers count across runs (from the logs on disk), so logs never collide."""
        with self.run.lock:
            if plan_id not in self.run.attempts:
                self.run.attempts[plan_id] = _attempts_on_disk(self.plan_dir(plan_id) / "logs")
            numbers = self.run.attempts[plan_id]
            numbers[task_id] = numbers.get(task_id, 0) + 1
            return numbers[task_id]


def _attempts_on_disk(logs: Path) -> dict[str, int]:
    """The highest attempt number of each task among `<taskId>.<n>.log*` files."""
    found: dict[str, int] = {}
    if not logs.is_dir():
        return found
    for entry in os.scandir(logs):
        task_id, _, rest = entry.name.partition(".")
        while rest:  # task ids may contain dots: take the first all-digit part after one
            head, _, tail = rest.partition(".")
            if head.isdigit() and tail.startswith("log"):
                found[task_id] = max(found.get(task_id, 0), int(head))
                break
            task_id, rest = f"{task_id}.{head}", tail
    return found
