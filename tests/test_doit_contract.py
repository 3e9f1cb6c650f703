"""The parts of doit orchlib relies on, checked against the installed doit (pyproject pins
the versions): the names `doitapi` imports, the Runner hooks `PlanRunner` overrides and
calls, the dispatcher protocol it drives, and how few modules import doit at all."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import doit.runner
from doit.control import TaskControl
from doit.dependency import Dependency, SqliteDB
from doit.reporter import ConsoleReporter
from doit.task import Task

import orchlib
from orchlib.doitedge import doitapi
from orchlib.doitedge.runner import PlanRunner

MAX_DOIT_MODULES = 8


def test_every_name_orchlib_takes_from_doit_exists() -> None:
    for name in doitapi.__all__:
        assert getattr(doitapi, name) is not None, name
    assert isinstance(doitapi.cmdline_vars(), Mapping)


def test_the_runner_hooks_plan_runner_uses_have_their_signatures() -> None:
    runner = doit.runner.Runner
    assert list(inspect.signature(runner.__init__).parameters)[:3] == [
        "self", "dep_manager", "reporter",
    ]  # fmt: skip
    expected = {
        "run_all": ["self", "task_dispatcher"],
        "run_tasks": ["self", "task_dispatcher"],
        "select_task": ["self", "node", "tasks_dict"],
        "execute_task": ["self", "task"],
        "process_task_result": ["self", "node", "base_fail"],
        "finish": ["self"],
        "teardown": ["self"],
    }
    for name, params in expected.items():
        assert list(inspect.signature(getattr(runner, name)).parameters) == params, name
    assert isinstance(doit.runner.ERROR, int)
    for name in ("run_tasks", "execute_task", "finish"):  # what PlanRunner overrides
        assert getattr(PlanRunner, name) is not getattr(runner, name), name


def _tasks() -> list[Task]:
    first = Task("first", [(lambda: True, (), {})])
    second = Task("second", [(lambda: True, (), {})], task_dep=["first"])
    return [first, second]


def test_the_dispatcher_protocol_plan_runner_drives(tmp_path: Path) -> None:
    """send(None) gives a ready node; "hold on" while every other task waits on a running
    one; sending back the finished node releases its dependents; StopIteration at the end."""
    control = TaskControl(_tasks())
    control.process(None)
    dispatcher = control.task_dispatcher()
    assert set(dispatcher.tasks) == {"first", "second"}
    assert list(dispatcher.selected_tasks) == ["first", "second"]
    dep = Dependency(SqliteDB, str(tmp_path / "db"))
    runner: Any = doit.runner.Runner(dep, ConsoleReporter(_Sink(), {}))
    node = dispatcher.generator.send(None)
    assert node.task.name == "first" and runner.select_task(node, dispatcher.tasks)
    assert dispatcher.generator.send(None) == "hold on"
    runner.process_task_result(node, runner.execute_task(node.task))
    after = dispatcher.generator.send(node)
    assert after.task.name == "second"
    try:
        while dispatcher.generator.send(after) == "hold on":
            pass
    except StopIteration:
        pass
    else:
        raise AssertionError("the dispatcher did not end")
    assert runner.final_result == doit.runner.SUCCESS and runner._stop_running is False
    dep.close()


class _Sink:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def test_at_most_eight_modules_import_doit() -> None:
    package = Path(orchlib.__file__).parent
    importers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if _imports_doit(ast.parse(path.read_text(encoding="utf-8")))
    )
    assert len(importers) <= MAX_DOIT_MODULES, importers
    assert all(name.startswith("doitedge/") for name in importers), importers


def _imports_doit(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name == "doit" or a.name.startswith("doit.") for a in node.names
        ):
            return True
        module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
        if module == "doit" or module.startswith("doit."):
            return True
    return False


def test_loading_orchlibs_commands_leaves_the_run_machinery_unimported() -> None:
    """Every `doit` on a machine with orchlib imports its commands: they must stay cheap
    (no state store, file locks or process code until a run has work)."""
    import subprocess
    import sys

    code = (
        "import sys, orchlib.doitedge.commands, orchlib.doitedge.loader; "
        "print(sorted(m for m in sys.modules if m in {'filelock', 'jinja2', "
        "'orchlib.state.store', 'orchlib.executors.local', 'orchlib.run.dispatch'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
