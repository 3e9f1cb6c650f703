"""Approval by a person (DESIGN §16): `approve: true`, `doit approve`, `doit reject`.

The real `doit` on real git repositories with the fake agent, as in tests/test_worktrees.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout
from test_worktrees import NO_GIT_CONFIG, assert_clean, make_repo, merges, out, run, tree

from orchlib.errors import PlanError
from orchlib.plan.file import load_plan

PLAN = "iso"
SINK = (
    "import json, sys\n"
    "with open(sys.argv[1], 'a') as f: f.write(json.dumps(sys.argv[2:]) + '\\n')\n"
)


def write(co: Checkout, tasks: list[dict[str, Any]], sink: Path | None = None) -> None:
    """Plan `iso`: the isolated project `app` whose tasks a person approves."""
    plan: dict[str, Any] = {
        "planId": PLAN,
        "agent": co.agent(),
        "defaults": {"approve": True, "retries": 0},
        "projects": [{"name": "app", "path": "app", "isolation": "worktree"}],
        "tasks": [{"project": "app", "title": f"do {t['id']}", **t} for t in tasks],
    }
    if sink is not None:
        script = sink.parent / "sink.py"
        script.write_text(SINK)
        plan["notify"] = [{"command": [sys.executable, str(script), str(sink), "{event}",
                                       "{message}"]}]  # fmt: skip
    co.write_plan(plan, f"{PLAN}.json")


def doit(co: Checkout, *args: str) -> Any:
    return co.doit(*args, env=NO_GIT_CONFIG)


def record(co: Checkout, task: str) -> dict[str, Any]:
    return next(t for t in co.state(PLAN)["tasks"] if t["id"] == task)


def test_a_checked_task_waits_for_approval_and_approve_merges_and_stamps_it(
    checkout: Checkout, tmp_path: Path
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [[{"write": ["a.txt", "a\n"]}, {"done": "a.txt written"}]]})
    sink = tmp_path / "notes.jsonl"
    write(checkout, [{"id": "t1", "verify": "test -f a.txt"},
                     {"id": "t2", "dependsOn": ["t1"], "approve": False}], sink)  # fmt: skip
    first = run(checkout)
    assert first.returncode != 0, out(first)  # as for a question
    assert "APPROVAL: a.txt written" in first.stdout and f"doit approve {PLAN}:t1" in first.stdout
    assert f"{PLAN}:t2" in first.stdout and "t1 waits for approval" in first.stdout
    assert record(checkout, "t1")["status"] == "APPROVAL"
    assert checkout.stamp("t1", PLAN) is None, "not stamped before a person approves"
    assert (tree(checkout, "t1") / "a.txt").is_file() and not (repo / "a.txt").exists()
    assert "[APPROVAL]" in checkout.md(PLAN)
    status = doit(checkout, "status").stdout
    assert "APPROVAL" in status and f"doit approve {PLAN}:t1" in status
    dry = doit(checkout, "--dry-run").stdout
    assert f"waits      {PLAN}:t1" in dry and "(for approval: not dispatched)" in dry, dry
    assert f"skipped    {PLAN}:t2" in dry and f"(behind {PLAN}:t1, which waits)" in dry, dry
    assert "0 would run, 2 waiting or behind one" in dry, dry
    info = doit(checkout, "info", f"{PLAN}:t1").stdout
    assert f"{PLAN}:t1: waits for approval" in info and "APPROVAL (attempt 1)" in info, info
    notes = [json.loads(line) for line in sink.read_text().splitlines()]
    approvals = [n for n in notes if n[0] == "task_approval"]
    assert len(approvals) == 1 and "a.txt written" in approvals[0][1]
    assert not [n for n in notes if n[0] == "plan_failed"], "waiting is not failing"
    # Another run without a decision dispatches nothing and still waits.
    again = run(checkout)
    assert again.returncode != 0 and "still waiting for approval" in again.stdout, out(again)
    assert checkout.dispatched() == ["t1"]
    approved = doit(checkout, "approve", f"{PLAN}:t1")
    assert approved.returncode == 0, out(approved)
    assert "approved (merged into the project)" in approved.stdout
    assert (repo / "a.txt").read_text() == "a\n"
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1'"]
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["merge"]["branch"] == f"orch/{PLAN}/t1"
    assert record(checkout, "t1")["status"] == "DONE"
    twice = doit(checkout, "approve", f"{PLAN}:t1")
    assert twice.returncode == 3 and twice.stderr.strip().splitlines() == [
        f"orchlib: {PLAN}:t1 is not waiting for approval (it is DONE)"
    ]
    last = run(checkout)
    assert last.returncode == 0, out(last)
    assert checkout.dispatched() == ["t1", "t2"], "t1 is not redone; its dependent runs"
    assert_clean(repo)


def test_reject_reruns_the_task_with_the_feedback_in_its_worktree_using_no_retry(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    first = [{"write": ["a.txt", "spaces\n"]}, {"done": "a.txt"}]
    checkout.scenario({"t1": [first, [{"write": ["b.txt", "tabs\n"]}, {"done": "b.txt too"}]]})
    write(checkout, [{"id": "t1"}])  # retries: 0
    assert run(checkout).returncode != 0
    rejected = doit(checkout, "reject", f"{PLAN}:t1", "use tabs=yes, not spaces")
    assert rejected.returncode == 0, out(rejected)
    assert record(checkout, "t1")["status"] == "PENDING"
    assert record(checkout, "t1")["rejected"] == "use tabs=yes, not spaces"
    assert checkout.stamp("t1", PLAN) is None
    second = run(checkout)
    assert second.returncode != 0 and "APPROVAL: b.txt too" in second.stdout, out(second)
    retry = checkout.records()[-1]
    assert retry["attempt"] == 2 and "use tabs=yes, not spaces" in retry["prompt"]
    assert retry["cwd"] == str(tree(checkout, "t1")), "it continues in its worktree"
    assert doit(checkout, "approve", f"{PLAN}:t1").returncode == 0
    assert (repo / "a.txt").is_file() and (repo / "b.txt").is_file()
    assert record(checkout, "t1")["rejected"] == ""
    assert_clean(repo)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("approve", f"{PLAN}:t1"), f"{PLAN}:t1 is not waiting for approval (it is PENDING)"),
        (("reject", f"{PLAN}:t1", "x"), f"{PLAN}:t1 is not waiting for approval (it is PENDING)"),
        (("approve", f"{PLAN}:nope"), f"unknown task '{PLAN}:nope'"),
        (("reject", f"{PLAN}:t1", " "), "say what to change"),
        (("reject", f"{PLAN}:t1"), 'usage: doit reject PLAN:TASK "what to change"'),
        (("approve",), "usage: doit approve PLAN:TASK"),
    ],
)
def test_approve_and_reject_refuse_cleanly(
    checkout: Checkout, args: tuple[str, ...], says: str
) -> None:
    write(checkout, [{"id": "t1"}])
    result = doit(checkout, *args)
    assert result.returncode != 0 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("orchlib: ") and says in line, line
    assert checkout.dispatched() == []


def test_approve_must_be_true_or_false(tmp_path: Path) -> None:
    plan = {"planId": "p", "projects": [{"name": "a", "path": "a", "approve": "yes"}],
            "tasks": [{"id": "t", "project": "a", "title": "t"}]}  # fmt: skip
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.json").write_text(json.dumps(plan, indent=1))
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "plans" / "p.json", tmp_path)
    (line,) = caught.value.lines()
    assert "projects[0].approve:" in line, line


def test_info_says_a_task_waits_for_a_person_and_runs_in_a_sandbox(checkout: Checkout) -> None:
    plan = {"planId": "pl", "agent": checkout.agent(),
            "projects": [{"name": "a", "path": "a", "approve": True}],
            "tasks": [{"id": "t1", "project": "a", "title": "t1", "sandbox": "bwrap"},
                      {"id": "t2", "project": "a", "title": "t2", "approve": False}]}  # fmt: skip
    checkout.write_plan(plan, "pl.json")
    first = checkout.doit("info", "pl:t1").stdout
    assert "  sandbox: bwrap (it writes its own project folder only)\n" in first, first
    assert "  approve: by a person: doit approve / doit reject once its checks pass\n" in first
    second = checkout.doit("info", "pl:t2").stdout
    assert "sandbox:" not in second and "approve:" not in second, second
    boxed = checkout.doit("info", "pl:t2", env={"ORCH_SANDBOX": "bwrap"}).stdout
    assert "  sandbox: bwrap" in boxed


def test_without_isolation_approval_waits_and_approve_stamps(checkout: Checkout) -> None:
    plan = {"planId": "pl", "agent": checkout.agent(),
            "projects": [{"name": "a", "path": "a", "approve": True}],
            "tasks": [{"id": "t1", "project": "a", "title": "t1"}]}  # fmt: skip
    checkout.write_plan(plan, "pl.json")
    assert checkout.doit().returncode != 0
    assert checkout.stamp("t1", "pl") is None
    approved = checkout.doit("approve", "pl:t1")
    assert approved.returncode == 0 and "approved;" in approved.stdout, out(approved)
    assert checkout.stamp("t1", "pl") is not None
    again = checkout.doit()
    assert again.returncode == 0 and checkout.dispatched() == ["t1"], out(again)


def test_the_dashboard_approves_and_rejects_with_the_token(checkout: Checkout) -> None:
    from webclient import serving

    plan = {"planId": "pl", "agent": checkout.agent(), "defaults": {"approve": True},
            "projects": [{"name": "a", "path": "a"}],
            "tasks": [{"id": t, "project": "a", "title": t} for t in ("t1", "t2")]}  # fmt: skip
    checkout.write_plan(plan, "pl.json")
    assert checkout.doit().returncode != 0
    with serving(checkout.root) as server:
        url = "/api/plans/pl/tasks/{}/{}"
        assert server.post(url.format("t1", "approve"), {}, auth=False).status == 403
        assert server.post(url.format("t2", "reject"), {"feedback": "x"}, auth=False).status == 403
        key = f"?token={server.token}"
        assert server.post(url.format("t2", "reject") + key, {"feedback": " "}).status == 400
        assert server.post(url.format("t9", "approve") + key, {}).status == 404
        done = server.post(url.format("t1", "approve") + key, {})
        assert done.status == 200 and "approved" in done.json()["message"]
        again = server.post(url.format("t1", "approve") + key, {})
        assert again.status == 409 and "not waiting for approval" in again.json()["error"]
        no = server.post(url.format("t2", "reject"), {"feedback": "shorter"})  # Bearer token
        assert no.status == 200 and "rejected" in no.json()["message"]
    assert checkout.stamp("t1", "pl") is not None and checkout.stamp("t2", "pl") is None
    tasks = {t["id"]: t for t in checkout.state("pl")["tasks"]}
    assert (tasks["t1"]["status"], tasks["t2"]["rejected"]) == ("DONE", "shorter")


def test_a_decision_is_refused_while_a_run_is_going(checkout: Checkout) -> None:
    go = checkout.root / "GO"
    plan = {"planId": "pl", "agent": checkout.agent(),
            "projects": [{"name": "a", "path": "a", "approve": True}, {"name": "b", "path": "b"}],
            "tasks": [{"id": "t1", "project": "a", "title": "t1"},
                      {"id": "t2", "project": "b", "title": "t2"}]}  # fmt: skip
    checkout.write_plan(plan, "pl.json")
    checkout.scenario({"t2": [[{"wait_file": str(go)}, {"done": "t2"}]]})
    running = checkout.start()
    try:
        state = checkout.root / ".orch" / "pl" / "state.json"
        checkout.wait_for(lambda: state.exists() and '"APPROVAL"' in state.read_text())
        for args in (("approve", "pl:t1"), ("reject", "pl:t1", "no")):
            refused = checkout.doit(*args)
            assert refused.returncode != 0, refused.stdout
            (line,) = refused.stderr.strip().splitlines()
            assert f"cannot {args[0]} while another doit run holds" in line, line
    finally:
        go.touch()
        running.communicate(timeout=60)
    assert checkout.stamp("t1", "pl") is None
    assert checkout.doit("approve", "pl:t1").returncode == 0


def test_reject_puts_the_skipped_dependents_back_and_nothing_reads_as_failed(
    checkout: Checkout,
) -> None:
    tasks = [{"id": "t1", "approve": True}, {"id": "t2", "dependsOn": ["t1"]},
             {"id": "t3", "dependsOn": ["t2"]}]  # fmt: skip
    plan = {"planId": "pl", "agent": checkout.agent(), "projects": [{"name": "a", "path": "a"}],
            "tasks": [{"project": "a", "title": t["id"], **t} for t in tasks]}  # fmt: skip
    checkout.write_plan(plan, "pl.json")
    assert checkout.doit().returncode != 0
    tasks = {t["id"]: t for t in checkout.state("pl")["tasks"]}
    assert [tasks[t]["status"] for t in ("t1", "t2", "t3")] == ["APPROVAL", "SKIPPED", "SKIPPED"]
    assert checkout.state("pl")["status"] == "waiting", "waiting on a person is not failing"
    rejected = checkout.doit("reject", "pl:t1", "again")
    assert rejected.returncode == 0, out(rejected)
    for read in (checkout.state, lambda p: checkout.doit("status") and checkout.state(p)):
        now = read("pl")
        tasks = {t["id"]: t for t in now["tasks"]}
        assert now["status"] == "pending", now["status"]
        assert [tasks[t]["status"] for t in ("t1", "t2", "t3")] == ["PENDING"] * 3
        assert tasks["t2"]["skippedBecause"] == [] and tasks["t2"]["pendingReason"]
    assert "status: pending\n" in checkout.md("pl")


def test_reject_on_a_shell_task_says_it_gets_no_feedback_and_runs_it_again(
    checkout: Checkout,
) -> None:
    plan = {"planId": "pl", "projects": [{"name": "a", "path": "a"}],
            "tasks": [{"id": "t1", "project": "a", "title": "t1", "approve": True,
                       "command": "echo ran >> runs.txt"}]}  # fmt: skip
    checkout.write_plan(plan, "pl.json")
    assert checkout.doit().returncode != 0
    rejected = checkout.doit("reject", "pl:t1", "do it better")
    assert rejected.returncode == 0, out(rejected)
    assert "a shell task gets no feedback" in rejected.stdout, rejected.stdout
    assert checkout.doit().returncode != 0  # it ran again and waits again
    assert (checkout.root / "a" / "runs.txt").read_text() == "ran\nran\n"
