"""The `environment` policy (DESIGN §13): the pure function on dicts, the plan key, and real
child processes (shell tasks, verify, stand-in CLIs, a dask worker) dumping what they got."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout

from orchlib import agents
from orchlib.agents.base import Logins
from orchlib.errors import PlanError
from orchlib.plan import AgentSpec
from orchlib.plan.environment import EnvLayer, EnvPolicy, Snapshot, compose, nearer, withheld
from orchlib.plan.file import load_plan

STANDINS = Path(__file__).parent / "standins"
SECRET = "aws-secret-0123456789"
BASE = {
    "PATH": "/usr/bin",
    "HOME": "/home/u",
    "LC_ALL": "C.UTF-8",
    "PWD": "/work",
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "aws_session_token": "lower-case-token",
    "GITHUB_TOKEN": "ghp_0123456789",
    "ANTHROPIC_API_KEY": "sk-ant-0123456789",
    "OPENAI_API_KEY": "sk-openai-0123456789",
    "NODE_ENV": "development",
}


# --- the pure function -------------------------------------------------------------------


def test_default_policy_withholds_secrets_and_other_clis_logins() -> None:
    env = compose(BASE, EnvPolicy(), agents.logins(None), {"TERMINAL_ID": "t"})
    assert env == {"PATH": "/usr/bin", "HOME": "/home/u", "LC_ALL": "C.UTF-8", "PWD": "/work",
                   "NODE_ENV": "development", "TERMINAL_ID": "t"}  # fmt: skip


def test_an_agent_gets_its_own_login_whatever_exclude_says() -> None:
    claude = agents.logins(AgentSpec(name="claude", profile="claude"))
    codex = agents.logins(AgentSpec(name="codex", profile="codex"))
    assert "ANTHROPIC_API_KEY" in compose(BASE, EnvPolicy(), claude, {})
    assert "OPENAI_API_KEY" not in compose(BASE, EnvPolicy(), claude, {})
    assert "ANTHROPIC_API_KEY" not in compose(BASE, EnvPolicy(), codex, {})
    # Even with nothing excluded, another CLI's login stays out unless included by name.
    loose = EnvPolicy(exclude=())
    assert "ANTHROPIC_API_KEY" not in compose(BASE, loose, codex, {})
    assert compose(BASE, loose, codex, {})["AWS_SECRET_ACCESS_KEY"] == SECRET
    assert "ANTHROPIC_API_KEY" in compose(BASE, EnvPolicy(include=("ANTHROPIC_*",)), codex, {})


def test_include_inherit_set_and_overlay() -> None:
    policy = EnvPolicy(inherit="core", include=("github_token",), set={"NODE_ENV": "test"})
    env = compose(BASE, policy, Logins(), {"NODE_ENV": "agent"})
    # Core names and LC_*, the included name (globs ignore case), then set, then the overlay.
    assert env == {"PATH": "/usr/bin", "HOME": "/home/u", "LC_ALL": "C.UTF-8",
                   "GITHUB_TOKEN": "ghp_0123456789", "NODE_ENV": "agent"}  # fmt: skip
    none = compose(BASE, EnvPolicy(inherit="none", set={"A": "1"}), Logins(), {})
    assert none == {"A": "1"}


def test_no_policy_passes_everything() -> None:
    assert compose(BASE, None, agents.logins(None), {"A": "1"}) == {**BASE, "A": "1"}


def test_a_snapshot_composes_as_compose_does_and_keeps_its_base() -> None:
    claude = agents.logins(AgentSpec(name="claude", profile="claude"))
    policies = [
        None,
        EnvPolicy(),
        EnvPolicy(inherit="core", set={"A": "1"}),
        EnvPolicy(exclude=(), include=("OPENAI_*",)),
        EnvPolicy(inherit="none"),
    ]
    base = dict(BASE)
    snap = Snapshot(base)
    base["LATE"] = "added after the snapshot"
    for policy in policies * 2:  # the second round answers from the memo
        for logins in (claude, agents.logins(None)):
            overlay = {"TERMINAL_ID": "t", "PATH": "/override"}
            got = snap.compose(policy, logins, overlay)
            assert got == compose(BASE, policy, logins, overlay)
            got["MUTATED"] = "x"  # a caller's changes do not reach the next task
    assert "MUTATED" not in snap.compose(EnvPolicy(), claude, {})
    assert "LATE" not in snap.compose(None, claude, {})


def test_withheld_names_the_secrets_not_what_inherit_leaves_out() -> None:
    names = withheld(BASE, EnvPolicy(inherit="core"), agents.logins(None))
    assert names == ["ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN",
                     "OPENAI_API_KEY", "aws_session_token"]  # fmt: skip
    assert "PWD" not in names and "NODE_ENV" not in names


def test_nearest_level_wins_field_by_field() -> None:
    plan = nearer(EnvPolicy(), EnvLayer(exclude=("*KEY*",), set={"A": "1", "B": "1"}))
    task = nearer(plan, EnvLayer(include=("X",), set={"B": "2"}))
    assert task == EnvPolicy(exclude=("*KEY*",), include=("X",), set={"A": "1", "B": "2"})


def test_every_profile_declares_its_login_variables() -> None:
    for name, profile in agents.PROFILES.items():
        assert profile.login, name
    assert {"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"} <= set(agents.PROFILES["claude"].login)
    assert {"OPENAI_API_KEY", "CODEX_API_KEY"} <= set(agents.PROFILES["codex"].login)
    assert {"GEMINI_API_KEY", "GOOGLE_API_KEY"} <= set(agents.PROFILES["gemini"].login)


# --- the plan key ------------------------------------------------------------------------


def test_bad_environment_values_are_located_plan_errors(tmp_path: Path) -> None:
    plan = tmp_path / "plans" / "p.yaml"
    plan.parent.mkdir()
    plan.write_text(
        "planId: p\n"
        "environment: {inherit: some}\n"
        "projects:\n"
        "  - {name: a, path: a, environment: {exclude: '*KEY*'}}\n"
        "tasks:\n"
        "  - id: t1\n"
        "    project: a\n"
        "    title: x\n"
        "    environment: {include: [1], set: {'a b': x}, sett: {}}\n"
    )
    with pytest.raises(PlanError) as caught:
        load_plan(plan, tmp_path)
    assert caught.value.lines() == [
        "plans/p.yaml:2:24: environment.inherit: 'some' is not one of all, core, none",
        "plans/p.yaml:4:47: projects[0].environment.exclude: "
        "expected a list of variable names or globs, got a string",
        "plans/p.yaml:9:29: tasks[0].environment.include[0]: expected a string, got a number",
        "plans/p.yaml:9:38: tasks[0].environment.set: bad environment variable name 'a b'",
        "plans/p.yaml:9:50: tasks[0].environment.sett: unknown key 'sett' (did you mean 'set'?)",
    ]


def test_the_policy_is_not_in_the_spec_hash(checkout: Checkout) -> None:
    checkout.write_plan(shell_plan({}))
    assert checkout.doit().returncode == 0
    checkout.write_plan(shell_plan({"set": {"NODE_ENV": "production"}, "include": ["X"]}))
    assert "up to date" in checkout.doit("info", "env:t1").stdout


# --- real processes ----------------------------------------------------------------------

ENV_DUMP = f"{sys.executable} -c 'import json,os,sys; json.dump(dict(os.environ), open(sys.argv[1], \"w\"))'"  # noqa: E501


def shell_plan(policy: dict[str, Any], **task: Any) -> dict[str, Any]:
    return {
        "planId": "env",
        "environment": policy,
        "projects": [{"name": "a", "path": "a", "environment": {"include": ["GITHUB_TOKEN"]}}],
        "tasks": [{"id": "t1", "project": "a", "title": "dump", **task,
                   "command": f"{ENV_DUMP} env.json", "verify": f"{ENV_DUMP} verify.json"}],
    }  # fmt: skip


def dumped(checkout: Checkout, name: str) -> dict[str, str]:
    return dict(json.loads((checkout.root / "a" / name).read_text()))


def test_shell_task_and_verify_see_the_policy_not_the_secrets(checkout: Checkout) -> None:
    agent = {"profile": "shell", "env": {"FROM_AGENT_ENV": "yes"}}
    checkout.write_plan(shell_plan({"set": {"NODE_ENV": "test"}}, agent=agent))
    secrets = {"AWS_SECRET_ACCESS_KEY": SECRET, "GITHUB_TOKEN": "ghp_0123456789",
               "ANTHROPIC_API_KEY": "sk-ant-0123456789"}  # fmt: skip
    result = checkout.doit(env=secrets)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("env.json", "verify.json"):
        env = dumped(checkout, name)
        assert "AWS_SECRET_ACCESS_KEY" not in env and "ANTHROPIC_API_KEY" not in env, name
        assert env["GITHUB_TOKEN"] == "ghp_0123456789" and env["NODE_ENV"] == "test", name
        assert env["FROM_AGENT_ENV"] == "yes" and env["PATH"] == os.environ["PATH"], name
    info = checkout.doit("info", "env:t1", env=secrets).stdout
    assert "withheld: ANTHROPIC_API_KEY, AWS_SECRET_ACCESS_KEY" in info
    assert SECRET not in info and "ghp_" not in info


def test_inherit_none_starts_from_nothing_but_set(checkout: Checkout) -> None:
    checkout.write_plan(shell_plan({"inherit": "none", "set": {"PATH": os.environ["PATH"]}}))
    assert checkout.doit(env={"NODE_ENV": "dev", "GITHUB_TOKEN": "g" * 12}).returncode == 0
    env = dumped(checkout, "env.json")
    assert "NODE_ENV" not in env and "HOME" not in env and env["GITHUB_TOKEN"] == "g" * 12
    assert env["ORCH_TASK_ID"] == "t1"


def test_claude_agent_gets_its_key_codex_agent_does_not(checkout: Checkout, tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    checkout.write_plan({
        "planId": "env",
        "projects": [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}],
        "tasks": [{"id": "c1", "project": "a", "title": "c", "agent": "claude"},
                  {"id": "x1", "project": "b", "title": "x", "agent": "codex"}],
    })  # fmt: skip
    env = {
        "PATH": f"{STANDINS}{os.pathsep}{os.environ['PATH']}",
        "STANDIN_RECORD": str(record),
        "STANDIN_RECORD_ENV": "ANTHROPIC_API_KEY,OPENAI_API_KEY,AWS_SECRET_ACCESS_KEY",
        "ANTHROPIC_API_KEY": "sk-ant-0123456789",
        "OPENAI_API_KEY": "sk-openai-0123456789",
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    result = checkout.doit(env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = {c["program"]: c["env"] for c in map(json.loads, record.read_text().splitlines())}
    assert calls["claude"].get("ANTHROPIC_API_KEY") == "sk-ant-0123456789"
    assert "OPENAI_API_KEY" not in calls["claude"]
    assert calls["codex"].get("OPENAI_API_KEY") == "sk-openai-0123456789"
    assert "ANTHROPIC_API_KEY" not in calls["codex"]
    assert all("AWS_SECRET_ACCESS_KEY" not in seen for seen in calls.values())


@pytest.mark.slow
@pytest.mark.xdist_group("dask")
def test_on_dask_the_worker_environment_is_the_base(checkout: Checkout) -> None:
    from daskcluster import DaskCluster

    cluster = DaskCluster()
    try:
        worker_env = {"ONLY_ON_WORKER": "w1", "AWS_SECRET_ACCESS_KEY": "worker-secret-123"}
        cluster.add_worker(env=worker_env)
        checkout.write_plan(shell_plan({"set": {"NODE_ENV": "test"}}))
        result = checkout.doit("--executor", "dask", "--scheduler", cluster.address,
                               env={"ONLY_ON_ORCHESTRATOR": "o1"})  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        cluster.stop()
    for name in ("env.json", "verify.json"):
        env = dumped(checkout, name)
        assert env["ONLY_ON_WORKER"] == "w1" and "ONLY_ON_ORCHESTRATOR" not in env, name
        assert "AWS_SECRET_ACCESS_KEY" not in env and env["NODE_ENV"] == "test", name
