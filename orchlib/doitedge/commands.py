"""orchlib's doit commands that extend doit's own: plan-aware `run`, `forget`, `clean`,
`info` and `list` (`status`, `answer`, `log`, `accept` and `help` live in their own modules).

They are registered through the `doit.COMMAND` entry-point group, so they work in every
checkout. In a folder that is not a checkout, they behave exactly as doit's. Where doit's
run is replaced, only its documented hook is: `_execute`, whose parameters name its options.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from orchlib import executorregistry
from orchlib.checkout import Checkout
from orchlib.doitedge import loader, quietexit
from orchlib.doitedge.cmdutil import (
    NO_PLAN_YET,
    OneLineErrors,
    StampLines,
    db_errors_in_one_line,
    fail,
    not_a_checkout,
    quiet_when_reader_gone,
    report,
)
from orchlib.doitedge.doitapi import (
    DoitClean,
    DoitForget,
    DoitInfo,
    DoitList,
    DoitRun,
    InvalidCommand,
    TaskControl,
)
from orchlib.doitedge.loader import orch_meta
from orchlib.errors import ConfigError, OrchError
from orchlib.state import stamps, statesync
from orchlib.state.runlock import run_lock
from orchlib.state.templates import template_dirs

quietexit.install()  # doit loads this module first: from here on Ctrl-C exits 130 quietly


opt_dry_run = {
    "name": "dry_run",
    "long": "dry-run",
    "type": bool,
    "default": False,
    "help": "list what a run would dispatch, in order, with the reason; run nothing",
}


OPT_NO_WAIT_LIMITS = {
    "name": "no_wait_limits",
    "long": "no-wait-limits",
    "type": bool,
    "default": False,
    "help": "when only tasks held by an agent's usage limit are left, stop (exit 2) "
    "instead of waiting for the reset",
}


OPT_SANDBOX = {
    "name": "sandbox",
    "long": "sandbox",
    "type": str,
    "default": "",
    "help": "run every task of this run in a sandbox: bwrap or none (also ORCH_SANDBOX; "
    "else each task's `sandbox:`, default none)",
}


OPT_BUDGET_USD = {
    "name": "budget_usd",
    "long": "budget-usd",
    "type": str,
    "default": "",
    "help": "stop this run's agents once they have spent N US dollars in all; the tasks "
    "left stay PENDING (exit 1)",
}


def budget_usd_value(text: str) -> float | None:
    """`--budget-usd N`: a number >= 0, or None when not given."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigError(f"--budget-usd {text}: expected a number of US dollars >= 0")
    return value


