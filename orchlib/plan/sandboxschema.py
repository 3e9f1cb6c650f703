"""The plan's sandbox keys (DESIGN §14): `sandbox` (plan defaults, project, task) and
`sandboxWritable` (plan), checked here; the executors apply them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchlib.layout import ORCH
from orchlib.plan.checks import Issues, KeyPath, choice, items, nonempty, q

SANDBOXES = ("none", "bwrap")  # `none`: as before; `bwrap`: bubblewrap on Linux
# orchlib's own files in a checkout: read-only to every sandboxed process, and never
# `sandboxWritable` (an agent writing .orch/ could forge another task's DONE).
PROTECTED = (ORCH, "plans", "templates", "dodo.py")

mode = choice(SANDBOXES)


def writable(issues: Issues, value: Any, path: KeyPath, checkout: Path) -> tuple[Path, ...]:
    """`sandboxWritable`: paths relative to the checkout (or absolute, or `~/...`),
    resolved; none of them orchlib's own files."""
    found = []
    for index, entry in enumerate(items(issues, value, path, nonempty)):
        where = (*path, index)
        try:
            resolved = (checkout / Path(entry).expanduser()).resolve()
        except (OSError, RuntimeError, ValueError) as error:
            issues.add(where, f"bad path {q(entry)}: {error}")
            continue
        own = next((p for p in PROTECTED if resolved.is_relative_to(checkout.resolve() / p)), None)
        if own is not None:
            issues.add(where, f"{q(entry)} is inside the checkout's {own}, which stays "
                       "read-only to sandboxed agents (orchlib's own files)")  # fmt: skip
            continue
        found.append(resolved)
    return tuple(found)
