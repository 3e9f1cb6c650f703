"""`doit mcp` and `doit skill`: the doit commands (registered through `doit.COMMAND`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from orchlib.doitedge.cmdutil import OneLineErrors, fail, report
from orchlib.doitedge.doitapi import Command
from orchlib.errors import OrchError

MISSING_EXTRA = "doit mcp needs the mcp extra: pip install 'orchlib[mcp]' ({} is not installed)"


class Mcp(OneLineErrors, Command):  # type: ignore[misc]
    """doit mcp: a Model Context Protocol server over stdio for AI assistants."""

    name = "mcp"
    doc_purpose = "serve this checkout to an AI assistant over MCP (stdio; needs orchlib[mcp])"
    doc_usage = ""
    doc_description = None
    cmd_options = ()

    def execute(self, params: Any, args: list[str]) -> int:
        """Serve the tools on stdin/stdout until the assistant closes them."""
        if args:
            return fail(f"mcp: takes no arguments (got {args[0]!r}); see `doit help mcp`")
        try:
            from orchlib.assistant.server import serve
        except ImportError as exc:  # the SDK (or a part of it this version lacks) is missing
            return fail(MISSING_EXTRA.format(exc.name or "mcp"))
        try:
            serve(Path.cwd())
        except KeyboardInterrupt:
            return 130
        return 0


class Skill(OneLineErrors, Command):  # type: ignore[misc]
    """doit skill: write SKILL.md, teaching an assistant to drive orchlib."""

    name = "skill"
    doc_purpose = "write SKILL.md for AI assistants into .claude/skills/orchlib/ (or --dest)"
    doc_usage = "[--dest DIR] [--force]"
    doc_description = None
    cmd_options = (
        {"name": "dest", "long": "dest", "type": str, "default": "",
         "help": "the folder to write SKILL.md into [default: .claude/skills/orchlib]"},
        {"name": "force", "long": "force", "type": bool, "default": False,
         "help": "replace a SKILL.md that differs from orchlib's"},
    )  # fmt: skip

    def execute(self, params: Any, args: list[str]) -> int:
        """Write the skill and say where."""
        from orchlib.assistant.skill import write_skill

        if args:
            return fail(f"skill: takes no task names (got {args[0]!r}); see `doit help skill`")
        dest = Path(params["dest"]) if params["dest"] else None
        try:
            message = write_skill(Path.cwd(), dest, bool(params["force"]))
        except OrchError as exc:
            return report(exc)
        except OSError as exc:
            return fail(f"skill: {exc.filename or 'SKILL.md'}: {exc.strerror or exc}")
        sys.stdout.write(f"{message}\n")
        return 0
