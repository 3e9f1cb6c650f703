"""The state layer: a plan's records (`model`), their JSON (`jsonform`), how events change
them (`transitions`) and the plan or a new run (`reconcile`), the files on disk (`files`,
`store`), stamps, the up-to-date rule and the state files made to agree with it
(`uptodate`, `statesync`), `.orch/` housekeeping and the run lock.

Importing the package costs nothing: a no-op `doit` imports a few of its modules (stamps,
the run lock), never the store. The names below load from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at run time `__getattr__` below loads each name
    from orchlib.state.files import LOCK_FILE as LOCK_FILE
    from orchlib.state.files import LOCK_TIMEOUT as LOCK_TIMEOUT
    from orchlib.state.files import MARKDOWN_FILE as MARKDOWN_FILE
    from orchlib.state.files import STATE_FILE as STATE_FILE
    from orchlib.state.files import answer as answer
    from orchlib.state.files import append_journal as append_journal
    from orchlib.state.files import file_id as file_id
    from orchlib.state.files import forget as forget
    from orchlib.state.files import load as load
    from orchlib.state.files import with_projects as with_projects
    from orchlib.state.files import write_state as write_state
    from orchlib.state.jsonform import JsonCache as JsonCache
    from orchlib.state.jsonform import from_json as from_json
    from orchlib.state.jsonform import to_json as to_json
    from orchlib.state.model import PlanState as PlanState
    from orchlib.state.model import PlanStatus as PlanStatus
    from orchlib.state.model import ProjectRecord as ProjectRecord
    from orchlib.state.model import Question as Question
    from orchlib.state.model import RunInfo as RunInfo
    from orchlib.state.model import Status as Status
    from orchlib.state.model import TaskRecord as TaskRecord
    from orchlib.state.model import has_open as has_open
    from orchlib.state.model import has_open_question as has_open_question
    from orchlib.state.model import merge_answers as merge_answers
    from orchlib.state.model import plan_status as plan_status
    from orchlib.state.model import qa_history as qa_history
    from orchlib.state.orchdir import write_failure as write_failure
    from orchlib.state.reconcile import reconcile as reconcile
    from orchlib.state.reconcile import reset_for_run as reset_for_run
    from orchlib.state.render import MarkdownRenderer as MarkdownRenderer
    from orchlib.state.store import COALESCE_SECONDS as COALESCE_SECONDS
    from orchlib.state.store import MAX_ERRORS as MAX_ERRORS
    from orchlib.state.store import PROGRESS_INTERVAL as PROGRESS_INTERVAL
    from orchlib.state.store import RENDER_SHARE as RENDER_SHARE
    from orchlib.state.store import StateStore as StateStore
    from orchlib.state.table import render_status as render_status
    from orchlib.state.transitions import apply_event as apply_event

_WHERE = {
    "COALESCE_SECONDS": "store",
    "JsonCache": "jsonform",
    "LOCK_FILE": "files",
    "LOCK_TIMEOUT": "files",
    "MARKDOWN_FILE": "files",
    "MAX_ERRORS": "store",
    "MarkdownRenderer": "render",
    "PROGRESS_INTERVAL": "store",
    "PlanState": "model",
    "PlanStatus": "model",
    "ProjectRecord": "model",
    "Question": "model",
    "RENDER_SHARE": "store",
    "RunInfo": "model",
    "STATE_FILE": "files",
    "StateStore": "store",
    "Status": "model",
    "TaskRecord": "model",
    "answer": "files",
    "append_journal": "files",
    "apply_event": "transitions",
    "file_id": "files",
    "forget": "files",
    "from_json": "jsonform",
    "has_open": "model",
    "has_open_question": "model",
    "load": "files",
    "merge_answers": "model",
    "plan_status": "model",
    "qa_history": "model",
    "reconcile": "reconcile",
    "render_status": "table",
    "reset_for_run": "reconcile",
    "to_json": "jsonform",
    "with_projects": "files",
    "write_failure": "orchdir",
    "write_state": "files",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """`orchlib.state.X`: X from the module that defines it, imported on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'orchlib.state' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"orchlib.state.{module}"), name)
    globals()[name] = value
    return value
