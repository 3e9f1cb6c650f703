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
from orchlib import executorregistry
from orchlib.doitedge import doitapi, loader
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
        "import sys, orchlib.doitedge.commands, orchlib.doitedge.runcmd, "
        "orchlib.doitedge.loader; "
        "print(sorted(m for m in sys.modules if m in {'filelock', 'jinja2', "
        "'orchlib.state.store', 'orchlib.executors.local', 'orchlib.run.dispatch'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_orchlibs_execute_methods_name_doits_options_then_their_own() -> None:
    """doit passes `_execute` the options its parameters name: each override names doit's
    own, in doit's order (no `__signature__` patched on), then orchlib's."""
    from doit.cmd_clean import Clean
    from doit.cmd_forget import Forget
    from doit.cmd_info import Info
    from doit.cmd_list import List
    from doit.cmd_run import Run

    from orchlib.doitedge import commands, runcmd

    pairs = [(runcmd.Run, Run), (commands.Clean, Clean), (commands.List, List),
             (commands.Forget, Forget), (commands.Info, Info)]  # fmt: skip
    for ours, doits in pairs:
        theirs = list(inspect.signature(doits._execute).parameters)
        mine = list(inspect.signature(ours._execute).parameters)
        assert mine[: len(theirs)] == theirs, ours
        assert "__signature__" not in vars(ours._execute), ours
    own = {o["name"] for o in runcmd.Run.cmd_options} - {o["name"] for o in Run.cmd_options}
    run = list(inspect.signature(runcmd.Run._execute).parameters)
    assert own - set(run) == {o.name for o in executorregistry.options()}  # read in `execute`


def test_a_task_creator_gets_a_flagless_parameter_from_the_loaders_task_opts() -> None:
    """How `doit run`'s selection reaches orchlib.dodo's `task_orchlib`: doit's API for
    creator parameters (`@task_params`, valued through the loader's `task_opts`); an option
    without flags shows in no help and no command line sets it."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.cmdparse import CmdOption

    seen: list[Any] = []

    @doitapi.task_params(loader.CREATOR_PARAMS)
    def task_orchlib(run_selection: Any = None) -> Any:
        seen.append(run_selection)
        yield from ()

    task_loader = ModuleTaskLoader({f"task_{loader.CREATOR}": task_orchlib})
    cmd = type("Cmd", (), {"execute_tasks": True})()
    with loader.run_selection(task_loader, ["p:t1"]):
        task_loader.load_tasks(cmd, ["p:t1"])
    assert task_loader.task_opts is None
    task_loader.load_tasks(cmd, ["p:t1"])
    assert seen == [["p:t1"], None]
    assert CmdOption(loader.CREATOR_PARAMS[0]).help_doc() == []


def test_a_command_holds_its_loader_and_its_loaded_tasks() -> None:
    """What `checkout_of` and `run_selection` read: `self.loader`, then `self.task_list`
    set by `DoitCmdBase.execute` from `loader.load_tasks(cmd=self, pos_args=args)`."""
    from doit.cmd_base import DoitCmdBase

    source = inspect.getsource(DoitCmdBase.execute)
    assert "self.task_list = self.loader.load_tasks(cmd=self, pos_args=args)" in source
    assert "self.loader = task_loader" in inspect.getsource(DoitCmdBase.__init__)


def test_the_signature_a_plan_tasks_check_gives_doit_is_its_calls() -> None:
    """doit passes `task` / `values` to an uptodate check whose signature names them; the
    check says its signature itself (it is asked on every task), so it must be true."""
    assert "__signature__" in vars(loader.UpToDate)  # stated once, not worked out per task
    check = loader.UpToDate.__new__(loader.UpToDate)
    called = inspect.signature(loader.UpToDate.__call__).parameters
    assert list(inspect.signature(check).parameters) == [n for n in called if n != "self"]
