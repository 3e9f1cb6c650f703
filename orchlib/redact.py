"""Secrets never shown (DESIGN §13): the values of secret variables, replaced by a name.

Text that came from an agent or a command passes through `Secrets.redact` where it enters
orchlib's records (an attempt's outcome and progress, a verify's output, every event on the
run's bus) and where a transcript is decoded for showing (`doit log`, the dashboard). The
raw transcripts keep what was printed.

A `Secrets` holds values, not names: it is built from one process's environment, so it knows
the secrets of the machine it runs on (a dask worker's own variables are not among them).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from orchlib.plan.environment import DEFAULT_EXCLUDE, matches

MIN_LENGTH = 8  # shorter values ("true", "1", "dev") are too common to be told apart


@dataclass(frozen=True)
class Secrets:
    """Secret values and the variable each one came from."""

    names: Mapping[str, str] = field(default_factory=dict)  # value -> variable name

    def redact(self, text: str) -> str:
        """`text` with every secret value replaced by `[secret:NAME]`."""
        if not self.names or not text:
            return text
        return self._pattern.sub(lambda m: f"[secret:{self.names[m[0]]}]", text)

    def __bool__(self) -> bool:
        return bool(self.names)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        # Longest first: a value that contains another is replaced whole.
        values = sorted(self.names, key=len, reverse=True)
        return re.compile("|".join(re.escape(value) for value in values))


class Pieces:
    """Redacts text that arrives in pieces (a log streamed to a page): the end that could
    be the start of a secret is held back until the next piece, or `final`."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets
        self.held = ""
        self._keep = max((len(value) for value in secrets.names), default=1) - 1

    def feed(self, text: str, final: bool = False) -> str:
        """What can be shown of the text so far (redacted)."""
        text, self.held = self.held + text, ""
        if not self.secrets:
            return text
        cut, at, out = max(0, len(text) - (0 if final else self._keep)), 0, []
        for found in self.secrets._pattern.finditer(text):
            if found.start() >= cut:
                break
            out += [text[at : found.start()], f"[secret:{self.secrets.names[found[0]]}]"]
            at = found.end()
        cut = max(cut, at)
        out.append(text[at:cut])
        self.held = text[cut:]
        return "".join(out)


def secrets_in(
    environ: Mapping[str, str],
    patterns: Iterable[str] = DEFAULT_EXCLUDE,
    names: Collection[str] = (),
) -> Secrets:
    """The secrets of an environment: the values (8 characters or more, surrounding blanks
    dropped) of the variables `names` lists or a glob of `patterns` matches."""
    globs = tuple(patterns)
    found: dict[str, str] = {}
    for name in sorted(environ):
        value = environ[name].strip()
        if len(value) >= MIN_LENGTH and (name in names or matches(name, globs)):
            found.setdefault(value, name)
    return Secrets(found)
