"""Spend against budgets (DESIGN §15): what each task, project, plan and the run has spent,
fed by each running attempt's usage as its CLI reports it, and which budget is past.

A task's spend is the sum over its attempts since it was last forgotten (carried across
runs in state.json); a project's and a plan's the sum of their tasks'; the run's what this
run spent. The moment a report takes a scope past its budget, every running attempt that
counts toward it is stopped (`Meter.stopped`; the others' process groups are terminated).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from orchlib.plan import Budget, Plan, Task

Key = tuple[str, ...]  # ("task", plan, task) | ("project", plan, name) | ("plan", plan) | ("run",)


class Stoppable(Protocol):
    """What a meter stops: an attempt's process group (an executor `Handle`)."""

    def terminate(self, grace: float = ...) -> None: ...


@dataclass(frozen=True)
class Spend:
    """Cost in USD and tokens (input + output, as `doit status` counts them)."""

    usd: float = 0.0
    tokens: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.usd + other.usd, self.tokens + other.tokens)

    def __sub__(self, other: Spend) -> Spend:
        return Spend(self.usd - other.usd, self.tokens - other.tokens)

    def as_json(self) -> dict[str, object]:
        """state.json's `spend`."""
        return {"usd": round(self.usd, 6), "tokens": self.tokens}


def figures(usage: Mapping[str, object]) -> Spend:
    """The spend in a CLI's usage report (its `cost_usd`, `input_tokens` + `output_tokens`)."""
    cost = usage.get("cost_usd")
    counted = [usage.get(k) for k in ("input_tokens", "output_tokens")]
    tokens = sum(n for n in counted if isinstance(n, int) and not isinstance(n, bool))
    usd = float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else 0.0
    return Spend(usd, tokens)


def from_json(value: Mapping[str, object]) -> Spend:
    """A `spend` as state.json keeps it (bad figures count as 0)."""
    usd, tokens = value.get("usd"), value.get("tokens")
    usd = float(usd) if isinstance(usd, int | float) and not isinstance(usd, bool) else 0.0
    return Spend(usd, tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0)


def past(spent: Spend, budget: Budget) -> str | None:
    """`$5.13 of $5.00` (or `2,000,100 tokens of 2,000,000`) once spend is past the budget."""
    if budget.usd is not None and spent.usd > budget.usd:
        return f"${spent.usd:.2f} of ${budget.usd:.2f}"
    if budget.tokens is not None and spent.tokens > budget.tokens:
        return f"{spent.tokens:,} tokens of {budget.tokens:,}"
    return None


def reason(key: Key, text: str) -> str:
    """Why a scope's tasks stop: `budget spent: $5.13 of $5.00` for a task's own budget,
    `plan budget spent ($20.04 of $20.00)` for a project's, a plan's or the run's."""
    if key[0] == "task":
        return f"budget spent: {text}"
    named = f"project {key[2]} " if key[0] == "project" else f"{key[0]} "
    return f"{named}budget spent ({text})"


@dataclass(frozen=True)
class Crossing:
    """A scope that went past its budget during this run."""

    key: Key
    plan_id: str  # the plan of the attempt whose usage crossed it
    task_id: str
    reason: str


class Meter:
    """One running attempt's usage: `report` takes its CLI's figures so far."""

    def __init__(self, ledger: Ledger, keys: tuple[Key, ...], where: tuple[str, str]) -> None:
        self._ledger, self.keys, self.where = ledger, keys, where
        self.last = Spend()
        self.reason = ""  # why a budget stopped it ("" while it may go on)
        self.handle: Stoppable | None = None

    @property
    def stopped(self) -> bool:
        """True once a budget it counts toward is past."""
        return bool(self.reason)

    def report(self, usage: Mapping[str, object]) -> None:
        """The attempt's usage so far (the CLI's running or final totals)."""
        now = figures(usage)
        if now != self.last:
            delta, self.last = now - self.last, now
            self._ledger.add(self, delta)

    def halt(self, why: str, terminate: bool) -> None:
        """Stop the attempt: `follow` sees `stopped`; another's process group is ended."""
        if self.reason:
            return
        self.reason = why
        handle = self.handle
        if terminate and handle is not None:  # it may sleep until output: end its group now
            threading.Thread(target=handle.terminate, kwargs={"grace": 2.0}, daemon=True).start()


