"""`doit serve`: the doit command that starts the dashboard (DESIGN §12)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from orchlib.doitedge import loader
from orchlib.doitedge.cmdutil import OneLineErrors, fail
from orchlib.doitedge.doitapi import Command
from orchlib.errors import OrchError

MISSING_EXTRA = (
    "orchlib: doit serve needs the web extra: pip install 'orchlib[web]' ({} is not installed)\n"
)


class Serve(OneLineErrors, Command):  # type: ignore[misc]
    """doit serve: a live dashboard of every plan, its tasks, logs and questions."""

    name = "serve"
    doc_purpose = "serve a live web dashboard of the plans (reads the state; runs nothing)"
    doc_usage = "[--host HOST] [--port PORT] [--allow-host NAME]..."
    doc_description = None
    cmd_options = (
        {"name": "host", "long": "host", "type": str, "default": "127.0.0.1",
         "help": "address to listen on; anything but loopback is reachable by others "
                 "[default: %(default)s]"},
        {"name": "port", "long": "port", "type": int, "default": 8765,
         "help": "port to listen on, 0 for any free one [default: %(default)s]"},
        {"name": "allow_host", "long": "allow-host", "type": list, "default": [],
         "help": "a host name the page may be reached by besides loopback and --host "
                 "(repeatable; any other Host header is refused)"},
    )  # fmt: skip

    def execute(self, params: Any, args: list[str]) -> int:
        """Check the checkout and the extra, then serve until interrupted."""
        if args:
            return fail(f"doit serve takes no task names (got {args[0]!r})")
        port = params["port"]
        if not 0 <= port <= 65535:
            return fail(f"serve: --port {port}: not a port (0-65535)")
        try:
            from orchlib.web.server import ServeOptions, serve
        except ImportError as exc:  # starlette or uvicorn not installed
            sys.stderr.write(MISSING_EXTRA.format((exc.name or "starlette").split(".")[0]))
            return 3
        try:
            checkout = loader.checkout_for(Path.cwd())
        except Exception as exc:  # InvalidDodoFile: the plan errors, already one per line
            sys.stderr.write(f"{exc}\n")
            return 3
        try:
            options = ServeOptions(params["host"], port, tuple(params["allow_host"]))
            return serve(checkout, options, sys.stdout, sys.stderr)
        except OrchError as exc:
            for line in exc.lines():
                sys.stderr.write(f"{line}\n")
            return exc.exit_code
