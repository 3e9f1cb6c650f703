"""The `environment` key of a plan, a project or a task, checked (DESIGN §13)."""

from __future__ import annotations

from orchlib.plan.agentspec import env
from orchlib.plan.checks import Issues, KeyPath, choice, get, items, mapping, nonempty, wrong
from orchlib.plan.environment import INHERIT_MODES, EnvLayer

FIELDS = ("inherit", "exclude", "include", "set")


def environment(issues: Issues, value: object, path: KeyPath) -> EnvLayer | None:
    """One level's `environment` mapping; every bad field reported where it is."""
    m = mapping(issues, value, path, (), FIELDS)
    if m is None:
        return None
    return EnvLayer(
        inherit=get(issues, m, "inherit", path, choice(INHERIT_MODES), None),
        exclude=get(issues, m, "exclude", path, _names, None),
        include=get(issues, m, "include", path, _names, None),
        set=get(issues, m, "set", path, env, None),
    )


def _names(issues: Issues, value: object, path: KeyPath) -> tuple[str, ...] | None:
    """A list of variable names or case-insensitive globs (`*TOKEN*`)."""
    if not isinstance(value, list):
        wrong(issues, path, "a list of variable names or globs", value)
        return None
    found = items(issues, value, path, _name)
    return tuple(found) if len(found) == len(value) else None


def _name(issues: Issues, value: object, path: KeyPath) -> str | None:
    name = nonempty(issues, value, path)
    if name is not None and ("=" in name or any(c.isspace() for c in name)):
        issues.add(path, f"{name!r} is not a variable name or glob (no '=' or spaces)")
        return None
    return name
