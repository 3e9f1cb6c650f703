"""What the console knows of a run: each task's last state and text, and the usage so far;
the run's summary and the live footer's text are read from it (pure, no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from orchlib.state.table import format_duration, usage_figures, usage_text
from orchlib.state.words import LOOKS, Shown, advice


@dataclass
class Seen:
    """What the console knows about one task: its last state and the text that goes with it."""

    shown: Shown = Shown.PENDING
    text: str = ""
    printed_at: float = float("-inf")
    printed_percent: int = -100
    percent: int = 0
    started: float | None = None  # the console's clock when its attempt started


class Board:
    """Every task the console has seen, by PLAN:TASK in plan order, and the usage summed."""

    def __init__(self) -> None:
        self.tasks: dict[str, Seen] = {}
        self.usage: dict[str, float] = {}

    def seen(self, plan_id: str, task_id: str) -> Seen:
        """The task's record, made on first sight."""
        return self.tasks.setdefault(f"{plan_id}:{task_id}", Seen())

    def tally(self) -> Counter[Shown]:
        """How many tasks are in each state."""
        return Counter(t.shown for t in self.tasks.values())

    def add_usage(self, usage: Mapping[str, object]) -> None:
        """Add a done task's numeric usage figures (cost, tokens) to the run's."""
        for key, value in usage.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.usage[key] = self.usage.get(key, 0) + value

    def answered(self, names: Collection[str]) -> None:
        """Tasks whose question was answered during the run: the summary says to resume."""
        for name in names:
            seen = self.tasks.get(name)
            if seen is not None and seen.shown is Shown.QUESTION:
                seen.shown = Shown.ANSWERED

    def why(self, plan_id: str, because: tuple[str, ...]) -> str:
        """Why a skipped task did not run: each dependency in its blocking words."""
        shown = {dep: self.seen(plan_id, dep).shown for dep in because}
        parts = [f"{dep} {LOOKS[state].why}" for dep, state in shown.items()]
        return ", ".join(parts) or "a dependency did not finish"

    def summary(self, took: float) -> str:
        """Counts per state, what to do about each unfinished task, and the wall time."""
        tally = self.tally()
        parts = [
            f"{tally[s]} {LOOKS[s].counted}" for s in Shown if tally[s] and s is not Shown.PENDING
        ]
        head = f"orchlib: {', '.join(parts) or 'nothing to do'} in {format_duration(took)}"
        spent = usage_figures(self.usage)
        if spent:
            head += f" — {usage_text(spent)}"
        todo = [advice(t.shown, name, t.text) for name, t in self.tasks.items()]
        return "\n".join([head, *(f"  {line}" for line in todo if line)])

    def footer(self, clock: Callable[[], float]) -> str:
        """The live footer's text: running tasks with their percent, then the counts."""
        running = [
            f"{n} {t.percent}% {format_duration(clock() - (t.started or clock()))}"
            for n, t in self.tasks.items()
            if t.shown is Shown.RUNNING
        ]
        tally = self.tally()
        tail = [
            f"{tally[s]} {LOOKS[s].counted}" for s in Shown if tally[s] and s is not Shown.RUNNING
        ]
        text = f"running {len(running)}: {', '.join(running)}" if running else ""
        return " | ".join(part for part in (text, ", ".join(tail)) if part)
