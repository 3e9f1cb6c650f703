"""Which arguments of a command line a shell or an interpreter runs as code (DESIGN §13).

orchlib puts placeholders into argv one argument at a time, never through a shell; but a
plan's own command can start one: `[sh, -c, "tool {prompt}"]` would run `$(...)` from a
task title. A placeholder that carries plan text (a prompt, a project name, a notification
title) is therefore refused inside such a code argument; as an argument of its own
(`[sh, -c, 'tool "$1"', sh, "{prompt}"]`), on stdin or in a file it is data.

The programs are found anywhere in argv, so wrappers (`env A=1 sh -c`, `timeout 9 bash
-c`, `docker exec box sh -c`, `sudo -u me python -c`) are seen through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath, PureWindowsPath

from orchlib.plan.checks import Issues, KeyPath

# Placeholders whose value comes from the plan or its tasks (paths and ids orchlib makes,
# `{prompt_file}`, `{terminal_id}`, `{task_id}`, `{plan_id}`, are identifiers or its own).
AGENT_TEXT = ("prompt", "project", "project_path")
NOTIFY_TEXT = ("title", "message")


@dataclass(frozen=True)
class Runner:
    """How a program takes code: after which options, or in which operand."""

    letters: str = ""  # short options whose value is code: `-c CODE`, `-cCODE`, `-Bc CODE`
    long: tuple[str, ...] = ()  # long options whose value is code: `--eval CODE`, `--eval=CODE`
    shell: bool = False  # `-c` (alone or in a cluster) makes the first operand the code
    operand: bool = False  # the first operand is the code (awk), unless `-f FILE` is given
    rest: bool = False  # every argument after the options is code (ssh, watch, cmd /c)
    valued: str = ""  # short options that take the next argument as their value: `-o pipefail`


_SHELL = Runner(shell=True, long=("--command",), valued="oO")
RUNNERS: dict[str, Runner] = {
    **{name: _SHELL for name in ("sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish",
                                 "csh", "tcsh", "yash", "posh", "rbash", "busybox-sh")},
    **{name: Runner(letters="c", valued="WX") for name in ("python", "pypy")},
    **{name: Runner(letters="c") for name in ("su", "script")},
    **{name: Runner(letters="ep", long=("--eval", "--print"), valued="r")
       for name in ("node", "nodejs", "bun")},
    "deno": Runner(long=("eval",)),
    "perl": Runner(letters="eE"),
    "ruby": Runner(letters="e"),
    "php": Runner(letters="r"),
    **{name: Runner(letters="e") for name in ("lua", "luajit", "rscript", "r", "osascript")},
    **{name: Runner(letters="c", long=("-command", "-encodedcommand"))
       for name in ("pwsh", "powershell")},
    **{name: Runner(operand=True, valued="Fv") for name in ("awk", "gawk", "mawk", "nawk")},
    **{name: Runner(rest=True) for name in ("ssh", "watch", "cmd")},
}  # fmt: skip
_VERSION = re.compile(r"[0-9][0-9.]*(?:m|d)?$")  # python3.12, perl5.36, lua5.4


def program(arg: str) -> str:
    """The program an argument names: `/usr/bin/python3.12` -> `python`, `CMD.EXE` -> `cmd`."""
    name = PureWindowsPath(PurePath(arg).name).name.lower()
    name = name.removesuffix(".exe")
    return _VERSION.sub("", name).rstrip("-") if name[:1].isalpha() else name


def code_arguments(argv: Sequence[str]) -> list[tuple[int, str]]:
    """(index, how) of every argument a shell or interpreter in `argv` runs as code."""
    found: list[tuple[int, str]] = []
    for at, arg in enumerate(argv):
        name = program(arg)
        runner = RUNNERS.get(name)
        if runner is not None:
            found += [(i, f"{name} {flag}") for i, flag in _code(runner, argv, at + 1)]
    return found


def _code(runner: Runner, argv: Sequence[str], start: int) -> list[tuple[int, str]]:
    """The code arguments after a program at `start - 1`, with the option that made them so."""
    at, shell_code, script_file = start, "", False
    while at < len(argv):
        arg = argv[at]
        if arg == "--" or not arg.startswith(("-", "+")) or arg in ("-", "+"):
            break
        name, _, value = arg.partition("=")
        if name.lower() in runner.long or (arg.lower() in runner.long):
            return [(at, arg)] if value else [(at + 1, name)]
        if not arg.startswith("--"):
            for index, letter in enumerate(arg[1:], start=1):
                rest = arg[index + 1 :]
                if letter in runner.letters:  # `-pe CODE` is `-p -e CODE`; `-cCODE` holds it
                    attached = rest and not set(rest) <= set(runner.letters)
                    return [(at, arg)] if attached else [(at + 1, arg)]
                if runner.shell and letter == "c":
                    shell_code = arg
                script_file = script_file or (runner.operand and letter == "f")
                if letter in runner.valued:
                    at += 0 if rest else 1  # `-o pipefail`: skip the value; `-Fx`: in it
                    break
        at += 1
    if runner.long == ("eval",) and at < len(argv) and argv[at] == "eval":
        return [(at + 1, "eval")]
    at += 1 if at < len(argv) and argv[at] == "--" else 0
    if at >= len(argv):
        return []
    if runner.shell and shell_code:
        return [(at, shell_code)]
    if runner.operand and not script_file:
        return [(at, "program")]
    if runner.rest:
        return [(i, "argument") for i in range(at, len(argv))]
    return []


def check(
    issues: Issues,
    argv: Sequence[str],
    where: Callable[[int], KeyPath | None],
    names: Sequence[str],
    advice: str,
) -> None:
    """A located error for each placeholder of `names` inside a code argument of `argv`;
    `where(index)` locates an argument (None: reported elsewhere)."""
    for index, how in code_arguments(argv):
        if index >= len(argv) or (path := where(index)) is None:
            continue
        found = ", ".join(f"{{{name}}}" for name in names if f"{{{name}}}" in argv[index])
        if found:
            issues.add(path, f"{found} inside the code string of `{how}` would run plan "
                             f"text as code; {advice}")  # fmt: skip
