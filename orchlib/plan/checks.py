"""Typed checks on plain plan data that collect every problem instead of stopping at one.

Validation runs on the dicts and lists a fast loader gives; each problem is an `Issue`
with the key path where it sits. `plan/file.py` turns paths into `file:line:col` only when
there are problems, so a valid plan never pays for positions.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypeVar

from orchlib.layout import RUNTIME_NAMES, RUNTIME_PREFIXES
from orchlib.plan.durations import parse_duration
from orchlib.plan.schedule import known_list

Key = str | int
KeyPath = tuple[Key, ...]
T = TypeVar("T")
D = TypeVar("D")

IDENT = re.compile(r"[A-Za-z0-9_.-]+")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$-]+")


@dataclass(frozen=True)
class Issue:
    """One problem: where (`path`; the key itself when `at_key`) and what."""

    path: KeyPath
    message: str
    at_key: bool = False


class Issues(list[Issue]):
    """The problems found so far."""

    def add(self, path: KeyPath, message: str, at_key: bool = False) -> None:
        self.append(Issue(path, message, at_key))


def dotted(path: KeyPath) -> str:
    """`tasks[2].dependsOn[0]` for ("tasks", 2, "dependsOn", 0); odd keys as `env['a b']`."""
    text = "".join(_step(key) for key in path)
    return text.removeprefix(".")


def _step(key: Key) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    return f".{key}" if _PLAIN_KEY.fullmatch(key) else f"[{q(key)}]"


def q(value: object, limit: int = 60) -> str:
    """A user value quoted for a one-line message (escaped, cut when long)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: object) -> str:
    """The YAML-ish kind of a value, for `expected X, got Y`."""
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "true/false"),
        ((int, float), "a number"),
        (str, "a string"),
        (dict, "a mapping"),
        (list, "a list"),
        ((datetime.date, datetime.datetime), "a date"),
    ]
    found = (name for kind, name in kinds if isinstance(value, kind))
    return "null" if value is None else next(found, type(value).__name__)


