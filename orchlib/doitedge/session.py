"""A run of plans: lock, preflight, state/console/notifiers, the runner, signals, exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from orchlib import executorregistry
from orchlib.checkout import Checkout
from orchlib.doitedge.doitapi import Stream
from orchlib.doitedge.loader import orch_meta
from orchlib.doitedge.reporter import PlanReporter
from orchlib.doitedge.runner import PlanRunner
from orchlib.errors import ConfigError
from orchlib.events import BudgetSpent, RunFinished, RunStarted, TaskUpToDate
from orchlib.executors import Executor, cpus, create
from orchlib.output.console import Console
from orchlib.output.notify import Notifier, close_all
from orchlib.plan import Budget
from orchlib.plan.checks import suggest
from orchlib.plan.sandboxschema import SANDBOXES
from orchlib.run import fallback, spend
from orchlib.run.context import Interrupt, RunContext, new_run
from orchlib.run.pauses import profile_of
from orchlib.run.preflight import check_agents, check_project_folders, check_repos, check_sandbox
from orchlib.run.ready import project_capacity
from orchlib.run.spendcheck import usd_warnings
from orchlib.run.worktrees import sweep
from orchlib.state import StateStore, Status, TaskRecord, uptodate
from orchlib.state.orchdir import check_plan_files, check_writable, sweep_temp_files
from orchlib.state.runlock import run_lock
from orchlib.state.stamps import Stamp
from orchlib.state.templates import template_dirs
from orchlib.state.transitions import parse_time

SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
LIMIT_EXIT = 2  # `--no-wait-limits` stopped at a usage limit: come back at the reset


@dataclass(frozen=True)
class RunOptions:
    """What the user asked of doit's run command that orchlib honours."""

    continue_: bool = True
    always: bool = False
    slots: int = 0
    verbosity: int | None = None
    force_verbosity: bool = False
    wait_limits: bool = True  # False: `--no-wait-limits`
    executor: str = ""  # `--executor` (else ORCH_EXECUTOR, else the plans' defaults, else local)
    # the executor's own options as given (`--scheduler` for dask); else their variables
    executor_options: Mapping[str, str] = field(default_factory=dict)
    sandbox: str = ""  # `--sandbox` (else ORCH_SANDBOX, else each task's `sandbox:`)
    budget_usd: float | None = None  # `--budget-usd`: this run's cap (DESIGN §15)


def run_plans(
    co: Checkout, chosen: list[Any], control: Any, dep_manager: Any, out: IO[str],
    opts: RunOptions, up_to_date: Mapping[str, list[str]],
) -> int:  # fmt: skip
    """Run the plan tasks doit selected (`up_to_date`: the finished ones the load left out);
    the exit code follows DESIGN §4."""
    check_writable(co.root)  # before the run lock, which is the first file written
    interrupt = Interrupt()  # this run's: nothing of an earlier run's in this process
    with interrupt.on_signals(), _short_gil_slices(), cpus.one_cpu(), run_lock(co.orch_dir):
        to_run = [_plan_task(co, t) for t in chosen]
        sandbox = choose_sandbox(opts)
        executor = choose_executor(interrupt, to_run, opts)  # a cluster is reached on first use
        try:
            run = new_run(co, interrupt, executor, sandbox)
            orch, specs = co.orch_dir, co.specs
            pending = [(p, t) for p, t in to_run
                       if uptodate.why_not_done(orch, p, t, specs) is not None]  # fmt: skip
            _preflight(run, pending)
            sweep(co, run.repos)  # worktrees of finished tasks a killed run left
            _check_runtime_files(co, to_run, pending)
            code = PlanRun(run, out, to_run, up_to_date).run(control, dep_manager, opts)
        finally:
            executor.close()
    return SIGNAL_EXIT.get(interrupt.signal_name, code)


def choose_executor(interrupt: Interrupt, to_run: list[Any], opts: RunOptions) -> Executor:
    """The run's executor: `--executor`, else ORCH_EXECUTOR, else the plans' `defaults`."""
    planned = sorted({plan.executor for plan, _ in to_run if plan.executor})
    name = opts.executor or os.environ.get(executorregistry.VARIABLE, "")
    if not name and len(planned) > 1:
        asked = ", ".join(planned)
        raise ConfigError(f"the plans of this run ask for different executors ({asked}): "
                          "choose one with --executor")  # fmt: skip
    name = name or (planned[0] if planned else executorregistry.DEFAULT)
    stop = {"wake_fd": interrupt.wake_fd, "stopped": interrupt.is_set}
    return create(name, opts.executor_options, **stop)


