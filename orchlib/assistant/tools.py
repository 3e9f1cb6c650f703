"""The tools of `doit mcp` as plain functions over a checkout (DESIGN §17).

Each reuses the code path of the command it stands for: `status` is `doit status --json`,
`answer` is `doit answer`, `task_log` decodes as `doit log` does, plans are checked by the
validator `doit` runs. Each returns a JSON-able value or raises OrchError with orchlib's
one-line message(s); `server.py` turns that into an MCP result or tool error. The checkout's
plans are read afresh on every call: the assistant writes plans while the server runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchlib.agents import all_logins
from orchlib.assistant.plans import PlanDesk
from orchlib.assistant.runs import Runs
from orchlib.assistant.shown import Door
from orchlib.checkout import Checkout
from orchlib.errors import ConfigError, OrchError
from orchlib.plan.environment import DEFAULT_EXCLUDE
from orchlib.redact import secrets_in
from orchlib.state import runlock

TAIL_MAX = 5000


@dataclass
class Tools:
    """The tools of one server, rooted at the folder it started in."""

    root: Path
    desk: PlanDesk = field(init=False)
    runs: Runs = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.desk = PlanDesk(self.root)
        self.runs = Runs(self.root)

    def checkout(self) -> Checkout:
        """The checkout with its plans as they are now (PlanError: every problem, located)."""
        self.checkout_folder()
        return Checkout.load(self.root)

    def checkout_folder(self) -> None:
        """ConfigError unless the server's folder is a checkout (whatever its plans say)."""
        if not (self.root / "plans").is_dir():
            raise ConfigError(
                f"{self.root} is not a checkout (no plans/ folder): start `doit mcp` in the "
                "folder that holds plans/ (see the README)"
            )

    def door(self) -> Door:
        """The door every text of a result or an error leaves through: the secret filter of
        DESIGN §13 (the checkout's secrets; the host's when the plans do not load)."""
        try:
            return Door(self.checkout().secrets.redact)
        except OrchError:
            return Door(secrets_in(os.environ, DEFAULT_EXCLUDE, all_logins()).redact)

    def list_plans(self) -> dict[str, Any]:
        """Each plan's id, file, summary, status and task counts by state; the run's pid."""
        co = self.checkout()
        rows = []
        for doc in self._status(co, [])["plans"]:
            plan = co.plans[doc["planId"]]
            counts: dict[str, int] = {}
            for task in doc["tasks"]:
                counts[task["state"]] = counts.get(task["state"], 0) + 1
            rows.append({"planId": plan.plan_id, "file": _rel(plan.source, co.root),
                         "summary": plan.summary, "status": doc["status"], "done": doc["done"],
                         "total": doc["total"], "counts": counts})  # fmt: skip
        return {"plans": rows, "runningPid": runlock.holder_pid(co.orch_dir)}

    def validate_plan(self, text: str, fmt: str = "yaml") -> dict[str, Any]:
        """Whether `text` is a valid plan for this checkout, and every problem, located."""
        self.checkout_folder()
        return self.desk.validate(text, fmt)

    def write_plan(self, plan_id: str, text: str, force: bool = False) -> dict[str, Any]:
        """Write plans/<plan_id>.yaml when `text` is valid (never over a file without force)."""
        self.checkout_folder()
        return self.desk.write(plan_id, text, force)

    def run(self, targets: list[str], executor: str | None) -> dict[str, Any]:
        """Start `doit TARGETS` detached (after the plans load); its pid."""
        co = self.checkout()
        return self.runs.start(targets, executor, list(co.plans))

    def status(self, target: str | None) -> dict[str, Any]:
        """What `doit status --json [TARGET]` prints."""
        return self._status(self.checkout(), [target] if target else [])

    def task_log(self, task: str, tail: int = 200) -> dict[str, Any]:
        """The last `tail` lines of the task's latest transcript, decoded as `doit log` does."""
        from orchlib.run.transcript import decoded

        if not 1 <= tail <= TAIL_MAX:
            raise ConfigError(f"tail {tail}: give 1 to {TAIL_MAX} lines")
        co = self.checkout()
        plan_id, _, task_id = task.partition(":")
        plan = co.plans.get(plan_id)
        if plan is None or task_id not in plan.tasks:
            raise ConfigError(f"task_log: unknown task {task!r} (status lists the tasks)")
        number = co.latest_attempt(plan_id, task_id)
        if not number:
            raise ConfigError(f"task_log: {task} has no transcript yet (it has not run)")
        path = co.log_path(plan_id, task_id, number)
        lines = decoded(co, path, plan.tasks[task_id]).splitlines()
        return {"task": task, "attempt": number, "log": _rel(path, co.root),
                "lines": len(lines), "text": "\n".join(lines[-tail:])}  # fmt: skip

    def answer(self, task: str, text: str) -> dict[str, Any]:
        """Store the answer to a waiting task's question, as `doit answer` does."""
        from orchlib.run.queries import answer_task

        if ":" not in task:
            raise ConfigError(f"answer: name the task as PLAN:TASK (got {task!r})")
        return {"message": answer_task(self.checkout(), task, text)}

    def approve(self, task: str) -> dict[str, Any]:
        """Take a task waiting for approval as done, as `doit approve` does."""
        from orchlib.run import approval

        return {"message": approval.approve(self.checkout(), _task_name("approve", task))}

    def reject(self, task: str, text: str) -> dict[str, Any]:
        """Send a task waiting for approval back with what to change, as `doit reject`."""
        from orchlib.run import approval

        return {"message": approval.reject(self.checkout(), _task_name("reject", task), text)}

    def stop_run(self) -> dict[str, Any]:
        """Interrupt the running `doit` as Ctrl-C does and wait for it to end."""
        self.checkout_folder()
        return self.runs.stop()

    def _status(self, co: Checkout, args: list[str]) -> dict[str, Any]:
        from orchlib.run.queries import status_json

        return status_json(co, args)


def _task_name(tool: str, task: str) -> str:
    if ":" not in task:
        raise ConfigError(f"{tool}: name the task as PLAN:TASK (got {task!r})")
    return task


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
