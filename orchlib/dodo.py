"""What a checkout's `dodo.py` imports: `from orchlib.dodo import *`.

doit reads `DOIT_CONFIG` and calls `task_orchlib`, which yields every plan task of the
checkout (the folder holding dodo.py) as doit tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchlib.doitedge import plugins
from orchlib.doitedge.doitapi import task_params
from orchlib.doitedge.loader import (
    CREATOR_PARAMS,
    DOIT_CONFIG,
    checkout_for,
    doit_tasks,
    prepare_orch_dir,
)

__all__ = ["DOIT_CONFIG", "task_orchlib"]

# doit opens its dependency DB (in .orch/) before it asks for tasks.
prepare_orch_dir(Path.cwd())
# A checkout of orchlib's: doit's later plugin lookups answered from one scan (never for
# another doit project, which merely has orchlib's commands installed).
plugins.install()


@task_params(CREATOR_PARAMS)  # `doit run`'s selection, given through doit's task_opts
def task_orchlib(run_selection: list[str] | None = None) -> Iterator[Any]:
    """Every plan in plans/ (run one with `doit <planId>`)."""
    yield from doit_tasks(checkout_for(Path.cwd()), run_selection)
