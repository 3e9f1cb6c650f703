"""orchlib's commands, one entry each: its doit `Command` class, whether it needs a checkout,
its lines in `doit help`'s list and its `doit help NAME` text.

`python -m orchlib` builds its commands from this table (`cli`), `doit help` reads it
(`helpcmd`), and pyproject's `doit.COMMAND` entry points, which make the commands work in
any doit checkout, hold the same `module:Class` targets (tests/test_registry.py checks it).
A new command is its module under `orchlib/doitedge/` and one entry here. Classes are
imported on first use, so a `doit` that runs one command loads only its module.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One command: its name, class, whether it needs a checkout, its help."""

    name: str
    target: str  # "module:Class", as its doit.COMMAND entry point says
    checkout: bool  # True: refused outside a checkout (a folder without plans/)
    topic: str  # `doit help NAME` ("": doit's own help of the command)
    overview: tuple[tuple[str, str], ...]  # (usage, what it does) lines in `doit help`
    verbatim: bool = False  # its text arguments are not doit's `x=y` variables (an answer's)

    def load(self) -> Any:
        """The doit Command class (imported now)."""
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


RUN = """\
doit [OPTIONS] [PLAN | PLAN:TASK ...]   (same as `doit run ...`)

Runs every task of the plans named (all plans without a name) that is not up to date,
with the tasks it depends on. A task is up to date while its stamp exists, its spec
(title, description, agent, command, verify, outputs, context, prompt template) is
unchanged, its outputs exist, its inputs are unchanged, and no dependency was redone
after it. A failed task's dependents are skipped; independent tasks keep running.

Options
  -n N, --process N   at most N agents at once (default: one per project); N >= 1
  -a, --always        run the selected tasks even when they are up to date
  -s, --single        run only the tasks named, not the tasks they depend on
                      (`-s PLAN` runs the plan's tasks in their own order)
  --dry-run           list what would be dispatched, in order, with the reason
  --no-wait-limits    when only tasks paused by an agent's usage limit are left, stop
                      (exit 2) and say when to come back, instead of waiting
  --budget-usd N      stop this run's agents once they spent N US dollars in all; the
                      tasks left stay PENDING (exit 1)
  -c, --continue      on by default: a failure does not stop independent tasks
  --sandbox bwrap     run every task in a bubblewrap sandbox that lets it write its own
                      project only (`none`: without; also ORCH_SANDBOX, `sandbox:` in plans)
{executors}Exit: 0 all done; 1 a task failed, waits on a question or was skipped; 3 a bad plan or
configuration (a missing agent CLI, a bad project folder), reported before anything runs;
130/143 interrupted (agents are stopped; the next run resumes).
"""

STATUS = """\
doit status [--json] [PLAN | PLAN:TASK | PATTERN ...]

Every task: state (DONE only while a run would skip it), attempt, elapsed time, cost and
tokens the agent reported, its transcript, the last line; then what to do next. Works while
a run is going. --json prints the same as one JSON object.
"""

LOG = """\
doit log [-f] [--attempt N] [--raw] [--review] PLAN:TASK

Prints the latest attempt's transcript (.orch/<planId>/logs/<taskId>.<n>.log); JSON-stream
agents' events are shown as text: what the agent said, one line per tool call, the result.
-f (--follow) follows it while the attempt runs; --attempt N shows attempt N; --raw prints
it as written; --review shows the attempt's reviewer's transcript (`review:` in a plan).
"""

ANSWER = """\
doit answer PLAN:TASK "answer text"

Stores the text exactly as given (quote it; `--` before a text that starts with `-`) as
the answer to the task's question; works while a run is going. Answering again before the
task resumes replaces the answer. The next `doit` re-dispatches the task with the question
and the answer in its prompt.
"""

APPROVE = """\
doit approve PLAN:TASK

For a task with `approve: true` that waits in APPROVAL (its checks passed): writes its stamp,
merging its worktree first under `isolation: worktree`, so the task is done and the next
`doit` runs its dependents. A merge that conflicts is refused (nothing changes; reject the
task with what to change). Refused for a task not waiting for approval, and while a run is
going.
"""

