"""A run of plans: lock, preflight, state/console/notifiers, the runner, signals, exit code."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from doit.task import Stream

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.console import Console
from orchlib.errors import ConfigError
from orchlib.events import RunFinished, RunStarted, TaskUpToDate
from orchlib.notify import Notifier, close_all
from orchlib.plan import Plan, Task
from orchlib.planchecks import Key
from orchlib.planfile import locate
from orchlib.prompt import template_dirs
from orchlib.reporter import PlanReporter
from orchlib.runlock import run_lock
from orchlib.runner import PlanRunner, _closure, orch_meta
from orchlib.state import StateStore, Status, TaskRecord
from orchlib.yamlload import positions

SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


@dataclass(frozen=True)
class RunOptions:
    """What the user asked of doit's run command that orchlib honours."""

    continue_: bool = True
    always: bool = False
    slots: int = 0
    verbosity: int | None = None
    force_verbosity: bool = False


def run_plans(co: Checkout, control: Any, dep_manager: Any, out: IO[str], opts: RunOptions) -> int:
    """Run doit's selection of plan tasks; the exit code follows DESIGN §4."""
    chosen = [t for t in _closure(control.tasks, control.selected_tasks) if orch_meta(t)]
    chosen.sort(key=lambda t: (orch_meta(t)["plan"], orch_meta(t)["index"]))  # type: ignore[index]
    with run_lock(co.orch_dir):
        if not chosen:
            done = sum(len(ids) for ids in co.up_to_date.values())
            out.write(f"orchlib: {done} tasks up to date, nothing to do\n")
            return 0
        preflight(co, chosen)
        by_plan = _by_plan(chosen)
        stores = {pid: StateStore(co.plans[pid], co.plan_dir(pid), template_dirs(co.root))
                  for pid in by_plan}  # fmt: skip
        previous = {pid: dict(store.snapshot().tasks) for pid, store in stores.items()}
        console = Console(out)
        notifiers = [Notifier(co.plans[pid], co.plan_dir(pid)) for pid in by_plan]
        for handler in [*(s.handle for s in stores.values()), console.handle,
                        *(n.handle for n in notifiers)]:  # fmt: skip
            co.bus.subscribe(handler)
        code = _run(co, control, dep_manager, out, opts, by_plan, previous)
        for store in stores.values():
            store.close()
        out.write(console.summary() + "\n")
        out.flush()
        close_all(notifiers, timeout=10.0)
    return SIGNAL_EXIT.get(co.interrupt.signal_name, code)


def _run(co: Checkout, control: Any, dep_manager: Any, out: IO[str], opts: RunOptions,
         by_plan: dict[str, list[str]], previous: dict[str, dict[str, TaskRecord]]) -> int:  # fmt: skip
    for pid, task_ids in by_plan.items():
        done = co.up_to_date.get(pid, [])
        co.bus.publish(RunStarted(pid, (*done, *task_ids), os.getpid()))
        for task_id in done:
            co.bus.publish(_up_to_date(co, pid, task_id, previous[pid].get(task_id)))
    slots = opts.slots or len(
        {orch_meta(t)["root"] for t in control.tasks.values() if orch_meta(t)}
    )  # type: ignore[index]
    stream = Stream(opts.verbosity, opts.force_verbosity)
    runner = PlanRunner(dep_manager, PlanReporter(co, out), opts.continue_, opts.always, stream,
                        slots=slots, checkout=co, previous=previous)  # fmt: skip
    with _signals(co):
        code = int(runner.run_all(control.task_dispatcher()))
    for pid in by_plan:
        co.bus.publish(RunFinished(pid, interrupted=co.interrupt.signal_name))
    return code


def _up_to_date(co: Checkout, plan_id: str, task_id: str, record: TaskRecord | None) -> TaskUpToDate:
    """A pruned task's event; its summary from the state when it has one, else the stamp."""
    if record is not None and record.status is Status.DONE:
        return TaskUpToDate(plan_id, task_id, record.summary, record.finished_at or "",
                            record.terminal_id or "", record.attempt)  # fmt: skip
    stamp = co.stamp(plan_id, task_id) or {}
    return TaskUpToDate(plan_id, task_id, str(stamp.get("summary", "")),
                        str(stamp.get("finishedAt", "")), str(stamp.get("terminalId", "")),
                        int(stamp.get("attempt", 0) or 0))  # fmt: skip


def _by_plan(chosen: list[Any]) -> dict[str, list[str]]:
    by_plan: dict[str, list[str]] = {}
    for task in chosen:
        meta = orch_meta(task)
        assert meta is not None
        by_plan.setdefault(meta["plan"], []).append(meta["task"])
    return by_plan


def preflight(co: Checkout, chosen: list[Any]) -> None:
    """Every agent CLI the run may dispatch must be on PATH, before anything starts."""
    missing: dict[str, list[tuple[str, str]]] = {}
    for doit_task in chosen:
        meta = orch_meta(doit_task)
        assert meta is not None
        plan = co.plans[meta["plan"]]
        task = plan.tasks[meta["task"]]
        if task.command is not None or co.why_not_done(plan, task) is None:
            continue
        program = agents.executable(task.agent)
        if shutil.which(program) is None and not os.access(program, os.X_OK):
            missing.setdefault(program, []).append((plan.plan_id, task.id))
    if missing:
        raise ConfigError("\n".join(_missing_line(co, prog, ts) for prog, ts in missing.items()))


def _missing_line(co: Checkout, program: str, tasks: list[tuple[str, str]]) -> str:
    plan = co.plans[tasks[0][0]]
    where = locate(plan.source, co.root, _agent_key(plan, plan.tasks[tasks[0][1]]), at_key=True)
    ids = ", ".join(task_id for _, task_id in tasks)
    return f"agent {program!r} not found on PATH (tasks {ids}); install it or set agent: in {where}"


def _agent_key(plan: Plan, task: Task) -> list[Key]:
    """The `agent` key that chose the task's agent: the task's, its project's or the plan's."""
    project = list(plan.projects).index(task.project)
    keys = [("tasks", task.index, "agent"), ("projects", project, "agent"), ("agent",)]
    try:
        found = positions(plan.source.read_text(encoding="utf-8-sig", errors="replace"), keys)
    except OSError:
        found = {}
    return list(next((key for key in keys if key in found), ("agent",)))


@contextlib.contextmanager
def _signals(co: Checkout) -> Iterator[None]:
    """SIGINT/SIGTERM stop the run: agents are terminated, no new attempt starts."""

    def stop(signum: int, frame: Any) -> None:
        co.interrupt.trigger(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
