"""What `doit info` says about a plan or a plan task, in orchlib's words (not doit's DB)."""

from __future__ import annotations

import os
from pathlib import Path

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.plan import Plan, Task, environment
from orchlib.state import statesync, uptodate
from orchlib.state.model import Status, TaskRecord

APPROVE = "by a person: doit approve / doit reject once its checks pass"


def task_info(co: Checkout, plan_id: str, task_id: str) -> tuple[str, bool]:
    """What orchlib knows of a plan task, and whether it is up to date."""
    plan = co.plans[plan_id]
    task = plan.tasks[task_id]
    reason = uptodate.verdicts(co.orch_dir, plan, co.specs)[task_id]
    name = f"{plan_id}:{task_id}"
    lines = [f"{name}: would run: {reason}" if reason else f"{name}: up to date (valid stamp)"]
    from orchlib import state

    current = state.load(co.plan_dir(plan_id))
    record = current.tasks.get(task_id) if current else None
    lines += _waiting(name, record, reason)
    project = plan.projects[task.project]
    rows = [
        ("title", task.title),
        ("project", f"{project.name} ({_rel(co, project.root)})"),
        ("depends on", ", ".join(task.depends_on) or "nothing"),
        ("runs", "shell command" if task.command is not None else f"agent {task.agent.name}"),
        ("sandbox", _sandbox(task)),
        ("approve", APPROVE if task.limits.approve else ""),
        ("state", _state(record)),
        ("stamp", _stamp_line(co, co.stamp_path(plan_id, task_id))),
        ("log", _rel(co, Path(record.log)) if record is not None and record.log else ""),
        ("outputs", ", ".join(task.outputs)),
        ("inputs", ", ".join(task.inputs)),
        ("withheld", _withheld(task)),
    ]
    lines += [f"  {label}: {value}" for label, value in rows if value]
    return "\n".join(lines) + "\n", reason is None


def _sandbox(task: Task) -> str:
    """The task's sandbox as the next run chooses it (ORCH_SANDBOX over the plan); "" for none."""
    name = os.environ.get("ORCH_SANDBOX", "") or task.sandbox or "none"
    return f"{name} (it writes its own project folder only)" if name == "bwrap" else ""


def _withheld(task: Task) -> str:
    """The variables of this environment the task's processes do not get (names only)."""
    agent = task.agent if task.command is None else None
    names = environment.withheld(os.environ, task.environment, agents.logins(agent))
    inherit = task.environment.inherit
    kept = "" if inherit == "all" else f" (inherit: {inherit})"
    return (", ".join(names) or "nothing") + kept


def _stamp_line(co: Checkout, path: Path) -> str:
    """The stamp's path, or `none` when there is none yet (never a path that is not there)."""
    return _rel(co, path) if path.exists() else "none"


def _waiting(name: str, record: TaskRecord | None, reason: str | None) -> list[str]:
    if record is not None and record.status is Status.APPROVAL and reason is not None:
        return [f'{name}: waits for approval: doit approve {name}, or doit reject {name} "..."']
    if record is None or not record.questions or reason is None:
        return []
    last = record.questions[-1]
    if last.answer is None:
        return [f'{name}: waits for an answer to “{last.question}”: '
                f'doit answer {name} "<your answer>"']  # fmt: skip
    if record.status is Status.QUESTION:
        return [f"{name}: answered “{last.answer}”; the next `doit` resumes it"]
    return []


def _state(record: TaskRecord | None) -> str:
    if record is None:
        return "PENDING (never ran)"
    attempt = f" (attempt {record.attempt})" if record.attempt else ""
    text = record.error if record.status is Status.ERROR else ""
    text = record.summary if record.status in (Status.DONE, Status.APPROVAL) else text
    return f"{record.status.value}{attempt}" + (f": {text}" if text else "")


def _rel(co: Checkout, path: Path) -> str:
    return str(path.relative_to(co.root)) if path.is_relative_to(co.root) else str(path)


def plan_info(co: Checkout, plan: Plan) -> str:
    """The plan's status table (as `doit status PLAN`) and where its files are."""
    from orchlib import state

    verdicts = uptodate.verdicts(co.orch_dir, plan, co.specs)
    stamps = statesync.done_stamps(co.orch_dir, plan, verdicts)
    current = state.load(co.plan_dir(plan.plan_id))
    table = state.render_status(plan, current, stamps, root=co.root)
    where = co.plan_dir(plan.plan_id).relative_to(co.root)
    source = (
        plan.source.relative_to(co.root) if plan.source.is_relative_to(co.root) else plan.source
    )
    return f"{table}\nplan file: {source}\nstate: {where}/orchestration.md, {where}/state.json\n"