REJECT = """\
doit reject PLAN:TASK "what to change"

For a task waiting in APPROVAL: drops its checked work's stamp and makes the next `doit`
run it again with your words as feedback in its prompt, using no retry (under `isolation:
worktree` the new attempt continues in the task's worktree). Refused for a task not waiting
for approval, and while a run is going.
"""

INFO = """\
doit info PLAN:TASK | PLAN

For a task: whether the next `doit` runs it and why (`would run: output 'app.py' is
missing`) or that it is up to date; a question or an approval it waits for; its title,
project, dependencies, agent or shell command, state, stamp, log, outputs and inputs; and
the variables of your environment it does not get (`withheld: ...`, names only). For a
plan: its status table and where its plan file and state files are. For a task, exit 0
when it is up to date, 1 when it would run. Works while a run is going.
"""

LIST = """\
doit list [--all] [PLAN ...]

The plans, each with its summary; --all lists every plan task too (PLAN:TASK and its title).
doit's own options still work: -s marks each (R)un or (U)p to date, -q prints names only.
Works while a run is going.
"""

FORGET = """\
doit forget PLAN:TASK ... | PLAN | --all

Sets the tasks' stamps aside (<taskId>.json.forgotten) and drops an unanswered question,
so the next `doit` runs them again — and, Make-style, their dependents (every task that
depends on them).
Refused while a run is going (the lock holder's pid is named).
"""

CLEAN = """\
doit clean PLAN:TASK ... | PLAN

Removes the tasks' stamps: the next `doit` runs them, then their dependents. Transcripts
and prompts stay in .orch/<planId>/. Refused while a run is going.
"""

ACCEPT = """\
doit accept PLAN:TASK ... | PLAN

Takes a task's current spec as done without re-running it: its stamp gets the current spec
hash. Use it after an edit that asks for no new work (a typo in a title or description).
Do not use it when the edit changes the work: let `doit` redo the task. Refused for a
task without a stamp, with a declared output missing, and while a run is going.
"""

DRAFT = """\
doit draft "goal" [--from PRD.md] [--agent NAME] [--plan-id ID] [--rounds N] [--force]
doit draft --answer "answer text"

An agent drafts a plan from the goal (or from the file --from names). orchlib checks it
exactly as `doit` will and sends every problem back for another round (--rounds, default
3), so only a valid plan is written, to plans/<planId>.yaml (--plan-id sets the id), never
over an existing file without --force; then it prints the projects, each phase's tasks and
the critical path. The agent's question is asked on the terminal; elsewhere `doit draft`
exits 1 and `doit draft --answer "..."` continues. docs/draft.md.

--agent NAME: {agents}, a command line or an agent mapping
(default: the first of these CLIs found on PATH)
"""

SERVE = """\
doit serve [--host 127.0.0.1] [--port 8765] [--allow-host NAME]...

Serves a live page of every plan: its DAG by phase coloured by task state, a table of the
tasks (state, progress, attempt, elapsed, cost, last line), a task's log while it runs, a
form to answer a question, and Approve / Reject for a task waiting for approval (the code of
`doit answer`, `approve` and `reject`). Prints the URL with a token: every request needs it
(the page keeps it in a cookie). It reads .orch/ and runs no task; it listens on 127.0.0.1
only unless --host says otherwise (then it warns), and answers only to loopback names, the
bound address and each --allow-host NAME. --port 0 takes any free port. Needs
`pip install 'orchlib[web]'`. The JSON API: docs/state.md.
"""

MCP = """\
doit mcp

A Model Context Protocol server on stdin/stdout for an AI assistant (Claude Code, opencode,
Codex, ...), rooted at this folder: `claude mcp add orchlib -- doit mcp`. Its tools:
list_plans, validate_plan, write_plan, run (a detached `doit`, output in .orch/mcp-run.log),
status, task_log, answer, stop_run (as Ctrl-C). Needs `pip install 'orchlib[mcp]'`.
docs/assistants.md shows how to connect each assistant.
"""