class Run(OneLineErrors, DoitRun):  # type: ignore[misc]
    """doit's run, with plan tasks scheduled by orchlib."""

    doc_purpose = "run the plans' tasks that are not up to date (stamps decide)"
    # The executors' options come from their registry: `--executor` and each one's own.
    cmd_options = (*DoitRun.cmd_options, opt_dry_run, OPT_NO_WAIT_LIMITS,
                   executorregistry.cmd_option(),
                   *(o.cmd_option() for o in executorregistry.options()),
                   OPT_SANDBOX, OPT_BUDGET_USD)  # fmt: skip

    def execute(self, params: Any, args: list[str]) -> Any:
        """Load only the plan tasks this run needs (all with --always or a wildcard)."""
        if any(not a for a in args):
            return fail("an empty task name was given (doit list shows the tasks)")
        # Each executor's own options, by the names its registry entry declares.
        self.executor_options = {o.name: params[o.name] for o in executorregistry.options()}
        whole = params.get("always") or any("*" in a for a in args)
        with loader.run_selection(self.loader, None if whole else list(args)):
            return super().execute(params, args)

    def _execute(  # doit passes the options these parameters name: its own, then orchlib's
        self, outfile: Any, verbosity: Any = None, always: bool = False, continue_: bool = False,
        reporter: Any = "console", num_process: int = 0, par_type: str = "process",
        single: bool = False, auto_delayed_regex: bool = False, force_verbosity: bool = False,
        failure_verbosity: int = 0, pdb: bool = False, dry_run: bool = False,
        no_wait_limits: bool = False, executor: str = "", sandbox: str = "", budget_usd: str = "",
    ) -> Any:  # fmt: skip
        """doit's own run for a foreign dodo.py; orchlib's runner for a checkout's plans."""
        options = {"verbosity": verbosity, "always": always, "continue_": continue_,
                   "reporter": reporter, "num_process": num_process, "par_type": par_type,
                   "single": single, "auto_delayed_regex": auto_delayed_regex,
                   "force_verbosity": force_verbosity, "failure_verbosity": failure_verbosity,
                   "pdb": pdb}  # fmt: skip
        co = loader.checkout_of(self)
        if co is None:
            return super()._execute(outfile, **options)
        try:
            _check_names(executor, sandbox)
            if not (co.root / "plans").is_dir():  # a dodo.py alone: not "plans/ holds no plan"
                raise ConfigError(not_a_checkout(co.root))
            if not any(plan.tasks for plan in co.plans.values()):
                raise ConfigError(NO_PLANS)
            opts = {
                **options,
                "wait_limits": not no_wait_limits,
                "executor": executor,
                "sandbox": sandbox,
                "budget_usd": budget_usd_value(budget_usd),
            }
            return self._plans(co, outfile, dry_run, opts)
        except OrchError as exc:
            return report(exc)

    def _plans(self, co: Any, outfile: Any, dry_run: bool, options: dict[str, Any]) -> int:
        control = TaskControl(self.task_list, auto_delayed_regex=options["auto_delayed_regex"])
        try:
            control.process(self.sel_tasks)
        except InvalidCommand as exc:  # doit's three lines, said in orchlib's one
            if exc.not_found is None:
                raise ConfigError(" ".join(str(exc).split())) from None
            raise ConfigError(
                f"{exc.not_found!r} is not a plan or task (doit list --all shows them)"
            ) from None
        if options["single"]:
            loader.only_selected(control)
        if options["num_process"] < 0:
            raise ConfigError(f"-n {options['num_process']}: the number of agents at once "
                              "must be 1 or more (0: one per project)")  # fmt: skip
        pruning = loader.pruning_of(self)
        statesync.sync_all(
            co.orch_dir, co.plans, co.specs, template_dirs(co.root), pruning.verdicts
        )
        chosen = loader.selected_plan_tasks(control)
        out = open(outfile, "w", encoding="utf-8") if isinstance(outfile, str) else outfile  # noqa: SIM115
        try:
            if dry_run:
                from orchlib.doitedge.dryrun import dry_run as show

                return show(co, chosen, out, pruning, bool(options["always"]))
            return self._run(co, chosen, control, out, options, pruning.up_to_date)
        finally:
            if out is not outfile:
                out.close()

    def _run(
        self, co: Any, chosen: list[Any], control: Any, out: Any, o: dict[str, Any],
        up_to_date: dict[str, list[str]],
    ) -> int:  # fmt: skip
        if not chosen:  # the common re-run: decided without loading the run machinery
            done = sum(len(ids) for ids in up_to_date.values())
            if co.layout.worktrees.is_dir():  # a crash left a finished task's worktree
                from orchlib.run.worktrees import sweep_unlocked

                sweep_unlocked(co)
            out.write(f"orchlib: {done} tasks up to date, nothing to do\n")
            return 0
        from orchlib.doitedge.session import (  # a run with work pays for its imports
            RunOptions,
            run_plans,
        )

        opts = RunOptions(bool(o["continue_"]), bool(o["always"]), o["num_process"],
                          o["verbosity"], o["force_verbosity"], o["wait_limits"],
                          o["executor"], self.executor_options, o["sandbox"],
                          o["budget_usd"])  # fmt: skip
        return run_plans(co, chosen, control, self.dep_manager, out, opts, up_to_date)


def _check_names(executor: str, sandbox: str) -> None:
    """A misspelt `--executor`, `--sandbox`, ORCH_EXECUTOR or ORCH_SANDBOX is an error before
    anything, a run with nothing to do included (it was silently ignored there)."""
    from orchlib.plan.sandboxschema import SANDBOXES

    _one_of(*_given(executor, "--executor", executorregistry.VARIABLE), executorregistry.NAMES)
    _one_of(*_given(sandbox, "--sandbox", "ORCH_SANDBOX"), SANDBOXES)


def _given(value: str, option: str, variable: str) -> tuple[str, str]:
    """The name in force and where it was given: the option, else the environment variable."""
    return (value, option) if value else (os.environ.get(variable, ""), variable)


def _one_of(name: str, source: str, names: tuple[str, ...]) -> None:
    """The one located line for a name not among `names`, worded as a plan's bad value."""
    from orchlib.plan.checks import suggest

    if name and name not in names:
        hint = suggest(name, names)
        raise ConfigError(f"{source} {name!r} is not one of {', '.join(names)}{hint}")


NO_PLANS = (
    "no plan task to run: plans/ holds no plan with tasks; write one (see docs/plans.md) "
    'or draft one with `doit draft "your goal"`'
)


