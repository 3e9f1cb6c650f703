"""`doit help [COMMAND]`: orchlib's own words for its commands (stamps, dependents, agents),
not doit's dependency-DB wording, from the command table (`commandtable`). Task names and
`help task` still get doit's help."""

from __future__ import annotations

import sys
from typing import Any

from orchlib import agents, executorregistry
from orchlib.doitedge.cmdutil import fail, quiet_when_reader_gone
from orchlib.doitedge.commandtable import COMMANDS
from orchlib.doitedge.doitapi import DoitHelp

OVERVIEW = """\
orchlib — run plans of work with coding agents, Makefile-style, on doit

A plan (plans/*.yaml) lists projects and tasks. `doit` dispatches each task whose stamp
(.orch/<planId>/stamps/<taskId>.json) is missing or stale to its agent, in parallel where
dependencies allow and one task at a time per project; a task is done when its agent
prints [DONE] and its checks pass. Run it again and finished work is skipped.

Commands
{commands}

`doit help COMMAND` explains one command. The plan format: docs/plans.md.
"""


def overview() -> str:
    """The overview: the commands of the command table, the agent profiles of theirs."""
    lines = [f"  {usage:<27}{what}" for e in COMMANDS.values() for usage, what in e.overview]
    names = ", ".join(agents.BUILTIN)
    text = OVERVIEW.format(commands="\n".join(lines))
    return f"{text}\nAgent profiles (a plan's `agent:`; docs/agents.md)\n  {names}\n"


def topic(name: str) -> str:
    """One command's help ("": doit's); the executor options and the agent profiles are
    the registries'."""
    text = COMMANDS[name].topic.replace("{agents}", ", ".join(agents.PROFILES))
    return text.replace("{executors}", executorregistry.help_lines())


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
        elif topic(args[0]) if args[0] in COMMANDS else "":
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
