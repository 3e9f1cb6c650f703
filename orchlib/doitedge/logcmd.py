"""`doit log PLAN:TASK [-f] [--attempt N] [--raw] [--review]`: a transcript, as it happens.

The decoding (`run/transcript.py`) is shared with the MCP server's `task_log`.
`--raw` prints the bytes as written; otherwise secret values read `[secret:NAME]`.
`-f` follows the log while the attempt runs.
"""

from __future__ import annotations

import sys
from typing import Any

from orchlib.doitedge.cmdutil import (
    OneLineErrors,
    checkout_here,
    fail,
    options_first,
    quiet_when_reader_gone,
)
from orchlib.doitedge.doitapi import Command
from orchlib.records import replace
from orchlib.run.transcript import Decoder, as_run, show

opt_follow = {"name": "follow", "short": "f", "long": "follow", "type": bool, "default": False,
              "help": "keep printing while the attempt runs"}  # fmt: skip
opt_attempt = {"name": "attempt", "long": "attempt", "type": int, "default": 0,
               "help": "the attempt to show (default: the latest)"}  # fmt: skip
opt_raw = {"name": "raw", "long": "raw", "type": bool, "default": False,
           "help": "the transcript as the agent wrote it (no decoding)"}  # fmt: skip
opt_review = {"name": "review", "long": "review", "type": bool, "default": False,
              "help": "the attempt's reviewer's transcript (DESIGN §16)"}  # fmt: skip
USAGE = "[-f] [--attempt N] [--raw] [--review] PLAN:TASK"


class Log(OneLineErrors, Command):  # type: ignore[misc]
    """doit log PLAN:TASK: print (and follow) an attempt's transcript."""

    name = "log"
    doc_purpose = "print a task's latest transcript (-f follows it while it runs)"
    doc_usage = USAGE
    doc_description = (
        "Each attempt's transcript is in .orch/<planId>/logs/<taskId>.<attempt>.log. A CLI's\n"
        "JSON events are shown as text: what the agent said, one line per tool call, and\n"
        "the result. Works while a run is going.\n"
        "--review shows the reviewer's transcript (<taskId>.<attempt>.review.log)."
    )
    cmd_options = (opt_follow, opt_attempt, opt_raw, opt_review)

    def parse_execute(self, in_args: list[str]) -> Any:
        """doit's parsing, with the options after PLAN:TASK too (`doit log shop:t1 -f`)."""
        return super().parse_execute(options_first(in_args, self.cmd_options))

    @quiet_when_reader_gone
    def execute(self, params: Any, args: list[str]) -> int:
        """Print the transcript of the attempt asked for."""
        if len(args) != 1 or ":" not in args[0]:
            return fail(f"log: usage: doit log {USAGE}")
        co = checkout_here()
        if isinstance(co, int):
            return co
        plan_id, task_id = args[0].split(":", 1)
        plan = co.plans.get(plan_id)
        if plan is None or task_id not in plan.tasks:
            return fail(f"log: unknown task {args[0]!r} (doit list --all shows the tasks)")
        number = params["attempt"] or co.latest_attempt(plan_id, task_id)
        if not number:
            return fail(f"log: {args[0]} has no transcript yet (it has not run)")
        task = plan.tasks[task_id]
        path = co.log_path(plan_id, task_id, number, "review.log" if params["review"] else "log")
        if not path.is_file():
            what = "review of that attempt" if params["review"] else "attempt"
            return fail(f"log: {path.relative_to(co.root)}: no such {what}")
        if params["review"] and task.review is not None:  # decoded as its reviewer's CLI
            task = replace(task, agent=task.review.agent)
        else:  # decoded as the agent that ran the attempt (a fallback list's)
            task = as_run(co, plan_id, task, number)
        decode = Decoder(None if params["raw"] else task, co.secrets.redact)
        try:
            show(co, path, decode, sys.stdout, params["follow"], (plan_id, task_id, number))
        except KeyboardInterrupt:
            return 130
        return 0