class Ledger:
    """One run's spend per scope, its budgets, and the attempts running under them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[Key, Spend] = {}
        self._budgets: dict[Key, Budget] = {}
        self._meters: set[Meter] = set()
        self._crossed: set[Key] = set()
        self._capped = False  # any budget at all: else nothing is ever held (asked per start)
        self.on_crossing: Callable[[Crossing], None] | None = None

    def load(self, plans: Iterable[Plan], spent: Mapping[tuple[str, str], Spend],
             run_budget: Budget) -> None:  # fmt: skip
        """Budgets from the plans, each task's spend so far (state.json) and the run's cap."""
        self._budgets[("run",)] = run_budget
        for plan in plans:
            self._budgets[("plan", plan.plan_id)] = plan.budget
            for project in plan.projects.values():
                self._budgets[("project", plan.plan_id, project.name)] = project.budget
            for task in plan.tasks.values():
                self._budgets[("task", plan.plan_id, task.id)] = task.budget
                for key in scopes(plan.plan_id, task)[:3]:
                    before = self._spent.get(key, Spend())
                    self._spent[key] = before + spent.get((plan.plan_id, task.id), Spend())
        self._capped = any(self._budgets.values())

    def begin(self, plan_id: str, task: Task, handle: Stoppable | None = None) -> Meter:
        """A meter for an attempt of `task` starting now (`handle`: its process group)."""
        meter = Meter(self, scopes(plan_id, task), (plan_id, task.id))
        meter.handle = handle
        with self._lock:
            self._meters.add(meter)
        return meter

    def end(self, meter: Meter) -> bool:
        """The attempt has ended (its spend stays counted); True if it reported any usage."""
        with self._lock:
            self._meters.discard(meter)
        return meter.last != Spend()

    def add(self, meter: Meter, delta: Spend) -> None:
        """Count `delta` in every scope of the meter; stop what a crossed budget covers."""
        crossed: list[Crossing] = []
        with self._lock:
            for key in meter.keys:
                self._spent[key] = now = self._spent.get(key, Spend()) + delta
                text = past(now, self._budgets.get(key, Budget()))
                if text is not None and key not in self._crossed:
                    self._crossed.add(key)
                    crossed.append(Crossing(key, *meter.where, reason(key, text)))
            stops = [(m, c) for c in crossed for m in self._meters if c.key in m.keys]
        for other, crossing in stops:
            other.halt(crossing.reason, terminate=other is not meter)
        for crossing in crossed:
            if self.on_crossing is not None:
                self.on_crossing(crossing)

    def task_spend(self, plan_id: str, task_id: str) -> Spend:
        """The task's spend so far (earlier runs included)."""
        with self._lock:
            return self._spent.get(("task", plan_id, task_id), Spend())

    def own(self, plan_id: str, task: Task) -> str | None:
        """`budget spent: ...` when the task's own budget is past, else None."""
        return self._why(scopes(plan_id, task)[:1])

    def held(self, plan_id: str, task: Task) -> str | None:
        """Why no attempt of the task may start: a project, plan or run budget past."""
        return self._why(scopes(plan_id, task)[1:])

    def _why(self, keys: tuple[Key, ...]) -> str | None:
        if not self._capped:
            return None
        with self._lock:
            for key in keys:
                text = past(self._spent.get(key, Spend()), self._budgets.get(key, Budget()))
                if text is not None:
                    return reason(key, text)
        return None


def scopes(plan_id: str, task: Task) -> tuple[Key, ...]:
    """The scopes a task's spend counts in: its own, its project's, its plan's, the run's."""
    return (("task", plan_id, task.id), ("project", plan_id, task.project), ("plan", plan_id),
            ("run",))  # fmt: skip
