"""orchlib's doit commands: plan-aware `run`, `forget`, `info`, plus `status` and `answer`.

They are registered through the `doit.COMMAND` entry-point group, so they work in every
checkout. In a folder that is not a checkout, run/forget/info behave exactly as doit's.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doit.cmd_base import Command
from doit.cmd_forget import Forget as DoitForget
from doit.cmd_info import Info as DoitInfo
from doit.cmd_list import List as DoitList
from doit.cmd_run import Run as DoitRun
from doit.control import TaskControl
from doit.exceptions import InvalidCommand

from orchlib import loader, plugins, stamps
from orchlib.errors import OrchError
from orchlib.loader import orch_meta
from orchlib.prompt import template_dirs

plugins.install()  # doit's later plugin lookups: one scan of the installed packages


def _reader_gone() -> int:
    """`doit status | head`: the reader closed the pipe. End quietly, exit 1 (as Python's docs
    advise; stdout is pointed at /dev/null so the flush at exit cannot fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


def _quiet_when_reader_gone(execute: Callable[..., Any]) -> Callable[..., Any]:
    """A command's `_execute` that ends quietly when the reader of its output is gone.

    doit reports any exception of a command with a traceback; `functools.wraps` keeps the
    signature doit reads its options from.
    """

    @functools.wraps(execute)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, *args, **kwargs)
        except BrokenPipeError:
            return _reader_gone()

    return run


def _report(exc: OrchError) -> int:
    for line in exc.lines():
        sys.stderr.write(f"{line}\n")
    return exc.exit_code


OPT_NO_WAIT_LIMITS = {
    "name": "no_wait_limits",
    "long": "no-wait-limits",
    "type": bool,
    "default": False,
    "help": "when only tasks held by an agent's usage limit are left, stop (exit 2) "
    "instead of waiting for the reset",
}


class Run(DoitRun):  # type: ignore[misc]
    """doit's run, with plan tasks scheduled by orchlib."""

    cmd_options = (*DoitRun.cmd_options, OPT_NO_WAIT_LIMITS)

    def execute(self, params: Any, args: list[str]) -> Any:
        """Load only the plan tasks this run needs (all with --always or a wildcard)."""
        whole = params.get("always") or any("*" in a for a in args)
        with loader.pruned_for_run(None if whole else list(args)):
            return super().execute(params, args)

    def _execute(self, outfile: Any, verbosity: int | None = None, always: bool = False,
                 continue_: bool = False, reporter: str = "console", num_process: int = 0,
                 par_type: str = "process", single: bool = False, auto_delayed_regex: bool = False,
                 force_verbosity: bool = False, failure_verbosity: int = 0,
                 pdb: bool = False, no_wait_limits: bool = False) -> int:  # fmt: skip
        co = loader.current()
        if co is None or not co.plans:
            return int(super()._execute(
                outfile, verbosity, always, continue_, reporter, num_process, par_type, single,
                auto_delayed_regex, force_verbosity, failure_verbosity, pdb))  # fmt: skip
        control = TaskControl(self.task_list, auto_delayed_regex=auto_delayed_regex)
        control.process(self.sel_tasks)
        if single:
            for name in control.selected_tasks:
                control.tasks[name].task_dep = []
        chosen = loader.selected_plan_tasks(control)
        out = open(outfile, "w", encoding="utf-8") if isinstance(outfile, str) else outfile  # noqa: SIM115
        try:
            return self._run(co, chosen, control, out, continue_, always, num_process, verbosity,
                             force_verbosity, not no_wait_limits)  # fmt: skip
        except OrchError as exc:
            return _report(exc)
        finally:
            if out is not outfile:
                out.close()

    def _run(self, co: Any, chosen: list[Any], control: Any, out: Any, *options: Any) -> int:
        if not chosen:  # the common re-run: decided without loading the run machinery
            done = sum(len(ids) for ids in co.up_to_date.values())
            if (co.orch_dir / "worktrees").is_dir():  # a crash left a finished task's worktree
                from orchlib.worktrees import sweep_unlocked

                sweep_unlocked(co)
            out.write(f"orchlib: {done} tasks up to date, nothing to do\n")
            return 0
        from orchlib.session import RunOptions, run_plans  # a run with work pays for its imports

        opts = RunOptions(bool(options[0]), *options[1:])
        return run_plans(co, chosen, control, self.dep_manager, out, opts)


