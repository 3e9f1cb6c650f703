"""orchlib's doit commands that extend doit's own besides `run` (`runcmd`): plan-aware
`forget` and `clean`, which change the stamps under the run lock, and `info` and `list`
(`status`, `answer`, `log`, `accept` and `help` live in their own modules).

They are registered through the `doit.COMMAND` entry-point group, so they work in every
checkout. In a folder that is not a checkout, they behave exactly as doit's.
"""

from __future__ import annotations

import sys
from typing import Any

from orchlib.checkout import Checkout
from orchlib.doitedge import loader, quietexit
from orchlib.doitedge.cmdutil import (
    NO_PLAN_YET,
    OneLineErrors,
    StampLines,
    db_errors_in_one_line,
    fail,
    quiet_when_reader_gone,
    report,
)
from orchlib.doitedge.doitapi import (
    DoitClean,
    DoitForget,
    DoitInfo,
    DoitList,
    InvalidCommand,
)
from orchlib.doitedge.loader import orch_meta
from orchlib.errors import OrchError
from orchlib.state import stamps, statesync
from orchlib.state.runlock import run_lock
from orchlib.state.templates import template_dirs

# doit imports only the module of the command it runs: this one and `runcmd` each install
# it, so from here on a Ctrl-C exits 130 quietly.
quietexit.install()


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
