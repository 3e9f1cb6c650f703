"""`python -m orchlib` / `orchlib`: doit's command line over the checkout in the current folder."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from doit.doit_cmd import DoitMain

from orchlib import commands
from orchlib.draft.command import Draft
from orchlib.loader import PlanLoader
from orchlib.web.command import Serve

# doit's commands that orchlib extends for plan tasks.
_REPLACED = {
    "run": commands.Run,
    "forget": commands.Forget,
    "info": commands.Info,
    "list": commands.List,
}


class OrchMain(DoitMain):  # type: ignore[misc]
    """doit's main with orchlib's commands built in (no dodo.py, no entry points needed)."""

    BIN_NAME = "python -m orchlib"
    DOIT_CMDS = (
        *(_REPLACED.get(cmd.get_name(), cmd) for cmd in DoitMain.DOIT_CMDS),
        commands.Status,
        commands.Answer,
        Draft,
        Serve,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run doit's CLI with the plans of the current folder; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    code = OrchMain(PlanLoader(), config_filenames=()).run(args)
    return 0 if code is None else int(code)  # doit's forget, clean, ignore return None
