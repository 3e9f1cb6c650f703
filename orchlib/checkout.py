"""A checkout: the folder with `dodo.py` and `plans/`, its plans, and its runtime layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from orchlib.layout import Layout
from orchlib.plan import Plan
from orchlib.plan.environment import DEFAULT_EXCLUDE
from orchlib.plan.file import load_plans
from orchlib.redact import Secrets, secrets_in
from orchlib.state import stamps, templates
from orchlib.state.uptodate import Specs


@dataclass(frozen=True)
class Checkout:
    """The plans of a checkout, where their runtime files go (`layout`), what their stamps say
    and their tasks' spec hashes. It holds no run: a run's services are in its
    `run.context.RunContext`."""

    root: Path
    plans: dict[str, Plan]

    @classmethod
    def load(cls, root: Path) -> Checkout:
        """Load and validate every plan of the checkout (PlanError lists every problem)."""
        root = root.resolve()
        plans = {plan.plan_id: plan for plan in load_plans(root)}
        return cls(root=root, plans=plans)

    @cached_property
    def secrets(self) -> Secrets:
        """This process's secret values: of every CLI's login variables, and of those the
        default excludes or any `exclude` of the plans name (`include` gives a variable to
        a task; it does not make its value fit to show)."""
        from orchlib.agents import all_logins

        patterns = {glob for plan in self.plans.values() for task in plan.tasks.values()
                    for glob in task.environment.exclude}  # fmt: skip
        return secrets_in(os.environ, (*DEFAULT_EXCLUDE, *sorted(patterns)), all_logins())

    @cached_property
    def layout(self) -> Layout:
        """Where the checkout's runtime files live."""
        return Layout(self.root)

    @property
    def orch_dir(self) -> Path:
        """`.orch/` inside the checkout."""
        return self.layout.orch

    def plan_dir(self, plan_id: str) -> Path:
        """`.orch/<planId>/`."""
        return self.layout.plan_dir(plan_id)

    @cached_property
    def specs(self) -> Specs:
        """The tasks' spec hashes (`specs.of(plan, task)`), under the effective prompt
        template (a checkout copy overrides the packaged one)."""
        return Specs(templates.template_source(self.root))

    def stamp_path(self, plan_id: str, task_id: str) -> Path:
        """The task's completion stamp (its doit target)."""
        return self.layout.stamp(plan_id, task_id)

    def stamp(self, plan_id: str, task_id: str) -> stamps.Stamp | None:
        """The task's valid stamp, if any."""
        return stamps.read(self.stamp_path(plan_id, task_id), task_id)

    def log_path(self, plan_id: str, task_id: str, attempt: int, suffix: str = "log") -> Path:
        """The transcript of one attempt."""
        return self.layout.log(plan_id, task_id, attempt, suffix)

    def prompt_path(self, plan_id: str, task_id: str, attempt: int) -> Path:
        """The rendered prompt of one attempt."""
        return self.layout.prompt(plan_id, task_id, attempt)

    def latest_attempt(self, plan_id: str, task_id: str) -> int:
        """The task's highest attempt number with a transcript on disk (0: none)."""
        return attempts_on_disk(self.layout.logs(plan_id)).get(task_id, 0)


def attempts_on_disk(logs: Path) -> dict[str, int]:
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