SKILL = """\
doit skill [--dest DIR] [--force]

Writes SKILL.md (Agent Skills format) into .claude/skills/orchlib/ of the checkout, or into
DIR: how an assistant turns a request into a plan, validates, writes, runs and watches it,
answers questions and recovers from failures, with the MCP tools or the commands. A
different SKILL.md already there is replaced only with --force.
"""


# One entry per command, in `doit help`'s order: name, class, needs a checkout, help text,
# its lines in the list of `doit help`.
COMMANDS: Mapping[str, Entry] = {
    e.name: e
    for e in (
        Entry("run", "orchlib.doitedge.runcmd:Run", True, RUN,
              (("doit [TASK ...]", "run the plans (or PLAN, PLAN:TASK); see `doit help run`"),
               ("doit --dry-run", "what a run would dispatch and why; runs nothing"))),
        Entry("status", "orchlib.doitedge.statecmds:Status", True, STATUS,
              (("doit status [PLAN ...]", "every task's state, cost, log, and what to do next"),)),
        Entry("log", "orchlib.doitedge.logcmd:Log", True, LOG,
              (("doit log PLAN:TASK [-f]", "a task's transcript (-f follows it)"),)),
        Entry("answer", "orchlib.doitedge.statecmds:Answer", True, ANSWER,
              (('doit answer PLAN:TASK "…"', "answer a waiting task's question"),), verbatim=True),
        Entry("approve", "orchlib.doitedge.statecmds:Approve", True, APPROVE,
              (("doit approve PLAN:TASK", "approve a task waiting for approval (approve: true)"),)),
        Entry("reject", "orchlib.doitedge.statecmds:Reject", True, REJECT,
              (('doit reject PLAN:TASK "…"',
                "reject it: the next `doit` runs it again with what to change"),), verbatim=True),
        Entry("info", "orchlib.doitedge.commands:Info", True, INFO,
              (("doit info PLAN[:TASK]", "why a task would run; a plan's state"),)),
        Entry("list", "orchlib.doitedge.commands:List", True, LIST,
              (("doit list [--all]", "the plans and their tasks"),)),
        Entry("forget", "orchlib.doitedge.commands:Forget", True, FORGET,
              (("doit forget PLAN:TASK", "make a task run again (its dependents follow)"),)),
        Entry("clean", "orchlib.doitedge.commands:Clean", True, CLEAN,
              (("doit clean PLAN:TASK", "remove a task's stamp (it runs again)"),)),
        Entry("accept", "orchlib.doitedge.accept:Accept", True, ACCEPT,
              (("doit accept PLAN:TASK", "take an edited task as done without re-running it"),)),
        Entry("draft", "orchlib.doitedge.draftcmd:Draft", True, DRAFT,
              (('doit draft "goal"', "an agent writes a plan from a goal (docs/draft.md)"),)),
        Entry("serve", "orchlib.doitedge.servecmd:Serve", True, SERVE,
              (("doit serve", "a live dashboard in the browser (needs orchlib[web])"),)),
        Entry("mcp", "orchlib.doitedge.assistantcmd:Mcp", False, MCP,
              (("doit mcp", "serve this checkout to an AI assistant over MCP (orchlib[mcp])"),)),
        Entry("skill", "orchlib.doitedge.assistantcmd:Skill", False, SKILL,
              (("doit skill [--dest DIR]", "write SKILL.md: how an assistant drives orchlib"),)),
        Entry("help", "orchlib.doitedge.helpcmd:Help", False, "", ()),
    )
}  # fmt: skip


def verbatim() -> tuple[str, ...]:
    """The commands whose text arguments are kept as typed (`doit answer t "a=b"`)."""
    return tuple(e.name for e in COMMANDS.values() if e.verbatim)


def no_checkout_needed() -> set[str]:
    """The first arguments of a command line that needs no checkout (doit's own included)."""
    return {e.name for e in COMMANDS.values() if not e.checkout} | DOIT_NO_CHECKOUT


DOIT_NO_CHECKOUT = {"--help", "--version", "tabcompletion"}  # doit's own, never a checkout's
