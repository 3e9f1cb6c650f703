"""Every doit name orchlib's commands, loader and reporter use, imported in one place.

The rest of the doit-facing edge imports doit through here, so the surface orchlib relies on
is this list (tests/test_doit_contract.py checks it against the installed doit, whose
versions pyproject pins). The runner (`doit.runner`, loaded only for a run with work), the
CLI's main (`orchlib.doitedge.cli`) and the plugin lookup (`doit.plugin`) import their parts
of doit themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import doit.doit_cmd
from doit.cmd_base import Command, TaskLoader2
from doit.cmd_clean import Clean as DoitClean
from doit.cmd_forget import Forget as DoitForget
from doit.cmd_help import Help as DoitHelp
from doit.cmd_info import Info as DoitInfo
from doit.cmd_list import List as DoitList
from doit.cmd_run import Run as DoitRun
from doit.cmdparse import CmdParseError
from doit.control import TaskControl
from doit.exceptions import InvalidCommand, InvalidDodoFile, TaskError, TaskFailed, UnmetDependency
from doit.loader import task_params as doit_task_params
from doit.task import Stream
from doit.task import Task as DoitTask

__all__ = [
    "CmdParseError", "Command", "DoitClean", "DoitForget", "DoitHelp", "DoitInfo", "DoitList",
    "DoitRun", "DoitTask", "InvalidCommand", "InvalidDodoFile", "Stream", "TaskControl",
    "TaskError", "TaskFailed", "TaskLoader2", "UnmetDependency", "cmdline_vars", "task_params",
]  # fmt: skip


def cmdline_vars() -> Mapping[str, str]:
    """The `name=value` words doit took from the command line as variables (doit keeps them
    in `doit_cmd._CMDLINE_VARS`, set by `DoitMain.run`; empty before that)."""
    found = getattr(doit.doit_cmd, "_CMDLINE_VARS", None)
    return found if isinstance(found, Mapping) else {}


_Creator = TypeVar("_Creator", bound=Callable[..., Any])


def task_params(param_def: list[dict[str, Any]]) -> Callable[[_Creator], _Creator]:
    """doit's `@task_params`: the parameters a task creator takes (typed here)."""
    decorate: Callable[[_Creator], _Creator] = doit_task_params(param_def)
    return decorate