def choose_sandbox(opts: RunOptions) -> str:
    """The run's sandbox for every task: `--sandbox`, else ORCH_SANDBOX, else "" (each
    task's own)."""
    name, source = opts.sandbox, "--sandbox"
    if not name:
        name, source = os.environ.get("ORCH_SANDBOX", ""), "ORCH_SANDBOX"
    if name and name not in SANDBOXES:
        hint = suggest(name, SANDBOXES)
        raise ConfigError(f"{source} {name!r} is not one of {', '.join(SANDBOXES)}{hint}")
    return name


def _check_runtime_files(co: Checkout, to_run: list[Any], pending: list[Any]) -> None:
    """Refuse runtime paths of the wrong kind; sweep temp files a killed run left (we hold
    the run lock, and a file is removed only when its writer is gone)."""
    plan_ids = {plan.plan_id for plan, _ in to_run}
    check_plan_files(co.root, plan_ids, (co.stamp_path(p.plan_id, t.id) for p, t in pending))
    lay = co.layout
    folders = [f(p) for p in plan_ids for f in (lay.plan_dir, lay.stamps, lay.prompts, lay.logs)]
    sweep_temp_files([lay.cache, *folders])


def _preflight(run: RunContext, pending: list[Any]) -> None:
    """Every pre-run problem at once (ConfigError, exit 3), not the first only; repositories
    are checked once the project folders are usable."""
    problems: list[str] = []
    for check in (check_agents, check_project_folders, check_sandbox):
        try:
            check(run, pending)
        except ConfigError as exc:
            problems.extend(exc.lines())
    if not problems:
        check_repos(run, pending)
    if problems:
        raise ConfigError("\n".join(problems))


def _plan_task(co: Checkout, doit_task: Any) -> Any:
    meta = orch_meta(doit_task)
    assert meta is not None
    plan = co.plans[meta.plan]
    return plan, plan.tasks[meta.task]


