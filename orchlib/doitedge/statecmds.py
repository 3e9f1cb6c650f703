"""`doit status` and `doit answer`: read and answer the state while a run goes or after it;
`doit approve` and `doit reject`: a person's decision on a task waiting for approval.

Both work during a run (they take only the state file lock). Between runs, `status`
first makes the state files agree with the stamps (statesync), so it never shows DONE for
a task the next `doit` would redo.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from orchlib.checkout import Checkout
from orchlib.doitedge.cmdutil import (
    NO_PLAN_YET,
    OneLineErrors,
    checkout_here,
    fail,
    options_first,
    quiet_when_reader_gone,
    report,
)
from orchlib.doitedge.doitapi import Command
from orchlib.errors import OrchError
from orchlib.run import approval, queries
from orchlib.textsafe import printable

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
        wanted = queries.wanted_by(co, args)
        if isinstance(wanted, str):
            return fail(wanted)
        if not co.plans and not params["as_json"]:
            sys.stdout.write(NO_PLAN_YET)
        elif params["as_json"]:
            doc = queries.status_doc(co, wanted)
            sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False))
            sys.stdout.write("\n")
        else:
            from orchlib import state

            tables = [state.render_status(plan, current, stamps, root=co.root, only=only,
                                          color=_color())
                      for plan, current, stamps, only in queries.views(co, wanted)]  # fmt: skip
            sys.stdout.write(printable("\n".join(t.rstrip("\n") + "\n" for t in tables)))
        sys.stdout.flush()  # a closed pipe shows here, inside the command
        return 0


def _color() -> bool:
    from orchlib.state.table import wants_color

    return wants_color(sys.stdout)


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
            message = queries.answer_task(co, args[0], args[1])
        except OrchError as exc:
            return report(exc)
        sys.stdout.write(f"{message}\n")
        return 0


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
