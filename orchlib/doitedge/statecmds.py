"""`doit status` and `doit answer`: read and answer the state while a run goes or after it;
`doit approve` and `doit reject`: a person's decision on a task waiting for approval.

Both work during a run (they take only the state file lock). Between runs, `status`
first makes the state files agree with the stamps (statesync), so it never shows DONE for
a task the next `doit` would redo.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from orchlib.checkout import Checkout
from orchlib.doitedge.cmdutil import (
    OneLineErrors,
    checkout_here,
    fail,
    options_first,
    quiet_when_reader_gone,
    report,
)
from orchlib.doitedge.doitapi import Command
from orchlib.errors import ConfigError, OrchError
from orchlib.plan import Plan
from orchlib.run import approval
from orchlib.run.prompt import template_dirs
from orchlib.state import runlock, statesync, uptodate
from orchlib.textsafe import printable

if TYPE_CHECKING:
    from orchlib.state import PlanState

    _View = tuple[Plan, PlanState | None, dict[str, Any], set[str] | None]

opt_json = {
    "name": "as_json",
    "long": "json",
    "type": bool,
    "default": False,
    "help": "print the state as JSON (one object: plans, their tasks, totals)",
}


class Status(OneLineErrors, Command):  # type: ignore[misc]
    """doit status: each plan task's state, progress, attempt and last line, and what to do next."""

    name = "status"
    doc_purpose = "show the state of every plan task (works while a run is going)"
    doc_usage = "[--json] [PLAN | PLAN:TASK | PATTERN ...]"
    doc_description = (
        "Every task with its state (DONE only while a run would skip it), attempt, elapsed\n"
        "time, cost and tokens (as the agent reported them), log file and last line, then\n"
        "what to do next. Name plans, tasks or patterns (shop:t*) to show only those."
    )
    cmd_options = (opt_json,)

    def parse_execute(self, in_args: list[str]) -> Any:
        """doit's parsing, with --json after the names too (`doit status shop --json`)."""
        return super().parse_execute(options_first(in_args, self.cmd_options))

    @quiet_when_reader_gone
    def execute(self, params: Any, args: list[str]) -> int:
        """Print the status table (or JSON) of each plan, or of the plans and tasks named."""
        co = checkout_here()
        if isinstance(co, int):
            return co
        wanted = _filter(co, args)
        if isinstance(wanted, str):
            return fail(wanted)
        if params["as_json"]:
            doc = status_doc(co, wanted)
            sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False))
            sys.stdout.write("\n")
        else:
            from orchlib import state

            tables = [state.render_status(plan, current, stamps, root=co.root, only=only,
                                          color=_color())
                      for plan, current, stamps, only in _views(co, wanted)]  # fmt: skip
            sys.stdout.write(printable("\n".join(t.rstrip("\n") + "\n" for t in tables)))
        sys.stdout.flush()  # a closed pipe shows here, inside the command
        return 0


def status_json(co: Checkout, args: list[str]) -> dict[str, Any]:
    """What `doit status --json ARGS` prints (ConfigError when an argument names nothing)."""
    wanted = _filter(co, args)
    if isinstance(wanted, str):
        raise ConfigError(wanted)
    return status_doc(co, wanted)


def status_doc(co: Checkout, wanted: dict[str, set[str] | None]) -> dict[str, Any]:
    """The plans and tasks in `wanted` as one JSON object (`doit status --json`)."""
    from orchlib.state import statusjson

    docs = [statusjson.plan_doc(plan, current, stamps, co.root, only)
            for plan, current, stamps, only in _views(co, wanted)]  # fmt: skip
    return statusjson.combine(docs)


def _views(co: Checkout, wanted: dict[str, set[str] | None]) -> Iterator[_View]:
    """Each plan wanted with its state and done stamps, the state first made to agree with
    the stamps when no run is going."""
    from orchlib import state

    running = runlock.is_running(co.orch_dir)
    for plan_id, only in wanted.items():
        plan = co.plans[plan_id]
        verdicts = uptodate.verdicts(co.orch_dir, plan, co.specs)
        if not running:
            statesync.sync(co.orch_dir, plan, verdicts, template_dirs(co.root))
        stamps = statesync.done_stamps(co.orch_dir, plan, verdicts)
        yield plan, state.load(co.plan_dir(plan_id)), stamps, only


def _color() -> bool:
    from orchlib.state.table import wants_color

    return wants_color(sys.stdout)


def _filter(co: Checkout, args: list[str]) -> dict[str, set[str] | None] | str:
    """Plan id -> the task ids to show (None: all); a message when an argument matches nothing."""
    if not args:
        return {plan_id: None for plan_id in co.plans}
    wanted: dict[str, set[str] | None] = {}
    for arg in args:
        found = False
        for plan_id, plan in co.plans.items():
            if fnmatch.fnmatchcase(plan_id, arg):
                wanted[plan_id], found = None, True
                continue
            ids = {t for t in plan.tasks if fnmatch.fnmatchcase(f"{plan_id}:{t}", arg)}
            if ids:
                found = True
                if wanted.get(plan_id, set()) is not None:
                    wanted[plan_id] = (wanted.get(plan_id) or set()) | ids
        if not found:
            return f"status: {arg!r} names no plan or task (known plans: {', '.join(co.plans)})"
    return wanted


