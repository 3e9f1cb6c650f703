"""The error hierarchy: exceptions are for a bad plan or configuration, never task outcomes."""

from __future__ import annotations

from collections.abc import Sequence


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
