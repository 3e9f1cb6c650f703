"""orchlib's `doit run`: doit's run, with a checkout's plan tasks scheduled by orchlib.

Registered through the `doit.COMMAND` entry-point group; in a folder that is not a
checkout it behaves exactly as doit's. Only doit's documented hook is replaced:
`_execute`, whose parameters name its options; the run itself (lock, executor, runner)
is `session.run_plans`.
"""

from __future__ import annotations

import os
from typing import Any

from orchlib import executorregistry
from orchlib.doitedge import loader, quietexit
from orchlib.doitedge.cmdutil import OneLineErrors, fail, not_a_checkout, report
from orchlib.doitedge.doitapi import DoitRun, InvalidCommand, TaskControl
from orchlib.errors import ConfigError, OrchError
from orchlib.state import statesync
from orchlib.state.templates import template_dirs

quietexit.install()  # doit imports this module to run: from here on Ctrl-C exits 130 quietly

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
        control = self._control(options)
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

    def _control(self, options: dict[str, Any]) -> Any:
        """doit's `TaskControl` over this run's selection; a bad name or `-n` is one line."""
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
        return control

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
    _one_of(*_given(executor, "--executor", executorregistry.VARIABLE), executorregistry.NAMES)
    named, source = _given(sandbox, "--sandbox", "ORCH_SANDBOX")
    if named:  # the plan's sandbox checks load only when a name is given
        from orchlib.plan.sandboxschema import SANDBOXES

        _one_of(named, source, SANDBOXES)


def _given(value: str, option: str, variable: str) -> tuple[str, str]:
    """The name in force and where it was given: the option, else the environment variable."""
    return (value, option) if value else (os.environ.get(variable, ""), variable)


def _one_of(name: str, source: str, names: tuple[str, ...]) -> None:
    """The one located line for a name not among `names`, worded as a plan's bad value."""
    if name and name not in names:
        from orchlib.plan.checks import suggest

        hint = suggest(name, names)
        raise ConfigError(f"{source} {name!r} is not one of {', '.join(names)}{hint}")


NO_PLANS = (
    "no plan task to run: plans/ holds no plan with tasks; write one (see docs/plans.md) "
    'or draft one with `doit draft "your goal"`'
)