class Answer(OneLineErrors, Command):  # type: ignore[misc]
    """doit answer PLAN:TASK "text": answer a task's question; the next run re-dispatches it."""

    name = "answer"
    doc_purpose = "answer the question of a waiting task (the next `doit` resumes it)"
    doc_usage = 'PLAN:TASK "answer text"'
    doc_description = (
        'Stores the text exactly as given (quote it: `doit answer shop:t3 "port=5432"`).\n'
        "Works while a run is going. Answering again before the task resumes replaces the\n"
        "answer. The next `doit` re-dispatches the task with the question and answer in its\n"
        "prompt."
    )
    cmd_options = ()

    def execute(self, params: Any, args: list[str]) -> int:
        """Store the answer in the plan's state (takes only the state lock)."""
        args = raw_answer_args(args)
        if len(args) != 2 or ":" not in args[0]:
            return fail('answer: usage: doit answer PLAN:TASK "answer text"')
        if not args[1].strip():
            return fail(f"answer: the answer for {args[0]} is empty; give the text to send")
        co = checkout_here()
        if isinstance(co, int):
            return co
        try:
            message = answer_task(co, args[0], args[1])
        except OrchError as exc:
            return report(exc)
        sys.stdout.write(f"{message}\n")
        return 0


def answer_task(co: Checkout, name: str, text: str) -> str:
    """Store `text` as the answer to the question of task `name` (PLAN:TASK); the message."""
    plan_id, _, task_id = name.partition(":")
    plan: Plan | None = co.plans.get(plan_id)
    if plan is None or task_id not in plan.tasks:
        raise ConfigError(f"answer: unknown task {name!r} (doit list --all shows the tasks)")
    from orchlib import state

    return state.answer(co.plan_dir(plan_id), plan, task_id, text, template_dirs(co.root))


def raw_answer_args(args: list[str], command: str = "answer") -> list[str]:
    """The arguments after `answer` (or `command`) as typed, without `--`.

    doit's command line takes `x=y` words for its own variables before any command sees
    them, so an answer holding `=` is read back from `sys.argv` (only when what doit passed
    is that same list minus such words).
    """
    given = [a for a in args if a != "--"]
    argv = sys.argv[1:]
    if command not in argv:
        return given
    typed = [a for a in argv[argv.index(command) + 1 :] if a != "--"]
    plain = [a for a in typed if a.startswith("-") or "=" not in a]
    return typed if plain == given else given


class Approve(OneLineErrors, Command):  # type: ignore[misc]
    """doit approve PLAN:TASK: a person approves a task waiting in APPROVAL (DESIGN §16)."""

    name = "approve"
    doc_purpose = "approve a task waiting for approval: it is stamped (and merged) as done"
    doc_usage = "PLAN:TASK"
    doc_description = (
        "For a task with `approve: true` whose checks passed: writes its stamp (merging its\n"
        "worktree under isolation), so the next `doit` runs its dependents."
    )
    cmd_options = ()

    def execute(self, params: Any, args: list[str]) -> int:
        """Approve the task named (refused unless it waits for approval)."""
        if len(args) != 1 or ":" not in args[0]:
            return fail("approve: usage: doit approve PLAN:TASK")
        return _decide(lambda co: approval.approve(co, args[0]))


class Reject(OneLineErrors, Command):  # type: ignore[misc]
    """doit reject PLAN:TASK "what to change": the next run re-dispatches it with that."""

    name = "reject"
    doc_purpose = "reject a task waiting for approval: the next `doit` runs it again"
    doc_usage = 'PLAN:TASK "what to change"'
    doc_description = (
        "For a task waiting for approval: the next `doit` runs it again with your words as\n"
        "feedback in its prompt, using no retry."
    )
    cmd_options = ()

    def execute(self, params: Any, args: list[str]) -> int:
        """Reject the task named with the feedback given."""
        args = raw_answer_args(args, "reject")
        if len(args) != 2 or ":" not in args[0]:
            return fail('reject: usage: doit reject PLAN:TASK "what to change"')
        return _decide(lambda co: approval.reject(co, args[0], args[1]))


def _decide(decision: Callable[[Checkout], str]) -> int:
    """Run an approval decision in the checkout here; its line, or its one-line refusal."""
    co = checkout_here()
    if isinstance(co, int):
        return co
    try:
        message = decision(co)
    except OrchError as exc:
        return report(exc)
    sys.stdout.write(f"{message}\n")
    return 0
