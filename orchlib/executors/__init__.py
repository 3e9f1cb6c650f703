"""Executors: where a run's processes start. `create` builds the one a run asks for.

Which executors exist, their options and checks are declared in `orchlib.executorregistry`
(below every layer, since the plan schema reads the names); their classes live here and are
imported on first use, so `local` never pays for Dask and a missing extra is one line, not
a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from orchlib import executorregistry
from orchlib.errors import ConfigError
from orchlib.executors.base import Executor, Handle, Job

if TYPE_CHECKING:  # at run time loaded on first use: importing the package stays cheap
    from orchlib.executors.local import LocalExecutor as LocalExecutor

__all__ = ["Executor", "Handle", "Job", "LocalExecutor", "create"]


def factory(name: str) -> Callable[..., Executor]:
    """The executor class registered as `name`; ConfigError (one line) when it cannot load."""
    entry = executorregistry.find(name)
    module, _, cls = entry.target.partition(":")
    try:
        found: Any = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        hint = f"; install it with pip install 'orchlib[{entry.extra}]'" if entry.extra else ""
        missing = exc.name or str(exc)
        raise ConfigError(
            f"orchlib: the {name} executor cannot be loaded ({missing} is missing){hint}"
        ) from None
    except AttributeError:
        raise ConfigError(
            f"orchlib: the {name} executor cannot be loaded ({module} has no {cls})"
        ) from None
    return found  # type: ignore[no-any-return]


def create(name: str, given: Mapping[str, str] | None = None, **run: Any) -> Executor:
    """A new executor `name`, built from its options (`given` on the command line, else their
    variables) and the run's own arguments (its `wake_fd`, `stopped`)."""
    return factory(name)(**executorregistry.find(name).values(given or {}), **run)


def __getattr__(name: str) -> Any:
    """`LocalExecutor`, imported on first use (its module loads ctypes and the process code)."""
    if name != "LocalExecutor":
        raise AttributeError(f"module 'orchlib.executors' has no attribute {name!r}")
    from orchlib.executors.local import LocalExecutor

    return LocalExecutor
