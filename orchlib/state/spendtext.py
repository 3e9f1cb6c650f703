"""Spend against budget as `doit status` and the console say it (DESIGN §15)."""

from __future__ import annotations

from collections.abc import Mapping


def spend_cell(spend: Mapping[str, object], budget: Mapping[str, object]) -> str:
    """`$0.10 of $0.08`, `2,100 tok of 5,000`, `$0.10` (no budget), or ""."""
    parts = []
    for key, show in (("usd", _usd), ("tokens", _tokens)):
        spent, cap = _number(spend.get(key)), _number(budget.get(key))
        if cap is not None:
            parts.append(f"{show(spent or 0)} of {show(cap)}")
        elif spent:
            parts.append(show(spent))
    return ", ".join(parts)


def budget_text(budget: Mapping[str, object]) -> str:
    """`$5.00, 2,000,000 tok`, or `none`."""
    usd, tokens = _number(budget.get("usd")), _number(budget.get("tokens"))
    parts = [_usd(usd) if usd is not None else "", _tokens(tokens) if tokens is not None else ""]
    return ", ".join(p for p in parts if p) or "none"


def _usd(value: float) -> str:
    return f"${value:.2f}"


def _tokens(value: float) -> str:
    return f"{int(value):,} tok"


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
