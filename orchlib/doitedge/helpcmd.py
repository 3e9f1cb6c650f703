"""`doit help [COMMAND]`: orchlib's own words for its commands (stamps, dependents, agents),
not doit's dependency-DB wording. Task names and `help task` still get doit's help."""

from __future__ import annotations

import sys
from typing import Any

from orchlib import agents, executorregistry
from orchlib.doitedge.cmdutil import fail, quiet_when_reader_gone
from orchlib.doitedge.doitapi import DoitHelp

OVERVIEW = """\
orchlib — run plans of work with coding agents, Makefile-style, on doit

A plan (plans/*.yaml) lists projects and tasks. `doit` dispatches each task whose stamp
(.orch/<planId>/stamps/<taskId>.json) is missing or stale to its agent, in parallel where
dependencies allow and one task at a time per project; a task is done when its agent
prints [DONE] and its checks pass. Run it again and finished work is skipped.

Commands
  doit [TASK ...]            run the plans (or PLAN, PLAN:TASK); see `doit help run`
  doit --dry-run             what a run would dispatch and why; runs nothing
  doit status [PLAN ...]     every task's state, cost, log, and what to do next
  doit log PLAN:TASK [-f]    a task's transcript (-f follows it)
  doit answer PLAN:TASK "…"  answer a waiting task's question
  doit approve PLAN:TASK     approve a task waiting for approval (approve: true)
  doit reject PLAN:TASK "…"  reject it: the next `doit` runs it again with what to change
  doit info PLAN[:TASK]      why a task would run; a plan's state
  doit list [--all]          the plans and their tasks
  doit forget PLAN:TASK      make a task run again (its dependents follow)
  doit clean PLAN:TASK       remove a task's stamp (it runs again)
  doit accept PLAN:TASK      take an edited task as done without re-running it
  doit draft "goal"          an agent writes a plan from a goal (docs/draft.md)
  doit serve                 a live dashboard in the browser (needs orchlib[web])
  doit mcp                   serve this checkout to an AI assistant over MCP (orchlib[mcp])
  doit skill [--dest DIR]    write SKILL.md: how an assistant drives orchlib

`doit help COMMAND` explains one command. The plan format: docs/plans.md.
"""


def overview() -> str:
    """The overview, with the agent profiles the registry holds."""
    names = ", ".join(agents.BUILTIN)
    return f"{OVERVIEW}\nAgent profiles (a plan's `agent:`; docs/agents.md)\n  {names}\n"