def suggest(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or ''."""
    import difflib  # only a misspelt name needs it: not imported by a valid plan's run

    options = list(choices)
    by_case = [c for c in options if c.lower() == word.lower()]
    close = by_case or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, name: str, known: Sequence[str]) -> str:
    """`unknown project 'x' (did you mean 'y'?)`, else with the known names listed."""
    hint = suggest(name, known) or f" (known: {known_list(known) or 'none'})"
    return f"unknown {kind} {q(name)}{hint}"


def wrong(issues: Issues, path: KeyPath, what: str, value: object) -> None:
    """Report `expected WHAT, got KIND`."""
    issues.add(path, f"expected {what}, got {describe(value)}")


def mapping(
    issues: Issues, value: object, path: KeyPath, required: Sequence[str], optional: Sequence[str]
) -> dict[str, Any] | None:
    """`value` as a mapping with string keys; missing and unknown keys reported."""
    if not isinstance(value, dict):
        wrong(issues, path, "a mapping", value)
        return None
    allowed = [*required, *optional]
    for key in value:
        if not isinstance(key, str):
            issues.add(path, f"keys must be strings, got {describe(key)} {q(key)}")
        elif key not in allowed:
            issues.add((*path, key), f"unknown key {q(key)}{suggest(key, allowed)}", at_key=True)
    missing = [key for key in required if key not in value]
    for key in missing:
        issues.add(path, f"missing required key {key!r}")
    return value


def get(
    issues: Issues,
    m: dict[str, Any],
    key: str,
    path: KeyPath,
    parse: Callable[[Issues, Any, KeyPath], T | None],
    default: D,
) -> T | D:
    """`parse(issues, value, path)` of `m[key]`, or `default` when absent or invalid."""
    if key not in m:
        return default
    result = parse(issues, m[key], (*path, key))
    return default if result is None else result


def text(issues: Issues, value: object, path: KeyPath) -> str | None:
    """A string."""
    if isinstance(value, str):
        return value
    wrong(issues, path, "a string", value)
    return None


def ident(issues: Issues, value: object, path: KeyPath) -> str | None:
    """A name usable in a doit task name: `[A-Za-z0-9_.-]+`."""
    value = text(issues, value, path)
    if value is not None and not IDENT.fullmatch(value):
        issues.add(path, f"{q(value)} may only contain letters, digits, '_', '.' and '-'")
        return None
    return value


def nonempty(issues: Issues, value: object, path: KeyPath) -> str | None:
    """A string that is not blank."""
    result = text(issues, value, path)
    if result is not None and not result.strip():
        issues.add(path, "must not be empty")
        return None
    return result


def flag(issues: Issues, value: object, path: KeyPath) -> bool | None:
    """true or false."""
    if isinstance(value, bool):
        return value
    wrong(issues, path, "true or false", value)
    return None


def number(issues: Issues, value: object, path: KeyPath) -> float | None:
    """A finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        wrong(issues, path, "a number", value)
        return None
    if not 0 <= value < float("inf"):
        issues.add(path, f"must be a number >= 0, got {q(value)}")
        return None
    return value


def count(issues: Issues, value: object, path: KeyPath) -> int | None:
    """An integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        wrong(issues, path, "a whole number", value)
        return None
    if value < 0:
        issues.add(path, f"must be >= 0, got {value}")
        return None
    return value


def duration(issues: Issues, value: object, path: KeyPath) -> float | None:
    """Seconds of a duration (see `parse_duration`); 0 and null give None (no limit)."""
    try:
        return parse_duration(value)
    except ValueError as error:
        issues.add(path, str(error))
        return None


def choice(options: Sequence[str]) -> Callable[[Issues, object, KeyPath], str | None]:
    """A parser accepting one of `options`."""

    def parse(issues: Issues, value: object, path: KeyPath) -> str | None:
        value = text(issues, value, path)
        if value is not None and value not in options:
            hint = suggest(value, options)
            issues.add(path, f"{q(value)} is not one of {', '.join(options)}{hint}")
            return None
        return value

    return parse


def items(issues: Issues, value: object, path: KeyPath, parse: Callable[..., T | None]) -> list[T]:
    """The parsed items of a list (invalid items reported and left out)."""
    if not isinstance(value, list):
        wrong(issues, path, "a list", value)
        return []
    parsed = (parse(issues, item, (*path, index)) for index, item in enumerate(value))
    return [item for item in parsed if item is not None]


def argv(issues: Issues, value: object, path: KeyPath) -> tuple[str, ...] | None:
    """A command: a string runs as `sh -c STRING`, a list of strings is the argv itself."""
    if isinstance(value, str):
        return ("sh", "-c", value) if nonempty(issues, value, path) is not None else None
    if not isinstance(value, list):
        wrong(issues, path, "a command (a string or a list of strings)", value)
        return None
    args = items(issues, value, path, text)
    if not value:
        issues.add(path, "the command list must not be empty")
    return tuple(args) if args and len(args) == len(value) else None


def timestamp(issues: Issues, value: object, path: KeyPath) -> str | None:
    """ISO text; YAML turns unquoted timestamps into datetimes, which are accepted."""
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return text(issues, value, path)


def globs(issues: Issues, value: object, path: KeyPath) -> tuple[str, ...] | None:
    """A glob or a list of globs relative to the project (no absolute path, no `..` escape)."""
    if isinstance(value, str):
        pattern = _glob(issues, value, path)
        return None if pattern is None else (pattern,)
    found = items(issues, value, path, _glob)
    return tuple(found) if isinstance(value, list) and len(found) == len(value) else None


def _glob(issues: Issues, value: object, path: KeyPath) -> str | None:
    pattern = nonempty(issues, value, path)
    if pattern is None:
        return None
    depth = 0
    for part in PurePosixPath(pattern).parts:
        depth += -1 if part == ".." else 1
        if depth < 0 or part == "/":
            issues.add(path, f"{q(pattern)} must stay inside the project (relative, no '..' out)")
            return None
    return pattern


def no_nul_bytes(issues: Issues, data: object) -> None:
    """Report every key and string holding a NUL: no argv, env or file name can carry one."""
    # An explicit stack: a plan may nest deeper than Python's recursion limit.
    stack: list[tuple[KeyPath, object]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and "\0" in value:
            issues.add(path, "contains a NUL character (\\0); remove it")
        elif isinstance(value, dict):
            for key in value:
                if isinstance(key, str) and "\0" in key:
                    issues.add((*path, key), "key contains a NUL character (\\0)", at_key=True)
            stack.extend(((*path, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))


# Names (or name prefixes) of orchlib's and doit's own files and folders in `.orch/`: a plan
# folder there must not collide with them (doit's DB also makes `doit.sqlite3-journal`).
RESERVED = "choose another planId (reserved: cache, drafts, worktrees, run.lock*, doit.*)"


def reserved_plan_id(plan_id: str) -> bool:
    """Whether `.orch/<plan_id>` would be one of the runtime files (names compared as the
    file system may, without case)."""
    name = plan_id.lower()
    return name in RUNTIME_NAMES or name.startswith(RUNTIME_PREFIXES)
