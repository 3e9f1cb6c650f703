"""`doit log PLAN:TASK [-f] [--attempt N] [--raw] [--review]`: a transcript, as it happens.

JSON-stream CLIs write one event per line; the log is decoded to what a person reads by
the profile's `transcript` (the assistant's text, one line per tool call, the result), else
by its output adapter.
`--raw` prints the bytes as written; otherwise secret values read `[secret:NAME]`.
`-f` follows the log while the attempt runs.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.doitedge.cmdutil import (
    OneLineErrors,
    checkout_here,
    fail,
    options_first,
    quiet_when_reader_gone,
)
from orchlib.doitedge.doitapi import Command
from orchlib.executors.process import is_alive
from orchlib.plan import Task
from orchlib.run import fallback
from orchlib.run.markers import strip_ansi
from orchlib.state import runlock

FOLLOW_POLL = 0.1

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
            task = _as_run(co, plan_id, task, number)
        decode = _Decoder(None if params["raw"] else task, co.secrets.redact)
        try:
            _show(co, path, decode, sys.stdout, params["follow"], (plan_id, task_id, number))
        except KeyboardInterrupt:
            return 130
        return 0


def decoded(co: Checkout, path: Path, task: Task) -> str:
    """The transcript at `path` as `doit log` prints it (decoded, not followed)."""
    out = io.StringIO()
    _show(
        co, path, _Decoder(task, co.secrets.redact), out, False, ("", task.id, 0)
    )  # not followed: no run asked
    return out.getvalue()


def _show(co: Checkout, path: Path, decode: _Decoder, out: IO[str], follow: bool,
          which: tuple[str, str, int]) -> None:  # fmt: skip
    with path.open("rb") as fh:
        tail = b""
        while True:
            block = fh.read(1 << 16)
            if block:
                *lines, tail = (tail + block).split(b"\n")
                for line in lines:
                    decode.write(line.decode("utf-8", "replace"), out)
                out.flush()
            elif not follow:
                break
            elif not _running(co, *which):
                follow = False  # one more read: what the attempt printed just before it ended
            else:
                time.sleep(FOLLOW_POLL)
        if tail:
            decode.write(tail.decode("utf-8", "replace"), out)
        out.flush()


def _as_run(co: Checkout, plan_id: str, task: Task, number: int) -> Task:
    """The task with the agent of its fallback list that ran attempt `number`, when the
    state still names it (the latest attempt); else its first."""
    if not task.agents:
        return task
    from orchlib import state

    current = state.load(co.plan_dir(plan_id))
    record = current.tasks.get(task.id) if current else None
    return fallback.named(task, record.agent) if record and record.attempt == number else task


def _running(co: Checkout, plan_id: str, task_id: str, number: int) -> bool:
    """Whether the attempt still runs: the state says so, and its run or its agent lives
    (a killed run leaves IN_PROGRESS behind)."""
    from orchlib import state

    current = state.load(co.plan_dir(plan_id))
    record = current.tasks.get(task_id) if current else None
    if record is None or record.status is not state.Status.IN_PROGRESS:
        return False
    if record.attempt != number:
        return False
    return runlock.is_running(co.orch_dir) or bool(record.pid and is_alive(record.pid, ""))


class _Decoder:
    """Turns one transcript line into what a person reads (None task: raw)."""

    def __init__(self, task: Task | None, redact: Callable[[str], str] = str) -> None:
        self.raw = task is None
        self.redact = redact  # the secret filter: only --raw shows what was printed
        agent = task.agent if task is not None and task.command is None else None
        self.decode = agents.transcript(agent) if agent is not None else None
        self.adapter = agents.adapter(agent) if agent is not None else None

    def write(self, line: str, out: IO[str]) -> None:
        if self.raw:
            out.write(line + "\n")
            return
        for text in self.texts(line):
            out.write(self.redact(strip_ansi(text).rstrip("\n")) + "\n")

    def texts(self, line: str) -> list[str]:
        doc = _json(line)
        if doc is None:
            return [line]
        if self.decode is not None:
            return self.decode(doc)
        return self.adapter.texts(line) if self.adapter is not None else [line]


def _json(line: str) -> dict[str, Any] | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
