"""Plan files: read, parse, validate into a `Plan`, locate problems as `file:line:col`, cache.

Parsing is fast (the `json` module; `yamlload` for YAML) and validation works on the
plain data with key paths. Only when there are problems are the file's parse events
walked again (`yamlload.positions`) to turn those paths into line and column. A valid
plan is cached as JSON under `.orch/cache/` (`cache`), so loading unchanged bytes again
skips all of it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orchlib
from orchlib.errors import PlanError
from orchlib.plan import Plan, cache
from orchlib.plan.durations import parse_duration
from orchlib.records import replace
from orchlib.textsafe import escaped_line

# ruamel and the validator are imported only to parse a YAML plan that is not in the cache,
# or to locate errors: a JSON plan, or a re-run of an unchanged plan, skips them.
if TYPE_CHECKING:
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.reader import ReaderError

    from orchlib.plan.checks import Issue, Key

__all__ = ["load_plan", "load_plans", "locate", "parse_duration"]

SUFFIXES = (".yaml", ".yml", ".json")


def load_plan(path: Path, checkout: Path) -> Plan:
    """The validated plan in `path`; PlanError lists every problem, one located line each."""
    name = display(path, checkout)
    raw = _read(path, name)
    key = _cache_key(raw, name, checkout)
    plan = cache.cached(checkout, name, key)
    if plan is not None:
        return plan if plan.source == path else replace(plan, source=path)
    text = _decode(raw, name)
    from orchlib.plan.schema import build_plan  # validation: only for plans not in the cache

    plan, issues = build_plan(_parse(text, name, path.suffix == ".json"), path, checkout)
    if plan is None:
        raise PlanError(_lines(issues, text, name))
    plan = replace(plan, digest=key)
    cache.store(checkout, name, key, plan)
    return plan


def load_plans(checkout: Path) -> list[Plan]:
    """Every plan in `checkout/plans` (sorted by file name); errors of all files at once."""
    folder = checkout / "plans"
    files = sorted(p for p in folder.glob("*") if p.suffix in SUFFIXES and p.is_file())
    plans: list[Plan] = []
    lines: list[str] = []
    for path in files:
        try:
            plans.append(load_plan(path, checkout))
        except PlanError as error:
            lines.extend(error.lines())
    lines.extend(_duplicate_ids(plans, checkout))
    if lines:
        raise PlanError(lines)
    return plans


def _duplicate_ids(plans: list[Plan], checkout: Path) -> list[str]:
    first: dict[str, Plan] = {}
    lines = []
    for plan in plans:
        if plan.plan_id in first:
            other = display(first[plan.plan_id].source, checkout)
            where = locate(plan.source, checkout, ["planId"])
            lines.append(f"{where}: planId: plan id {plan.plan_id!r} is already used by {other}")
        first.setdefault(plan.plan_id, plan)
    return lines


def locate(path: Path, checkout: Path, keys: Sequence[Key], at_key: bool = False) -> str:
    """`plans/x.yaml:4:3`: where the node at `keys` (its key if `at_key`) starts, else its
    nearest existing ancestor."""
    try:
        stat = path.stat()
        line, col = _locate(str(path), stat.st_mtime_ns, stat.st_size, tuple(keys), at_key)
    except OSError:
        line, col = 1, 1
    return f"{display(path, checkout)}:{line}:{col}"


@functools.lru_cache(maxsize=64)
def _locate(
    path: str, mtime_ns: int, size: int, keys: tuple[Key, ...], at_key: bool
) -> tuple[int, int]:
    text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
    from orchlib.plan.yamlload import positions

    return _where(positions(text, [keys]), keys, at_key=at_key)


def display(path: Path, checkout: Path) -> str:
    """The path as shown in messages: relative to the checkout, posix."""
    real = Path(os.path.realpath(checkout)), Path(os.path.realpath(path))
    for base, target in ((checkout.absolute(), path.absolute()), real):
        if target.is_relative_to(base):
            return target.relative_to(base).as_posix()
    return path.as_posix()


def _read(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise PlanError(
            [escaped_line(f"{name}:1:1: cannot read the plan: {error.strerror}")]
        ) from None


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        col = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise PlanError(
            [escaped_line(f"{name}:{line}:{col}: not UTF-8 text: {error.reason}")]
        ) from None


def _parse(text: str, name: str, is_json: bool) -> Any:
    """The file's data; syntax errors become one located PlanError line."""
    try:
        return _load(text, is_json)
    except json.JSONDecodeError as error:
        message = f"{name}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}"
    except _DuplicateKey:
        return _parse(text, name, is_json=False)  # ruamel reports it with its position
    except _yaml_error_class() as error:  # evaluated only when an error gets this far
        message = _yaml_error(error, text, name)
    except RecursionError:
        message = f"{name}:1:1: the plan is nested too deeply"
    except (ValueError, TypeError, OverflowError) as error:  # e.g. a timestamp like 2024-13-45
        message = f"{name}:1:1: invalid {'JSON' if is_json else 'YAML'} value: {error}"
    raise PlanError([escaped_line(" ".join(message.split()))])