class PlanRun:
    """The subscribers of one run (state per plan, console, notifiers) around the runner."""

    def __init__(
        self, run: RunContext, out: IO[str], to_run: list[Any], up_to_date: Mapping[str, list[str]]
    ) -> None:
        co = run.co
        self.co, self.ctx, self.out, self.up_to_date = co, run, out, up_to_date
        self.by_plan: dict[str, list[str]] = {}
        for plan, task in to_run:
            self.by_plan.setdefault(plan.plan_id, []).append(task.id)
        self.stores = {
            pid: StateStore(co.plans[pid], co.plan_dir(pid), template_dirs(co.root))
            for pid in self.by_plan
        }
        self.previous = {pid: dict(s.snapshot().tasks) for pid, s in self.stores.items()}
        self.budget_stops: list[str] = []
        self._keep_pauses()
        self.warnings = usd_warnings(co, to_run)
        self.console = Console(out)
        self.notifiers = [Notifier(co.plans[pid], co.plan_dir(pid)) for pid in self.by_plan]
        for store in self.stores.values():
            run.bus.subscribe(store.handle, sync=store.sync)
        for handler in [self.console.handle, *(n.handle for n in self.notifiers)]:
            run.bus.subscribe(handler)

    def _keep_pauses(self) -> None:
        """A usage limit an earlier run saw still holds its profile until it resets."""
        now = self.ctx.pauses.now()
        for pid, records in self.previous.items():
            tasks = self.co.plans[pid].tasks
            for record in records.values():
                end = parse_time(record.paused_until) if record.status is Status.PAUSED else None
                task = tasks.get(record.id)
                profile = profile_of(fallback.named(task, record.agent)) if task else None
                if end is not None and profile is not None and end.timestamp() > now:
                    self.ctx.pauses.pause(profile, end.timestamp())

    def run(self, control: Any, dep_manager: Any, opts: RunOptions) -> int:
        """Run the tasks; then write the final state, the summary, and drain the notifiers."""
        try:
            self._announce()
            self._ledger(opts)
            runner = self._runner(control, dep_manager, opts)
            code = int(runner.run_all(control.task_dispatcher()))
            if runner.limits.gave_up:
                self.console.gave_up(runner.limits.gave_up)
                code = LIMIT_EXIT
            self.budget_stops = sorted(runner.budget_stops)
            for pid in self.by_plan:
                self.ctx.bus.publish(RunFinished(pid, interrupted=self.ctx.interrupt.signal_name))
        finally:
            for store in self.stores.values():
                store.close()
        self.console.answered(self._answered())
        self.console.close()
        self.out.write(self.console.summary() + "\n")
        problems = self._problems()
        self.out.writelines(f"orchlib: {line}\n" for line in problems)
        self.out.writelines(f"orchlib: {line}; its remaining tasks stay PENDING: raise the "
                            "budget and re-run doit\n" for line in self.budget_stops)  # fmt: skip
        self.out.flush()
        close_all(self.notifiers, timeout=10.0)
        return code or (1 if problems or self.budget_stops else 0)

    def _problems(self) -> list[str]:
        """What went wrong outside any task: state not saved, agents no longer started."""
        found = [line for store in self.stores.values() for line in store.errors]
        if self.ctx.stopped:
            found.append(
                f"stopped starting agents: {self.ctx.stopped}; free space and re-run `doit` "
                "(what was stamped is not redone)"
            )
        return found

    def _ledger(self, opts: RunOptions) -> None:
        """Budgets and each task's spend so far (state.json); a crossing is an event."""
        ledger = self.ctx.ledger
        spent = {(pid, t): spend.from_json(r.spend) for pid, records in self.previous.items()
                 for t, r in records.items() if r.spend}  # fmt: skip
        ledger.load(self.co.plans.values(), spent, Budget(usd=opts.budget_usd))

        def crossed(c: spend.Crossing) -> None:
            self.ctx.bus.publish(BudgetSpent(c.plan_id, c.task_id, c.key[0], c.reason))

        ledger.on_crossing = crossed
        for line in self.warnings:
            self.out.write(f"orchlib: warning: {line}\n")

    def _answered(self) -> set[str]:
        """Waiting tasks whose question `doit answer` answered while the run went on."""
        return {
            f"{pid}:{t.id}"
            for pid, store in self.stores.items()
            for t in store.snapshot().tasks.values()
            if t.status is Status.QUESTION and t.questions and t.questions[-1].answer is not None
        }

    def _announce(self) -> None:
        for pid, task_ids in self.by_plan.items():
            done = self.up_to_date.get(pid, [])
            self.ctx.bus.publish(RunStarted(pid, (*done, *task_ids), os.getpid()))
            for task_id in done:
                self.ctx.bus.publish(self._up_to_date(pid, task_id))

    def _up_to_date(self, plan_id: str, task_id: str) -> TaskUpToDate:
        """A pruned task's event: its summary from the state when it has one, else the stamp."""
        record: TaskRecord | None = self.previous[plan_id].get(task_id)
        if record is not None and record.status is Status.DONE:
            return TaskUpToDate(plan_id, task_id, record.summary, record.finished_at,
                                record.terminal_id, record.attempt)  # fmt: skip
        stamp = self.co.stamp(plan_id, task_id) or Stamp(task_id, "")
        return TaskUpToDate(plan_id, task_id, stamp.summary, stamp.finished_at,
                            stamp.terminal_id, stamp.attempt_number)  # fmt: skip

    def _runner(self, control: Any, dep_manager: Any, opts: RunOptions) -> PlanRunner:
        roots = {meta.root for t in control.tasks.values() if (meta := orch_meta(t))}
        capacity = project_capacity(self.co)
        stream = Stream(opts.verbosity, opts.force_verbosity)
        reporter = PlanReporter(self.ctx, self.out)
        args = (dep_manager, reporter, opts.continue_, opts.always, stream)
        slots = opts.slots or sum(capacity.get(root, 1) for root in roots)
        return PlanRunner(*args, slots=slots, run=self.ctx, previous=self.previous,
                          wait_limits=opts.wait_limits, on_wait=self.console.countdown)  # fmt: skip


@contextlib.contextmanager
def _short_gil_slices() -> Iterator[None]:
    """Hand the GIL over every 1 ms instead of 5 ms while the run's threads work.

    Each attempt's thread mostly waits in syscalls; with the default interval a thread
    returning from one waits up to 5 ms for the GIL (measured: 300 short tasks, -n 8,
    2.5 s -> 2.1 s).
    """
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        yield
    finally:
        sys.setswitchinterval(old)
