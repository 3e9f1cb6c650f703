"""`python -m orchlib` / `orchlib`: doit's command line over the checkout in the current folder."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from doit.doit_cmd import DoitMain

from orchlib.doitedge import commandtable, plugins
from orchlib.doitedge.loader import PlanLoader


def _commands() -> tuple[Any, ...]:
    """doit's commands, those orchlib extends replaced, then orchlib's others: the table's."""
    ours = {name: entry.load() for name, entry in commandtable.COMMANDS.items()}
    doits = [ours.get(cmd.get_name(), cmd) for cmd in DoitMain.DOIT_CMDS]
    return (*doits, *(cmd for cmd in ours.values() if cmd not in doits))


_EMPTY = "\0"  # stands for an empty argument while doit sorts out `x=y` variables


class OrchMain(DoitMain):  # type: ignore[misc]
    """doit's main with orchlib's commands built in (no dodo.py, no entry points needed)."""

    BIN_NAME = "python -m orchlib"
    DOIT_CMDS = _commands()

    def process_args(self, cmd_args: list[str]) -> Any:
        """doit's `x=y` variables, except in an answer's (or rejection's) text; an empty
        argument stays one."""
        said = next((c for c in commandtable.verbatim() if c in cmd_args), "")
        cut = cmd_args.index(said) + 1 if said else len(cmd_args)
        head = [arg or _EMPTY for arg in cmd_args[:cut]]
        kept = [arg.replace(_EMPTY, "") for arg in super().process_args(head)]
        return [*kept, *cmd_args[cut:]]


_NO_CHECKOUT_NEEDED = commandtable.no_checkout_needed()


def main(argv: Sequence[str] | None = None) -> int:
    """Run doit's CLI with the plans of the current folder; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not (Path.cwd() / "plans").is_dir() and not _NO_CHECKOUT_NEEDED & set(args[:1]):
        # Said before doit opens its DB: a folder that is not a checkout gets no .orch/.
        from orchlib.doitedge.cmdutil import fail, not_a_checkout

        return fail(not_a_checkout(Path.cwd()))
    plugins.install()  # orchlib's own CLI: doit's plugin lookups from one scan
    if args == ["--version"]:  # doit's answer alone named doit's version as if orchlib's
        from doit import __version__ as doit_version

        from orchlib import __version__

        sys.stdout.write(f"orchlib {__version__} (doit {'.'.join(map(str, doit_version))})\n")
        return 0
    code = OrchMain(PlanLoader(), config_filenames=()).run(args)
    return 0 if code is None else int(code)  # doit's forget, clean, ignore return None
