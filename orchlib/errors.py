"""The error hierarchy: exceptions are for a bad plan or configuration, never task outcomes."""

from __future__ import annotations

import re
from collections.abc import Sequence

_LOCATED = re.compile(r"^\S+:\d+:\d+: ")  # plans/x.yaml:14:7: tasks[2]...: message


class OrchError(Exception):
    """Base of every error orchlib reports to the user as plain lines (no traceback)."""

    exit_code = 3

    def lines(self) -> list[str]:
        """The one-line-each messages to print."""
        return [str(self)]


class PlanError(OrchError):
    """One or more problems in a plan file, each located as `file:line:col: path: message`."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))

    def lines(self) -> list[str]:
        return list(self.messages)


class ConfigError(OrchError):
    """A problem with the checkout or the environment (agent missing on PATH, bad template)."""


class LockHeld(OrchError):
    """Another `doit` run holds the checkout's run lock."""

    exit_code = 1


def error_line(line: str) -> str:
    """The line in orchlib's one error form: located (`file:line:col: ...`) or `orchlib: ...`."""
    if line.startswith("orchlib:") or _LOCATED.match(line):
        return line
    return f"orchlib: {line}"
