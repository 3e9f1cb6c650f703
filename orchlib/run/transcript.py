"""An attempt's transcript as a person reads it: what `doit log` prints and the MCP server's
`task_log` returns.

JSON-stream CLIs write one event per line; the log is decoded by the profile's `transcript`
(the assistant's text, one line per tool call, the result), else by its output adapter;
secret values read `[secret:NAME]` unless the raw bytes are asked for.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.executors.process import is_alive
from orchlib.plan import Task
from orchlib.run import fallback
from orchlib.run.markers import strip_ansi
from orchlib.state import runlock

FOLLOW_POLL = 0.1


def decoded(co: Checkout, path: Path, task: Task) -> str:
    """The transcript at `path` as `doit log` prints it (decoded, not followed)."""
    out = io.StringIO()
    show(
        co, path, Decoder(task, co.secrets.redact), out, False, ("", task.id, 0)
    )  # not followed: no run asked
    return out.getvalue()


def show(co: Checkout, path: Path, decode: Decoder, out: IO[str], follow: bool,
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


def as_run(co: Checkout, plan_id: str, task: Task, number: int) -> Task:
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


class Decoder:
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
