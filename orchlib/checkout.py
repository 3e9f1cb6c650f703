"""A checkout: the folder with `dodo.py` and `plans/`, its plans, and its runtime layout."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from orchlib.layout import Layout
from orchlib.plan import Plan, Task
from orchlib.plan.environment import DEFAULT_EXCLUDE
from orchlib.plan.file import load_plans
from orchlib.redact import Secrets, secrets_in
from orchlib.run import templates
from orchlib.state import stamps


@dataclass(frozen=True)
class Checkout:
    """The plans of a checkout, where their runtime files go (`layout`), and what their
    stamps say. It holds no run: a run's services are in its `run.context.RunContext`."""

    root: Path
    plans: dict[str, Plan]
    # Tasks a pruned `doit run` left out because they and their upstream are done.
    up_to_date: dict[str, list[str]] = field(default_factory=dict)
    # Why each task of a plan would run (None: up to date), as computed while loading.
    verdicts: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # Spec hashes by (plan id, task id), each with the Task it was computed from: a run asks
    # for one task's several times (up-to-date checks, the stamp); reloaded plans miss.
    _spec_hashes: dict[tuple[str, str], tuple[Task, str]] = field(default_factory=dict, repr=False)

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
    def template_text(self) -> str:
        """The effective task prompt template (a checkout copy overrides the packaged one)."""
        return templates.template_source(self.root)

    def spec_hash(self, plan: Plan, task: Task) -> str:
        """The task's current spec hash."""
        key = (plan.plan_id, task.id)
        known = self._spec_hashes.get(key)
        if known is not None and known[0] is task:
            return known[1]
        digest = stamps.spec_hash(plan, task, self.template_text)
        self._spec_hashes[key] = (task, digest)
        return digest

    def stamp_path(self, plan_id: str, task_id: str) -> Path:
        """The task's completion stamp (its doit target)."""
        return self.layout.stamp(plan_id, task_id)

    def stamp(self, plan_id: str, task_id: str) -> stamps.Stamp | None:
        """The task's valid stamp, if any."""
        return stamps.read(self.stamp_path(plan_id, task_id), task_id)

    def why_not_done(self, plan: Plan, task: Task) -> str | None:
        """Why the task would run now, or None when it is up to date."""
        deps = {dep: stamps.Done.of(self.stamp(plan.plan_id, dep)) for dep in task.depends_on}
        own = stamps.Done.of(self.stamp(plan.plan_id, task.id))
        if own is None and (
            damage := stamps.damage(self.stamp_path(plan.plan_id, task.id), task.id)
        ):
            return f"its stamp is damaged ({damage}); the task runs again"
        return stamps.why_not_done(plan, task, own, self.spec_hash(plan, task), deps)

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
