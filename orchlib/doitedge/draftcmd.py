"""`doit draft "goal"`: the doit command (registered through the `doit.COMMAND` entry point).

Only option parsing and the terminal live here: the question asked on a TTY, progress and
the review printed. The work is `rounds.draft`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from orchlib import agents
from orchlib.doitedge.cmdutil import OneLineErrors, fail, not_a_checkout, options_first
from orchlib.doitedge.doitapi import Command, cmdline_vars
from orchlib.errors import OrchError

_OPTIONS = (
    {"name": "source", "long": "from", "type": str, "default": "",
     "help": "read the goal from this file (a PRD, a README, notes)"},
    {"name": "agent", "long": "agent", "type": str, "default": "",
     "help": f"the drafting agent: {', '.join(agents.PROFILES)}, a command line or an "
             "agent mapping (default: the first of these CLIs found on PATH)"},
    {"name": "plan_id", "long": "plan-id", "type": str, "default": "",
     "help": "the plan's id (and file name plans/<id>.yaml)"},
    {"name": "rounds", "long": "rounds", "type": int, "default": None,
     "help": "validation rounds before giving up (default 3)"},
    {"name": "force", "long": "force", "type": bool, "default": False,
     "help": "replace plans/<id>.yaml when it exists"},
    {"name": "answer", "long": "answer", "type": str, "default": None,
     "help": "answer the question of the draft waiting for one, and continue it"},
)  # fmt: skip


class Draft(OneLineErrors, Command):  # type: ignore[misc]
    """doit draft "goal": an agent writes a plan; only a valid one is written into plans/."""

    name = "draft"
    doc_purpose = "draft a plan from a goal with a coding agent (validated before it is written)"
    doc_usage = '"goal text" [--from PRD.md] [--agent NAME] [--plan-id ID] [--rounds N] [--force]'
    doc_description = None
    cmd_options = _OPTIONS

    def parse_execute(self, in_args: list[str]) -> Any:
        """Options may follow the goal (`doit draft "goal" --rounds 5`), as users type them."""
        return super().parse_execute(options_first(in_args, _OPTIONS))

    def execute(self, params: Any, args: list[str]) -> int:
        """Parse the options, run the draft, print the review or the errors."""
        from orchlib.draft.request import DraftRequest
        from orchlib.draft.rounds import draft

        if not (Path.cwd() / "plans").is_dir():  # before any agent starts or .orch/ appears
            return fail(not_a_checkout(Path.cwd()))
        rounds = params.get("rounds")
        if rounds is not None and rounds < 1:
            sys.stderr.write("orchlib: --rounds must be at least 1\n")
            return 3
        goal = " ".join([*args, *_doit_vars()])
        answer = params.get("answer")
        request = DraftRequest(goal, params.get("source") or "", params.get("agent") or "",
                               params.get("plan_id") or "", rounds,
                               bool(params.get("force")), answer)  # fmt: skip
        try:
            result = draft(Path.cwd().resolve(), request, _ask, _say)
        except OrchError as exc:
            result_lines, code = exc.lines(), exc.exit_code
            sys.stderr.write("".join(f"{line}\n" for line in result_lines))
            return code
        except OSError as exc:  # e.g. a read-only checkout: one line, no traceback
            sys.stderr.write(f"orchlib: {exc.filename or 'draft'}: {exc.strerror or exc}\n")
            return 3
        except KeyboardInterrupt:
            sys.stderr.write("orchlib: draft interrupted\n")
            return 130
        sys.stdout.write(result.review)
        sys.stdout.flush()
        sys.stderr.write("".join(f"{line}\n" for line in result.errors))
        return result.code


def _doit_vars() -> list[str]:
    """Words doit took as `name=value` variables: a goal may contain `=`."""
    return [f"{name}={value}" for name, value in cmdline_vars().items()]


def _ask(question: str) -> str | None:
    """The user's answer on the terminal; None when there is no terminal (or it closed)."""
    if not sys.stdin.isatty():
        return None
    sys.stdout.write(f"\nThe drafting agent asks: {question}\n")
    while True:
        sys.stdout.write("Your answer: ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            return None
        if line.strip():
            return line.strip()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
