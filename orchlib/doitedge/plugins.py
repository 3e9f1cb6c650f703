"""doit's plugin lookup, one scan of the installed packages instead of one per category.

doit looks up the entry points of each plugin category (COMMAND, BACKEND, REPORTER, LOADER)
with its own `importlib.metadata.entry_points(group=...)` call, and every call reads the
entry points of every installed distribution (~8 ms each with 120 packages, a tenth of a
no-op re-run). Once orchlib's commands are loaded (by the first such scan), the later
lookups select from one cached scan. Installed plugins are all still found.
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

import doit.plugin


@functools.cache
def _all() -> Any:
    """Every entry point (EntryPoints; SelectableGroups before Python 3.12, same `select`)."""
    return metadata.entry_points()


def entry_points(**params: Any) -> metadata.EntryPoints:
    """`importlib.metadata.entry_points`, answered from one scan per process."""
    found: metadata.EntryPoints = _all().select(**params)
    return found


def install() -> None:
    """Make doit's plugin lookups use the cached scan (doit reads `entry_points_impl()`)."""
    if callable(getattr(doit.plugin, "entry_points_impl", None)):
        doit.plugin.entry_points_impl = lambda: entry_points