class Forget(DoitForget):  # type: ignore[misc]
    """doit's forget; for plan tasks it also sets the stamp aside and drops an open question."""

    def _execute(self, forget_sub: bool, forget_disable_default: bool, forget_all: bool) -> Any:
        result = super()._execute(forget_sub, forget_disable_default, forget_all)
        co = loader.current()
        if co is None:
            return result
        by_plan: dict[str, list[str]] = {}
        for task in self._forgotten(forget_sub, forget_disable_default, forget_all):
            meta = orch_meta(task)
            if meta is not None:
                stamps.forget(co.stamp_path(meta["plan"], meta["task"]))
                by_plan.setdefault(meta["plan"], []).append(meta["task"])
        for plan_id, task_ids in by_plan.items():
            plan = co.plans[plan_id]
            from orchlib import state  # commands that touch the state pay for its imports

            state.forget(co.plan_dir(plan_id), plan, task_ids, template_dirs(co.root))
        return result

    def _forgotten(self, forget_sub: bool, disable_default: bool, forget_all: bool) -> list[Any]:
        tasks = {t.name: t for t in self.task_list}
        if forget_all:
            return list(tasks.values())
        if self.sel_default_tasks and disable_default:
            return []
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


class Info(DoitInfo):  # type: ignore[misc]
    """doit's info; for a plan task it first says, in one line, why it would run."""

    @_quiet_when_reader_gone
    def _execute(self, pos_args: list[str], hide_status: bool = False) -> Any:
        co = loader.current()
        tasks = {t.name: t for t in self.task_list}
        if co is not None and len(pos_args) == 1 and pos_args[0] in tasks:
            meta = orch_meta(tasks[pos_args[0]])
            if meta is not None:
                plan = co.plans[meta["plan"]]
                reason = co.why_not_done(plan, plan.tasks[meta["task"]])
                verdict = f"would run: {reason}" if reason else "up to date (has a valid stamp)"
                self.outstream.write(f"{pos_args[0]}: {verdict}\n")
        return super()._execute(pos_args, hide_status)


class List(DoitList):  # type: ignore[misc]
    """doit's list; `doit list | head` ends quietly."""

    _execute = _quiet_when_reader_gone(DoitList._execute)


class Status(Command):  # type: ignore[misc]
    """doit status: each plan task's state, progress, attempt and last line, and what to do next."""

    name = "status"
    doc_purpose = "show the state of every plan task (works while a run is going)"
    doc_usage = "[PLAN ...]"
    doc_description = None
    cmd_options = ()

    @_quiet_when_reader_gone
    def execute(self, params: Any, args: list[str]) -> int:
        """Print the status table of each plan (or the plans named)."""
        try:
            co = loader.checkout_for(Path.cwd())
        except Exception as exc:  # InvalidDodoFile: the plan errors, already one per line
            sys.stderr.write(f"{exc}\n")
            return 3
        unknown = [a for a in args if a not in co.plans]
        if unknown:
            raise InvalidCommand(f"unknown plan {unknown[0]!r} (known: {', '.join(co.plans)})")
        for plan_id, plan in co.plans.items():
            if args and plan_id not in args:
                continue
            found = {t: co.stamp(plan_id, t) for t in plan.tasks}
            from orchlib import state

            table = state.render_status(plan, state.load(co.plan_dir(plan_id)),
                                        {k: v for k, v in found.items() if v})  # fmt: skip
            sys.stdout.write(table.rstrip("\n") + "\n")
            sys.stdout.flush()  # a closed pipe shows here, inside the command
        return 0


class Answer(Command):  # type: ignore[misc]
    """doit answer PLAN:TASK "text": answer a task's question; the next run re-dispatches it."""

    name = "answer"
    doc_purpose = "answer the open question of a waiting task"
    doc_usage = 'PLAN:TASK "answer text"'
    doc_description = None
    cmd_options = ()

    def execute(self, params: Any, args: list[str]) -> int:
        """Store the answer in the plan's state (takes only the state lock)."""
        if len(args) != 2 or ":" not in args[0]:
            raise InvalidCommand('usage: doit answer PLAN:TASK "answer text"')
        try:
            co = loader.checkout_for(Path.cwd())
        except Exception as exc:
            sys.stderr.write(f"{exc}\n")
            return 3
        plan_id, task_id = args[0].split(":", 1)
        plan = co.plans.get(plan_id)
        if plan is None or task_id not in plan.tasks:
            sys.stderr.write(f"{args[0]}: no such plan task\n")
            return 3
        try:
            from orchlib import state

            message = state.answer(
                co.plan_dir(plan_id), plan, task_id, args[1], template_dirs(co.root)
            )
        except OrchError as exc:
            return _report(exc)
        sys.stdout.write(
            f"{message}\n" if message else f"answered {args[0]}; run doit to continue\n"
        )
        return 0