TOPICS: dict[str, str] = {
    "run": """\
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
""",
    "forget": """\
doit forget PLAN:TASK ... | PLAN | --all

Sets the tasks' stamps aside (<taskId>.json.forgotten) and drops an unanswered question,
so the next `doit` runs them again — and, Make-style, their dependents (every task that
depends on them).
Refused while a run is going (the lock holder's pid is named).
""",
    "clean": """\
doit clean PLAN:TASK ... | PLAN

Removes the tasks' stamps: the next `doit` runs them, then their dependents. Transcripts
and prompts stay in .orch/<planId>/. Refused while a run is going.
""",
    "accept": """\
doit accept PLAN:TASK ... | PLAN

Takes a task's current spec as done without re-running it: its stamp gets the current spec
hash. Use it after an edit that asks for no new work (a typo in a title or description).
Do not use it when the edit changes the work: let `doit` redo the task. Refused for a
task without a stamp, with a declared output missing, and while a run is going.
""",
    "answer": """\
doit answer PLAN:TASK "answer text"

Stores the text exactly as given (quote it; `--` before a text that starts with `-`) as
the answer to the task's question; works while a run is going. Answering again before the
task resumes replaces the answer. The next `doit` re-dispatches the task with the question
and the answer in its prompt.
""",
    "approve": """\
doit approve PLAN:TASK

For a task with `approve: true` that waits in APPROVAL (its checks passed): writes its stamp,
merging its worktree first under `isolation: worktree`, so the task is done and the next
`doit` runs its dependents. A merge that conflicts is refused (nothing changes; reject the
task with what to change). Refused for a task not waiting for approval, and while a run is
going.
""",
    "reject": """\
doit reject PLAN:TASK "what to change"

For a task waiting in APPROVAL: drops its checked work's stamp and makes the next `doit`
run it again with your words as feedback in its prompt, using no retry (under `isolation:
worktree` the new attempt continues in the task's worktree). Refused for a task not waiting
for approval, and while a run is going.
""",
    "status": """\
doit status [--json] [PLAN | PLAN:TASK | PATTERN ...]

Every task: state (DONE only while a run would skip it), attempt, elapsed time, cost and
tokens the agent reported, its transcript, the last line; then what to do next. Works while
a run is going. --json prints the same as one JSON object.
""",
    "serve": """\
doit serve [--host 127.0.0.1] [--port 8765] [--allow-host NAME]...

Serves a live page of every plan: its DAG by phase coloured by task state, a table of the
tasks (state, progress, attempt, elapsed, cost, last line), a task's log while it runs, a
form to answer a question, and Approve / Reject for a task waiting for approval (the code of
`doit answer`, `approve` and `reject`). Prints the URL with a token: every request needs it
(the page keeps it in a cookie). It reads .orch/ and runs no task; it listens on 127.0.0.1
only unless --host says otherwise (then it warns), and answers only to loopback names, the
bound address and each --allow-host NAME. --port 0 takes any free port. Needs
`pip install 'orchlib[web]'`. The JSON API: docs/state.md.
""",
    "info": """\
doit info PLAN:TASK | PLAN

For a task: whether the next `doit` runs it and why (`would run: output 'app.py' is
missing`) or that it is up to date; a question or an approval it waits for; its title,
project, dependencies, agent or shell command, state, stamp, log, outputs and inputs; and
the variables of your environment it does not get (`withheld: ...`, names only). For a
plan: its status table and where its plan file and state files are. For a task, exit 0
when it is up to date, 1 when it would run. Works while a run is going.
""",
    "list": """\
doit list [--all] [PLAN ...]

The plans, each with its summary; --all lists every plan task too (PLAN:TASK and its title).
doit's own options still work: -s marks each (R)un or (U)p to date, -q prints names only.
Works while a run is going.
""",
    "log": """\
doit log [-f] [--attempt N] [--raw] PLAN:TASK

Prints the latest attempt's transcript (.orch/<planId>/logs/<taskId>.<n>.log); JSON-stream
agents' events are shown as text: what the agent said, one line per tool call, the result.
-f follows it while the attempt runs; --raw prints it as written.
""",
    "mcp": """\
doit mcp

A Model Context Protocol server on stdin/stdout for an AI assistant (Claude Code, opencode,
Codex, ...), rooted at this folder: `claude mcp add orchlib -- doit mcp`. Its tools:
list_plans, validate_plan, write_plan, run (a detached `doit`, output in .orch/mcp-run.log),
status, task_log, answer, stop_run (as Ctrl-C). Needs `pip install 'orchlib[mcp]'`.
docs/assistants.md shows how to connect each assistant.
""",
    "skill": """\
doit skill [--dest DIR] [--force]

Writes SKILL.md (Agent Skills format) into .claude/skills/orchlib/ of the checkout, or into
DIR: how an assistant turns a request into a plan, validates, writes, runs and watches it,
answers questions and recovers from failures, with the MCP tools or the commands. A
different SKILL.md already there is replaced only with --force.
""",
}


def topic(name: str) -> str:
    """One command's help; `run`'s executor options are those the registry declares."""
    text = TOPICS[name]
    return text.format(executors=executorregistry.help_lines()) if name == "run" else text


class Help(DoitHelp):  # type: ignore[misc]
    """doit help, in orchlib's words for orchlib's commands."""

    doc_purpose = "show help: `doit help COMMAND` explains one command"

    @quiet_when_reader_gone
    def execute(self, params: Any, args: list[str]) -> int:
        """The overview, one command's help, or doit's help on a task."""
        if not args:
            sys.stdout.write(overview())
        elif len(args) > 1:
            return fail("help: name one command: doit help COMMAND")
        elif args[0] in TOPICS:
            sys.stdout.write(topic(args[0]))
        elif args[0] == "task" or args[0] in self.cmds:
            return int(super().execute(params, args) or 0)
        elif not self._task_help(params, args):
            return fail(f"help: no command or task {args[0]!r} (`doit help` lists the commands)")
        sys.stdout.flush()  # a closed pipe shows here, inside the command
        return 0

    def _task_help(self, params: Any, args: list[str]) -> bool:
        try:
            return bool(super(DoitHelp, self).execute(params, args))
        except Exception:  # the checkout's plans do not load: no task to describe
            return False
