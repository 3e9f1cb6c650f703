"""What orchlib's doit commands share: one error-line form, a quiet end when the reader of
the output is gone, and option errors as one line instead of doit's two."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from orchlib.checkout import Checkout
from orchlib.doitedge import loader
from orchlib.doitedge.doitapi import CmdParseError
from orchlib.errors import OrchError, error_line
from orchlib.textsafe import printable


def report(exc: OrchError) -> int:
    """Print an OrchError's lines on stderr, each `orchlib: ...` or located; returns its code."""
    for line in exc.lines():
        sys.stderr.write(f"{error_line(line)}\n")
    return exc.exit_code


def fail(message: str, code: int = 3) -> int:
    """One `orchlib: ...` line on stderr; returns the exit code."""
    sys.stderr.write(f"orchlib: {message}\n")
    return code


class StampLines:
    """doit clean's `PLAN:TASK - executing 'Python: function clean_stamp'` line for a plan
    task, in orchlib's words, true whether or not it had a stamp."""

    def __init__(self, out: Any, dryrun: bool) -> None:
        self._out = out
        self._said = ": would be cleaned" if dryrun else ": cleaned, the next `doit` runs it"
        self._doit = f" - executing 'Python: function {loader.clean_stamp.__name__}'"

    def write(self, text: str) -> Any:
        """doit's line said again; any other text as it is."""
        return self._out.write(text.replace(self._doit, self._said))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def not_a_checkout(folder: Path) -> str:
    """What every command says in a folder without plans/ (one wording on every screen)."""
    return (
        f"{folder} is not a checkout (no plans/ folder): run it where your plans/ folder is, "
        "or create one (see the README)"
    )


# what `doit status` and `doit list` print in a checkout whose plans/ is empty
NO_PLAN_YET = (
    'plans/ holds no plan: write one (see docs/plans.md) or draft one with `doit draft "your '
    'goal"`\n'
)


def checkout_here() -> Checkout | int:
    """The checkout in the current folder, or the exit code after its one-line errors."""
    if not (Path.cwd() / "plans").is_dir():
        return fail(not_a_checkout(Path.cwd()))
    try:
        return loader.checkout_for(Path.cwd())
    except loader.PlanLoadError as exc:
        return plan_errors(exc)


def plan_errors(exc: loader.PlanLoadError) -> int:
    """Every problem of the plans, one line each; exit 3."""
    for line in exc.lines:
        sys.stderr.write(f"{error_line(line)}\n")
    return 3


def reader_gone() -> int:
    """`doit status | head`: the reader closed the pipe. End quietly, exit 1 (as Python's docs
    advise; stdout is pointed at /dev/null so the flush at exit cannot fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


def quiet_when_reader_gone(execute: Callable[..., Any]) -> Callable[..., Any]:
    """A command's `_execute` that ends quietly when the reader of its output is gone.

    doit reports any exception of a command with a traceback; `functools.wraps` keeps the
    signature doit reads its options from.
    """

    @functools.wraps(execute)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(getattr(self, "outstream", None), (Printable, type(None))):
            self.outstream = Printable(self.outstream)
        try:
            return execute(self, *args, **kwargs)
        except BrokenPipeError:
            return reader_gone()

    return run


class Printable:
    """A command's output stream that escapes control characters: doit prints task titles,
    targets and summaries (plan text) as they are, and they must not drive the terminal."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write `text` with its control characters (but newline and tab) escaped."""
        return int(self._stream.write(printable(text)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def db_errors_in_one_line(execute: Callable[..., Any]) -> Callable[..., Any]:
    """A command's `_execute` whose failure to write doit's DB (a full disk) is one line."""

    @functools.wraps(execute)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        import sqlite3  # doit imports it too, when it opens the DB

        try:
            return execute(self, *args, **kwargs)
        except sqlite3.Error as exc:
            return fail(
                f"doit's DB .orch/doit.sqlite3: {exc}; free space (or fix the file) and "
                "re-run — the stamps are unchanged"
            )

    return run


class OneLineErrors:
    """Mixin for doit commands: a bad option (`-n abc`) is one `orchlib:` line, a bad plan
    one located line per problem; exit 3."""

    name: str

    def execute(self, params: Any, args: list[str]) -> Any:
        """The command, with the plans' problems printed as orchlib prints them."""
        try:
            return super().execute(params, args)  # type: ignore[misc]
        except loader.PlanLoadError as exc:
            return plan_errors(exc)

    def parse_execute(self, in_args: list[str]) -> Any:
        """doit's parse_execute, with parse errors reported as one line; `--help` or `-h`
        first is the command's help (not an option error, a goal or a plan's name)."""
        if [a for a in in_args if a != "--"][:1] in (["--help"], ["-h"]):
            from orchlib.doitedge.commandtable import COMMANDS
            from orchlib.doitedge.helpcmd import topic  # helpcmd imports this module

            if self.name in COMMANDS and (text := topic(self.name)):
                sys.stdout.write(text)
                return 0
        try:
            return super().parse_execute(in_args)  # type: ignore[misc]
        except CmdParseError as exc:
            said = parse_error_text(exc, self.get_options())  # type: ignore[attr-defined]
            return fail(f"{self.name}: {said} (see `doit help {self.name}`)")


def options_first(args: list[str], cmd_options: tuple[dict[str, Any], ...]) -> list[str]:
    """`args` with the command's options (and their values) moved before the other words,
    which follow a `--`: doit parses with getopt, which stops at the first word that is not
    an option, and users type `doit log shop:t1 -f`."""
    takes_value: dict[str, bool] = {}
    for opt in cmd_options:
        for flag in (f"--{opt.get('long')}", f"-{opt.get('short')}"):
            if flag not in ("--None", "-None", "--", "-"):
                takes_value[flag] = opt["type"] is not bool
    options: list[str] = []
    words: list[str] = []
    rest = iter(args)
    for arg in rest:
        name = arg.split("=", 1)[0]
        if arg == "--":
            words.extend(rest)
        elif name in takes_value:
            options.append(arg)
            if takes_value[name] and "=" not in arg:
                options.append(next(rest, ""))
        else:
            words.append(arg)
    return [*options, "--", *words] if words else options


def parse_error_text(exc: CmdParseError, options: Iterable[Any] = ()) -> str:
    """doit's parse error without its dump of every option and of the arguments; a value
    of the wrong type named by its option's flags, not by doit's parameter and a Python
    exception."""
    text = " ".join(str(exc).split())
    if typed := _TYPE_ERROR.match(text):
        name, kind, value = typed.groups()
        flags = next((_flags(o) for o in options if o.name == name), name)
        return f"{flags} {value!r}: expected {_KINDS.get(kind, f'a {kind}')}"
    found = _GETOPT_ERROR.match(text)
    return found.group(1) if found else text


def _flags(option: Any) -> str:
    """`-n/--process`: how a doit CmdOption is typed."""
    return "/".join(f for f in (option.short and f"-{option.short}",
                                option.long and f"--{option.long}") if f)  # fmt: skip


# doit wraps getopt's message: "Error parsing <Type>: <msg> (parsing options: [...]). Got: [...]"
_GETOPT_ERROR = re.compile(r"Error parsing \w+: (.*?) \(parsing options: .*$")
# and a value's conversion: "Error parsing parameter 'num_process' <class 'int'>. invalid
# literal for int() with base 10: 'abc'"
_TYPE_ERROR = re.compile(r"Error parsing parameter '(\w+)' <class '(\w+)'>\. .*: '(.*)'$")
_KINDS = {"int": "a whole number", "float": "a number"}
