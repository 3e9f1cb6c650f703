"""Executors by name: where a run's processes start (`local`, or `dask` with its extra).

Modeled on pre-commit's languages registry: a name maps to a factory, and an executor that
needs an optional dependency is imported only when it is asked for, so `local` never pays
for Dask and a missing extra is one line, not a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from orchlib.errors import ConfigError
from orchlib.executors.base import Executor, Handle, Job
from orchlib.executors.local import LocalExecutor

__all__ = ["EXECUTORS", "Executor", "Handle", "Job", "LocalExecutor", "create"]

# name -> (module, class, pip extra); imported on first use.
EXECUTORS: dict[str, tuple[str, str, str]] = {
    "local": ("orchlib.executors.local", "LocalExecutor", ""),
    "dask": ("orchlib.executors.dask", "DaskExecutor", "dask"),
}


def factory(name: str) -> Callable[..., Executor]:
    """The executor class registered as `name`; ConfigError (one line) when it cannot load."""
    try:
        module, cls, extra = EXECUTORS[name]
    except KeyError:
        known = ", ".join(sorted(EXECUTORS))
        raise ConfigError(f"orchlib: unknown executor {name!r} (known: {known})") from None
    try:
        found: Any = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        hint = f"; install it with pip install 'orchlib[{extra}]'" if extra else ""
        missing = exc.name or str(exc)
        raise ConfigError(
            f"orchlib: the {name} executor cannot be loaded ({missing} is missing){hint}"
        ) from None
    except AttributeError:
        raise ConfigError(
            f"orchlib: the {name} executor cannot be loaded ({module} has no {cls})"
        ) from None
    return found  # type: ignore[no-any-return]


def create(name: str, **options: Any) -> Executor:
    """A new executor `name`, built with `options` (e.g. the run's `wake_fd`)."""
    return factory(name)(**options)
