"""The executors by name (DESIGN §8): one entry per executor, the registry everything reads.

Modeled on pre-commit's `all_languages`: an entry declares its executor's name, where its
class lives (imported on first use by `orchlib.executors.create`, so `local` never pays for
Dask), the pip extra it needs, its own `doit run` options (with the variables that stand in
for them) and how preflight checks it. The plan schema's allowed `executor:` values, `doit
run`'s options, `doit help run`, preflight and the run that builds the executor all read
`EXECUTORS`; a new executor is its module(s) under `orchlib/executors/` and one entry here.
This module sits below every layer (the plan schema reads it): it imports no other layer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchlib.errors import ConfigError

VARIABLE = "ORCH_EXECUTOR"  # the executor when `--executor` is not given
HERE = "local"  # the `host` of an attempt that runs on this machine (state.json, the console)


@dataclass(frozen=True)
class Option:
    """A `doit run --NAME VALUE` option of one executor, passed to its class as `NAME=VALUE`."""

    name: str
    env: str  # the variable read when the option is not given
    metavar: str  # the value's name in `doit help run`
    help: str

    def cmd_option(self) -> dict[str, Any]:
        """The option as a doit command declares one (`cmd_options`)."""
        text = f"{self.help} (also {self.env})"
        return {"name": self.name, "long": self.name, "type": str, "default": "", "help": text}


@dataclass(frozen=True)
class Entry:
    """One executor: its name, its class, where its agents run, its options and checks."""

    name: str
    target: str  # "module:Class", imported when a run uses it
    where: str  # where its agents run, for help
    extra: str = ""  # the pip extra its modules need
    options: tuple[Option, ...] = ()
    # Preflight: True when the executor's own check speaks for each of its hosts at once
    # (one line per host and CLI); False: one located line per missing CLI, found here.
    checks_hosts: bool = False

    def values(self, given: Mapping[str, str]) -> dict[str, str]:
        """Its options' values: as given on the command line, else from their variables."""
        return {o.name: given.get(o.name) or os.environ.get(o.env, "") for o in self.options}


# What each executor declares: its name, class, where agents run, extra, options, checks.
LOCAL = Entry("local", "orchlib.executors.local:LocalExecutor", "here")
DASK = Entry(
    "dask", "orchlib.executors.dask:DaskExecutor", "on a Dask cluster", extra="dask",
    options=(Option("scheduler", "ORCH_DASK_SCHEDULER", "ADDR", "the dask executor's cluster: "
                    "tcp://HOST:PORT, or local:N for N worker processes here"),),
    checks_hosts=True,
)  # fmt: skip

# One line per executor; the first is the default.
EXECUTORS: Mapping[str, Entry] = {
    e.name: e
    for e in (
        LOCAL,
        DASK,
    )
}
DEFAULT = next(iter(EXECUTORS))
NAMES = tuple(EXECUTORS)


def find(name: str) -> Entry:
    """The executor registered as `name`; ConfigError (one line) naming the known ones."""
    try:
        return EXECUTORS[name]
    except KeyError:
        known = ", ".join(sorted(EXECUTORS))
        raise ConfigError(f"orchlib: unknown executor {name!r} (known: {known})") from None


def options() -> tuple[Option, ...]:
    """Every executor's own options, for `doit run` (each name once)."""
    found: dict[str, Option] = {}
    for executor in EXECUTORS.values():
        for option in executor.options:
            found.setdefault(option.name, option)
    return tuple(found.values())


def cmd_option() -> dict[str, Any]:
    """`--executor NAME`, as a doit command declares it."""
    names = ", ".join(f"{e.name} ({e.where})" for e in EXECUTORS.values())
    text = f"where agents run: {names}; default {DEFAULT} (also {VARIABLE}, or `executor:` "
    return {"name": "executor", "long": "executor", "type": str, "default": "",
            "help": text + "under a plan's defaults)"}  # fmt: skip


def help_lines() -> str:
    """The `doit help run` lines of `--executor` and of each executor's options."""
    names = ", ".join(f"`{e.name}`: {e.where}" for e in EXECUTORS.values())
    lines = [
        _help_line("--executor NAME", f"where the agents run ({names}; default `{DEFAULT}`; "
                   f"also {VARIABLE}, `executor:` under a plan's defaults); docs/executors.md"),
    ]  # fmt: skip
    for executor in EXECUTORS.values():
        extra = f"; needs `pip install 'orchlib[{executor.extra}]'`" if executor.extra else ""
        for o in executor.options:
            lines.append(_help_line(f"--{o.name} {o.metavar}", f"{o.help} (also {o.env}){extra}"))
    return "".join(lines)


def _help_line(flag: str, text: str, width: int = 90) -> str:
    """One option of help: the flag in a column of 20, its text wrapped beside it (a
    `quoted command` is never cut)."""
    import re
    import textwrap

    glued = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)
    body = [line.replace("\0", " ") for line in textwrap.wrap(glued, width - 22)]
    first = f"  {flag:<18}  {body[0]}\n" if len(flag) <= 18 else f"  {flag}\n{' ' * 22}{body[0]}\n"
    return first + "".join(f"{' ' * 22}{line}\n" for line in body[1:])
