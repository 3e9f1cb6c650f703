"""The runtime layout: every path of `.orch/` named in one pure module."""

from __future__ import annotations

import ast
from pathlib import Path

from orchlib import layout
from orchlib.layout import Layout, of_orch
from orchlib.plan.checks import reserved_plan_id
from orchlib.state import stamps


def test_paths_of_one_plan_task() -> None:
    lay = Layout(Path("/c"))
    assert lay.stamp("p", "t.1") == Path("/c/.orch/p/stamps/t.1.json")
    assert lay.approval_stamp("p", "t") == Path("/c/.orch/p/stamps/t.json.approval")
    assert stamps.stamp_path(lay.orch, "p", "t.1") == lay.stamp("p", "t.1")
    assert lay.log("p", "t", 3) == Path("/c/.orch/p/logs/t.3.log")
    assert lay.log("p", "t", 3, "review.log") == Path("/c/.orch/p/logs/t.3.review.log")
    assert lay.prompt("p", "t", 2) == Path("/c/.orch/p/prompts/t.2.md")
    assert lay.race_record("p", "t") == Path("/c/.orch/p/logs/t.race.json")
    assert lay.state_file("p") == Path("/c/.orch/p/state.json")
    assert lay.worktree("p", "t+1") == Path("/c/.orch/worktrees/p/t+1")
    assert lay.plan_cache("ab") == Path("/c/.orch/cache/plan-ab.json")
    assert lay.db == Path("/c/.orch/doit.sqlite3") and lay.run_lock == Path("/c/.orch/run.lock")


def test_relative_and_from_orch() -> None:
    """A layout of `Path()` gives paths relative to the checkout (shown to users as such)."""
    assert Layout(Path()).mcp_run_log.as_posix() == ".orch/mcp-run.log"
    assert of_orch(Path("/c/.orch")) == Layout(Path("/c"))


def test_runtime_names_are_reserved_as_plan_ids() -> None:
    for name in (*layout.RUNTIME_NAMES, layout.RUN_LOCK, layout.DB_NAME, "Worktrees"):
        assert reserved_plan_id(name), name
    assert not reserved_plan_id("build")


def test_layout_is_pure() -> None:
    """The bottom of the layers: it imports nothing of orchlib's and does no I/O at import."""
    tree = ast.parse(Path(layout.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name if isinstance(node, ast.Import) else str(node.module)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "dataclasses", "pathlib"}
