"""One round of the drafting agent, through the machinery of a task attempt.

The same profile command lines (`agents.invocation`), the same gated process start in its
own session (`terminal.spawn`), the same marker reader with stall and exit-grace limits
(`attempt.follow`): a drafting agent is started and understood exactly as a task's agent.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchlib import agents
from orchlib.executors.base import Job
from orchlib.executors.local import LocalExecutor
from orchlib.fsutil import atomic_write, ensure_dir
from orchlib.plan import AgentSpec, Limits
from orchlib.plan.environment import DEFAULT_EXCLUDE, EnvPolicy
from orchlib.records import replace
from orchlib.redact import secrets_in
from orchlib.run.attempt import Follow, Outcome, follow
from orchlib.run.context import Interrupt
from orchlib.run.linesplit import LineSplitter
from orchlib.run.markers import Kind, scan

TASK_ID = "draft"  # ORCH_TASK_ID of a drafting agent
# A fenced block: ```yaml (or yml, json, nothing) ... ``` on lines of their own.
_FENCE = re.compile(
    r"^[ \t]*```[ \t]*(?:ya?ml|json)?[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL
)


@dataclass(frozen=True)
class Round:
    """One dispatch: its number, the agent, where it works and its files go, what it is told."""

    number: int
    agent: AgentSpec
    checkout: Path
    workdir: Path  # the draft's folder under .orch/drafts/: never the checkout root
    draft_id: str
    plan_file: Path
    prompt_file: Path
    log: Path
    terminal_id: str


def new_terminal_id(number: int) -> str:
    """A fresh terminal id for dispatch `number`, unique as a task attempt's is."""
    return f"term-draft-{number}-{secrets.token_hex(3)}"


def run(r: Round, prompt: str, stop: Interrupt, on_progress: Callable[[int, str], None]) -> Outcome:
    """Start the agent in the draft's folder with `prompt`, follow it to its end; the outcome.

    Not in the checkout root: an agent there could write `dodo.py`, `plans/` or the caches
    under `.orch/` that the next `doit` reads. Its folder holds only its own files.
    """
    atomic_write(r.prompt_file, prompt, durable=False)
    ensure_dir(r.workdir)
    launch = agents.Launch(
        prompt=prompt, prompt_file=r.prompt_file, terminal_id=r.terminal_id, task_id=TASK_ID,
        plan_id=r.draft_id, project="", project_path=r.workdir,
    )  # fmt: skip
    inv = agents.invocation(r.agent, launch)
    env = {**_orch_env(r), **inv.env}
    on_stdin = inv.prompt_mode == "stdin"
    job = Job(inv.argv, r.workdir, env, r.log, f"{r.draft_id}:{TASK_ID}",
              stdin=prompt.encode("utf-8") if on_stdin else None, keep_stdin=not on_stdin,
              stdin_file=r.prompt_file if on_stdin else None,
              policy=EnvPolicy(), logins=agents.logins(r.agent))  # fmt: skip
    # A draft runs beside the checkout, never on a cluster: always on this machine.
    proc = LocalExecutor(stop.wake_fd, stop.is_set).start(job)
    adapter = agents.adapter(r.agent)
    clean = secrets_in(os.environ, DEFAULT_EXCLUDE, agents.all_logins()).redact

    def progress(percent: int, text: str) -> None:
        on_progress(percent, clean(text))

    watch = Follow(proc, r.log, r.terminal_id, Limits(), adapter, stop.event, progress)
    outcome = follow(watch)  # its words are shown and kept in .orch/drafts/: no secrets
    return replace(outcome, text=clean(outcome.text))


def _orch_env(r: Round) -> dict[str, str]:
    return {
        "TERMINAL_ID": r.terminal_id,
        "ORCH_PLAN_ID": r.draft_id,
        "ORCH_TASK_ID": TASK_ID,
        "ORCH_PROJECT": "",
        "ORCH_ATTEMPT": str(r.number),
        "ORCH_PROMPT_FILE": str(r.prompt_file),
        "ORCH_PLAN_FILE": str(r.plan_file),
    }


def printed_plan(r: Round) -> str | None:
    """The plan the agent printed in a fenced block after its DONE line, if it did."""
    texts = _texts(r)
    for index, text in enumerate(texts):
        lines = text.split("\n")
        for at, line in enumerate(lines):
            if any(m.kind is Kind.DONE for m in scan(line, r.terminal_id)):
                after = "\n".join([*lines[at + 1 :], *texts[index + 1 :]])
                found = _FENCE.search(after)
                return found[1] if found else None
    return None


def _texts(r: Round) -> list[str]:
    """What the agent said (assistant text and tool results), read back from its log."""
    adapter = agents.adapter(r.agent)
    splitter = LineSplitter(json_events=adapter.json_events)
    found: list[str] = []
    with contextlib.suppress(OSError), r.log.open("rb") as reader:
        while block := reader.read(1 << 16):
            for line in splitter.feed(block):
                found.extend(adapter.texts(line))
    for line in splitter.flush():
        found.extend(adapter.texts(line))
    return found