class Forget(OneLineErrors, DoitForget):  # type: ignore[misc]
    """doit's forget; for plan tasks it also sets the stamp aside and drops an open question."""

    doc_purpose = "make tasks run again: set their stamps aside (dependents then run too)"

    @db_errors_in_one_line
    def _execute(self, forget_sub: bool, forget_disable_default: bool, forget_all: bool) -> Any:
        co = loader.checkout_of(self)
        if co is None:
            return super()._execute(forget_sub, forget_disable_default, forget_all)
        if self.sel_default_tasks and not forget_all:
            return fail("name the tasks to forget: doit forget PLAN:TASK (or PLAN, or --all)")
        unknown = [n for n in self.sel_tasks or [] if n not in {t.name for t in self.task_list}]
        if unknown:
            return fail(f"unknown task {unknown[0]!r} (doit list --all shows the tasks)")
        try:
            with run_lock(co.orch_dir, "forget"):
                result = super()._execute(forget_sub, forget_disable_default, forget_all)
                self._forget_plan_tasks(co, forget_sub, forget_all)
                statesync.sync_all(
                    co.orch_dir, co.plans, co.specs, template_dirs(co.root), held=True
                )
        except OrchError as exc:
            return report(exc)
        return result

    def _forget_plan_tasks(self, co: Checkout, forget_sub: bool, forget_all: bool) -> None:
        by_plan: dict[str, list[str]] = {}
        for task in self._forgotten(forget_sub, forget_all):
            meta = orch_meta(task)
            if meta is not None:
                stamps.forget(co.stamp_path(meta.plan, meta.task))
                by_plan.setdefault(meta.plan, []).append(meta.task)
        for plan_id, task_ids in by_plan.items():
            from orchlib import state  # commands that touch the state pay for its imports

            state.forget(co.plan_dir(plan_id), co.plans[plan_id], task_ids, template_dirs(co.root))

    def _forgotten(self, forget_sub: bool, forget_all: bool) -> list[Any]:
        tasks = {t.name: t for t in self.task_list}
        if forget_all:
            return list(tasks.values())
        found: dict[str, Any] = {}
        stack = list(self.sel_tasks or [])
        while stack:
            task = tasks.get(stack.pop())
            if task is None or task.name in found:
                continue
            found[task.name] = task
            if forget_sub or task.has_subtask:
                stack.extend(task.task_dep)
        return list(found.values())


class Clean(OneLineErrors, DoitClean):  # type: ignore[misc]
    """doit's clean; for a checkout it is refused while a run is going."""

    doc_purpose = "remove tasks' stamps (and declared outputs' clean actions): they run again"

    @db_errors_in_one_line
    def _execute(  # doit passes the options these parameters name (doit's clean's)
        self, dryrun: bool, cleandep: bool, cleanall: bool, cleanforget: bool,
        pos_args: list[str] | None = None,
    ) -> Any:  # fmt: skip
        args = (dryrun, cleandep, cleanall, cleanforget, pos_args)
        co = loader.checkout_of(self)
        if co is None:
            return super()._execute(*args)
        unknown = [n for n in self.sel_tasks or [] if "*" not in n
                   and n not in {t.name for t in self.task_list}]  # fmt: skip
        if unknown:
            return fail(f"unknown task {unknown[0]!r} (doit list --all shows the tasks)")
        try:
            with run_lock(co.orch_dir, "clean"):
                self.outstream = StampLines(self.outstream, dryrun)  # type: ignore[has-type]
                result = super()._execute(*args)
                statesync.sync_all(
                    co.orch_dir, co.plans, co.specs, template_dirs(co.root), held=True
                )
        except OrchError as exc:
            return report(exc)
        return result


class Info(OneLineErrors, DoitInfo):  # type: ignore[misc]
    """doit's info, in orchlib's words for plans and plan tasks: why a task would run (the
    rule `doit` uses), its state, stamp and log; a plan's status table."""

    doc_purpose = "why a task would run, its state, stamp and log; a plan's state"

    @quiet_when_reader_gone
    def _execute(self, pos_args: list[str], hide_status: bool = False) -> Any:
        co = loader.checkout_of(self)
        if co is None:
            return super()._execute(pos_args, hide_status)
        if len(pos_args) != 1:
            return fail("info: name one task or plan: doit info PLAN:TASK (doit list --all)")
        name = pos_args[0]
        tasks = {t.name: t for t in self.task_list}
        if name not in tasks:
            return fail(f"unknown task {name!r} (doit list --all shows the tasks)")
        statesync.sync_all(co.orch_dir, co.plans, co.specs, template_dirs(co.root))
        from orchlib.doitedge import infotext

        if name in co.plans:
            self.outstream.write(infotext.plan_info(co, co.plans[name]))
            return 0
        meta = orch_meta(tasks[name])
        if meta is None:
            return super()._execute(pos_args, hide_status)
        text, up_to_date = infotext.task_info(co, meta.plan, meta.task)
        self.outstream.write(text)
        return 0 if up_to_date else 1  # as doit's info: 1 = the task would run


class List(OneLineErrors, DoitList):  # type: ignore[misc]
    """doit's list, over state files that agree with the stamps; `doit list | head` ends quietly."""

    @quiet_when_reader_gone
    def _execute(  # doit passes the options these parameters name (doit's list's)
        self, subtasks: bool = False, quiet: bool = True, status: bool = False,
        private: bool = False, list_deps: bool = False, template: str | None = None,
        sort: str = "name", pos_args: list[str] | None = None,
    ) -> Any:  # fmt: skip
        co = loader.checkout_of(self)
        if co is not None:
            statesync.sync_all(co.orch_dir, co.plans, co.specs, template_dirs(co.root))
        if co is not None and not co.plans:  # not the group task standing for no plan
            sys.stdout.write(NO_PLAN_YET)
            return 0
        if pos_args:  # `doit list PLAN` lists its tasks, as --all does for all
            subtasks = True
        try:
            return DoitList._execute(self, subtasks, quiet, status, private, list_deps,
                                     template, sort, pos_args)  # fmt: skip
        except InvalidCommand as exc:  # doit's `ERROR: 'x' is not a task.`, in orchlib's line
            return fail(
                f"list: {' '.join(str(exc).split()).rstrip('.')} (doit list shows the plans)"
            )
