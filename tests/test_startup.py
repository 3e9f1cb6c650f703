"""Start-up (issue 25): a run imports the modules of a feature only when a task uses it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Checkout

# What a plan of shell tasks never needs: races, reviews, prompts, `doit answer`'s lock.
FEATURES = {
    "filelock", "orchlib.run.race", "orchlib.run.racewin", "orchlib.run.review",
    "orchlib.run.changes", "orchlib.run.prompt",
}  # fmt: skip


def _plan(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "planId": "orch-abc123",
        "summary": "start-up",
        "projects": [{"name": "p", "path": "./p"}],
        "tasks": [
            {"id": "t1", "project": "p", "title": "first", **task},
            {"id": "t2", "project": "p", "title": "second", "dependsOn": ["t1"], **task},
        ],
    }


def _run_imports(checkout: Checkout) -> set[str]:
    """The modules a real `doit` run imported (Python's own `-X importtime` report)."""
    result = checkout.doit(env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert checkout.stamp("t1") and checkout.stamp("t2")
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def test_a_run_of_shell_tasks_imports_no_feature_it_does_not_use(checkout: Checkout) -> None:
    checkout.write_plan(_plan({"command": ["true"]}))
    imported = _run_imports(checkout)
    assert "orchlib.run.dispatch" in imported  # the report is read: the run's modules are in it
    assert imported & FEATURES == set()


def test_an_agent_task_imports_the_prompt_where_it_needs_it(checkout: Checkout) -> None:
    checkout.write_plan({**_plan({}), "agent": checkout.agent()})
    imported = _run_imports(checkout)
    assert "orchlib.run.prompt" in imported
    assert imported & FEATURES == {"orchlib.run.prompt"}


# What answering "nothing to do" from the cached plan never needs: the plan's validator (its
# key declarations and checks), the agent profiles, and the stdlib modules only they use.
NO_OP_SKIPS = {
    "orchlib.plan.schema", "orchlib.plan.keys", "orchlib.plan.level", "orchlib.plan.checks",
    "orchlib.agents", "orchlib.agents.base", "orchlib.agents.limits", "zoneinfo", "difflib",
    "orchlib.events", "orchlib.run.dispatch",
}  # fmt: skip


def _imports(result: Any) -> set[str]:
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def test_a_no_op_rerun_loads_neither_the_validator_nor_the_agent_profiles(
    checkout: Checkout,
) -> None:
    checkout.write_plan({**_plan({"command": ["true"]}), "agent": "claude"})
    assert checkout.doit().returncode == 0
    # The first no-op after a run reconciles the state files with the run's stamps once.
    assert checkout.doit().returncode == 0
    result = checkout.doit(env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to do" in result.stdout
    imported = _imports(result)
    assert "orchlib.plan.cache" in imported  # the report is read: the no-op's modules are in it
    assert imported & NO_OP_SKIPS == set()


def test_loading_a_checkout_freezes_what_it_loaded_out_of_the_collector(
    checkout: Checkout,
) -> None:
    import gc

    from orchlib.doitedge.loader import checkout_for

    checkout.write_plan(_plan({"command": ["true"]}))
    gc.unfreeze()
    try:
        co = checkout_for(checkout.root)
        assert "orch-abc123" in co.plans
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