def _load(text: str, is_json: bool) -> Any:
    if is_json:  # a JSON plan never imports ruamel
        return json.loads(text, object_pairs_hook=_no_duplicates)
    from orchlib.plan.yamlload import load_yaml

    return load_yaml(text)


def _yaml_error_class() -> type[YAMLError]:
    from ruamel.yaml.error import YAMLError

    return YAMLError


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _yaml_error(error: YAMLError, text: str, name: str) -> str:
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.reader import ReaderError

    if isinstance(error, ReaderError):
        line, col = _offset_position(text, error.position)
        return f"{name}:{line}:{col}: invalid YAML: unacceptable character {_char(error)}"
    mark = None
    if isinstance(error, MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
    where = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "1:1"
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{name}:{where}: invalid YAML: {' '.join(str(detail).split())}"


def _char(error: ReaderError) -> str:
    char = error.character
    code = char[0] if isinstance(char, bytes) else char
    from orchlib.plan.checks import q

    return f"#x{code:04x}" if isinstance(code, int) else q(code)


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _lines(issues: list[Issue], text: str, name: str) -> list[str]:
    """Located, sorted, unique lines `file:line:col: path: message`."""
    from orchlib.plan.checks import dotted
    from orchlib.plan.yamlload import positions

    found = positions(text, [issue.path for issue in issues])
    located = []
    for issue in issues:
        line, col = _where(found, issue.path, issue.at_key)
        where = f"{dotted(issue.path)}: " if issue.path else ""
        located.append((line, col, escaped_line(f"{name}:{line}:{col}: {where}{issue.message}")))
    return list(dict.fromkeys(entry[2] for entry in sorted(located, key=lambda e: e[:2])))


def _where(
    found: dict[tuple[Any, ...], Any], path: tuple[Key, ...], at_key: bool
) -> tuple[int, int]:
    """1-based line:col of the node at `path` (its key when `at_key`), else of an ancestor."""
    for end in range(len(path), -1, -1):
        if path[:end] in found:
            key_at, value_at = found[path[:end]]
            line, col = key_at if at_key and end == len(path) else value_at
            return line + 1, col + 1
    return 1, 1


def _cache_key(raw: bytes, name: str, checkout: Path) -> str:
    digest = hashlib.sha256(raw)
    for part in (orchlib.__version__, _code_fingerprint(), str(checkout.resolve()), name):
        digest.update(b"\0" + part.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


@functools.cache
def _code_fingerprint() -> str:
    """A digest of the source that decides what a valid plan is, so a changed validator
    never reads stale plans (`code_sources`)."""
    digest = hashlib.sha256()
    root = Path(orchlib.__file__).parent
    for module in code_sources():
        name = module.relative_to(root).as_posix()
        digest.update(name.encode() + b"\0" + module.read_bytes() + b"\0")
    return digest.hexdigest()


def code_sources() -> list[Path]:
    """Every module of the `plan` package, and of the registries its names come from (`agent:`
    from the `agents` package, its profiles' own modules included; `executor:` from
    executorregistry), found on disk so a new one counts without a list to keep. Read, not
    imported: a cached plan's run loads no agent profile it does not use."""
    root = Path(orchlib.__file__).parent
    packages = (root / "plan", root / "agents")
    return [*(m for p in packages for m in sorted(p.glob("*.py"))), root / "executorregistry.py"]
