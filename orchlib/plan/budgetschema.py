"""`budget: {usd, tokens}` in a plan, a project or a task (DESIGN §15), checked."""

from __future__ import annotations

from orchlib.plan import Budget
from orchlib.plan.checks import Issues, KeyPath, mapping, number, wrong


def budget(issues: Issues, value: object, path: KeyPath) -> Budget | None:
    """A budget mapping: `usd` (a number >= 0), `tokens` (a whole number >= 0), one or both."""
    m = mapping(issues, value, path, (), ("usd", "tokens"))
    if m is None:
        return None
    if not m:
        issues.add(path, "a budget sets usd, tokens or both")
        return None
    usd = number(issues, m["usd"], (*path, "usd")) if "usd" in m else None
    tokens = _tokens(issues, m["tokens"], (*path, "tokens")) if "tokens" in m else None
    return Budget(None if usd is None else float(usd), tokens)


def _tokens(issues: Issues, value: object, path: KeyPath) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 2e6 in YAML is a float
    if isinstance(value, bool) or not isinstance(value, int):
        wrong(issues, path, "a whole number of tokens", value)
        return None
    if value < 0:
        issues.add(path, f"must be >= 0, got {value}")
        return None
    return value
