"""Races (DESIGN §16): N attempts at once in their own worktrees, verify picks the winner.

The real `doit` on real git repositories; the racers are the fake agent, told apart by
their attempt numbers (one per racer)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout, pid_alive
from test_worktrees import NO_GIT_CONFIG, git, make_repo, merges, out, run

from orchlib.errors import PlanError
from orchlib.plan.file import load_plan

PLAN = "race"
GOOD = [{"write": ["out.txt", "good\n"]}, {"done": "wrote the good one"}]
BAD = [{"write": ["out.txt", "bad\n"]}, {"done": "wrote a bad one"}]


def write(co: Checkout, task: dict[str, Any], isolated: bool = True) -> None:
    project: dict[str, Any] = {"name": "app", "path": "app"}
    if isolated:
        project["isolation"] = "worktree"
        project["parallel"] = 3
    plan: dict[str, Any] = {
        "planId": PLAN,
        "agents": {name: co.agent() for name in ("fa", "fb", "fc")},
        "agent": "fa",
        "defaults": {"retries": 0},
        "projects": [project],
        "tasks": [{"id": "t1", "project": "app", "title": "race for it",
                   "verify": "grep -q good out.txt", **task}],
    }  # fmt: skip
    co.write_plan(plan, f"{PLAN}.json")


def leftovers(repo: Any) -> tuple[list[str], list[str]]:
    trees = git(repo, "worktree", "list", "--porcelain").splitlines()
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    return [t for t in trees if t.startswith("worktree ")], branches


def test_the_racer_that_passes_verify_is_merged_and_the_others_removed(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    # the winner thinks a while: every racer has started before the race ends, on a loaded
    # machine too
    checkout.scenario({"t1": [BAD, [{"sleep": 1.5}, *GOOD], [{"say": "thinking"}, {"hang": True}]]})
    write(checkout, {"race": ["fa", "fb", "fc"]})
    result = run(checkout)
    assert result.returncode == 0, out(result)
    starts = checkout.records()
    assert sorted(r["attempt"] for r in starts) == [1, 2, 3]
    assert len({r["terminal_id"] for r in starts}) == 3 and len({r["cwd"] for r in starts}) == 3
    assert all("/.orch/worktrees/race/t1+" in r["cwd"] for r in starts)
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["race"] == {"winner": "fb", "racers": 3}
    assert stamp["attempt"] == 2 and stamp["agent"] == "fb"
    assert (repo / "out.txt").read_text() == "good\n"
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1+2'"]
    assert leftovers(repo) == ([f"worktree {repo}"], ["main"])
    hung = next(r for r in starts if r["attempt"] == 3)
    assert not pid_alive(hung["pid"]), "the losing racer is stopped"
    for n in (1, 2, 3):
        assert (checkout.root / ".orch" / PLAN / "logs" / f"t1.{n}.log").is_file()
    # Running time is work (each racer its own AttemptRan): at least the winner's 0.3 s.
    assert checkout.state(PLAN)["tasks"][0]["worked"] >= 0.3


def test_every_racer_failing_is_one_failed_attempt_and_the_retry_races_again(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [BAD, BAD, GOOD, BAD]})
    write(checkout, {"race": 2, "retries": 1})
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert "every racer failed" in result.stdout
    # The second race: racer 4 may be stopped before it ran, once racer 3 passed.
    assert {1, 2, 3} <= {r["attempt"] for r in checkout.records()} <= {1, 2, 3, 4}
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["attempt"] == 3
    assert stamp["race"] == {"winner": "fa", "racers": 2}
    assert leftovers(repo) == ([f"worktree {repo}"], ["main"])


def test_a_race_with_no_retry_left_fails_the_task(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [BAD]})
    write(checkout, {"race": 2})
    result = run(checkout)
    assert result.returncode != 0 and checkout.stamp("t1", PLAN) is None, out(result)
    assert len(checkout.records()) == 2 and "every racer failed" in result.stdout
    assert merges(repo) == [] and leftovers(repo) == ([f"worktree {repo}"], ["main"])


@pytest.mark.parametrize(
    ("task", "isolated", "says"),
    [
        ({"race": 2}, False, "'race' needs 'isolation: worktree'"),
        ({"race": 1}, True, "a race needs at least 2 racers, got 1"),
        ({"race": ["fa"]}, True, "a race needs at least 2 agents, got 1"),
        ({"race": ["fa", "nobody"]}, True, "unknown agent profile 'nobody'"),
    ],
)
def test_a_bad_race_is_a_located_plan_error(
    checkout: Checkout, task: dict[str, Any], isolated: bool, says: str
) -> None:
    write(checkout, task, isolated=isolated)
    with pytest.raises(PlanError) as err:
        load_plan(checkout.root / "plans" / f"{PLAN}.json", checkout.root)
    assert "tasks[0].race" in str(err.value) and says in str(err.value)


def test_a_race_holds_a_slot_per_racer(checkout: Checkout) -> None:
    make_repo(checkout.root / "app", {"README": "app\n"})
    (checkout.root / "other").mkdir()
    checkout.scenario({"t1": [[{"sleep": 0.6}, *GOOD], [{"sleep": 0.6}, *BAD]]})
    write(checkout, {"race": 2})
    path = checkout.root / "plans" / f"{PLAN}.json"
    data = json.loads(path.read_text())
    data["projects"].append({"name": "other", "path": "other"})
    data["tasks"].append({"id": "t2", "project": "other", "title": "independent"})
    path.write_text(json.dumps(data))
    result = run(checkout, "-n", "2")
    assert result.returncode == 0, out(result)
    starts = {(r["task"], r["attempt"]): r["start"] for r in checkout.records()}
    racers = [starts[("t1", 1)], starts[("t1", 2)]]
    # Both -n slots are the race's: the independent task starts only once the race ended.
    assert starts[("t2", 1)] >= min(racers) + 0.6, starts


HANG = [{"say": "racing"}, {"hang": True}]


def _log(co: Checkout, n: int) -> str:
    path = co.root / ".orch" / PLAN / "logs" / f"t1.{n}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_ctrl_c_stops_every_racer(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [HANG]})
    write(checkout, {"race": 2})
    proc = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(lambda: "racing" in _log(checkout, 1) and "racing" in _log(checkout, 2))
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stdout + stderr
    assert not [r for r in checkout.records() if pid_alive(r["pid"])]
    record = checkout.state(PLAN)["tasks"][0]
    assert record["status"] == "ERROR" and "interrupted by SIGINT" in record["error"]
    assert checkout.stamp("t1", PLAN) is None and merges(repo) == []


def test_a_killed_run_s_racers_are_stopped_and_the_race_runs_again_once(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [HANG]})
    write(checkout, {"race": 2})
    first = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(lambda: "racing" in _log(checkout, 1) and "racing" in _log(checkout, 2))
    old = [r["pid"] for r in checkout.records()]
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    checkout.scenario({"t1": [HANG, HANG, GOOD, BAD]})
    second = run(checkout)
    assert second.returncode == 0, out(second)
    assert not [pid for pid in old if pid_alive(pid)], "the killed run's racers are stopped"
    # Racer 4 may lose before its agent even ran: racer 3's DONE passes at once.
    assert {1, 2, 3} <= {r["attempt"] for r in checkout.records()} <= {1, 2, 3, 4}
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["attempt"] == 3 and stamp["race"]["racers"] == 2
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1+1'"]
    assert leftovers(repo) == ([f"worktree {repo}"], ["main"])


def test_race_and_approve_do_not_combine(checkout: Checkout) -> None:
    write(checkout, {"race": 2, "approve": True})
    with pytest.raises(PlanError) as err:
        load_plan(checkout.root / "plans" / f"{PLAN}.json", checkout.root)
    assert "tasks[0].race" in str(err.value) and "'approve: true' do not combine" in str(err.value)


def test_each_racer_is_reviewed_and_the_approved_one_wins(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    # Both pass verify; the reviewer rejects racer 1's work (attempt 1), approves racer 2's.
    slow_good = [{"sleep": 0.3}, *GOOD]
    checkout.scenario({"t1": [GOOD, slow_good],
                       "t1.review": [[{"say": "[REJECT:{tid}] not this one"}],
                                     [{"say": "[APPROVE:{tid}] this one"}]]})  # fmt: skip
    write(checkout, {"race": ["fa", "fb"], "review": "fc"})
    result = run(checkout)
    assert result.returncode == 0, out(result)
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["race"] == {"winner": "fb", "racers": 2}
    assert stamp["review"]["summary"] == "this one" and stamp["attempt"] == 2
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1+2'"]
    assert leftovers(repo) == ([f"worktree {repo}"], ["main"])


REAL_CLAUDE = os.environ.get("ORCH_REAL_CLAUDE", "")  # the path of a real `claude`


@pytest.mark.skipif(not REAL_CLAUDE, reason="set ORCH_REAL_CLAUDE to a real Claude Code")
def test_the_real_claude_code_races_the_fake_agent(checkout: Checkout, tmp_path: Path) -> None:
    """The real Claude Code against a scripted model on 127.0.0.1 races the fake agent,
    whose work fails verify: Claude's is merged."""
    from daskcluster import free_port

    home, port = tmp_path / "home", free_port()
    home.mkdir()
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    script = "echo good > out.txt && echo wrote out.txt"
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "scripted_anthropic.py"),
                               str(port), script])  # fmt: skip
    checkout.scenario({"t1": [BAD]})
    write(checkout, {"race": ["fa", "claude"]})
    path = checkout.root / "plans" / f"{PLAN}.json"
    data = json.loads(path.read_text())
    data["agents"]["claude"] = {"profile": "claude", "args": ["--allowedTools", "Bash"]}
    path.write_text(json.dumps(data))
    env = {"HOME": str(home), "PATH": f"{Path(REAL_CLAUDE).parent}:{os.environ['PATH']}",
           "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_API_KEY": "sk-scripted",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"}  # fmt: skip
    try:
        result = run(checkout, env=env)
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, out(result)
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["race"] == {"winner": "claude", "racers": 2}
    assert (repo / "out.txt").read_text() == "good\n"
    assert leftovers(repo) == ([f"worktree {repo}"], ["main"])


def test_a_run_killed_between_the_winner_s_merge_and_its_stamp_stamps_it_without_racing(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    # A post-merge hook (run after the merge commit is made, before orchlib stamps; not
    # skipped by --no-verify) holds that window open for the kill.
    marker = checkout.root / "merged"
    hook = repo / ".git" / "hooks" / "post-merge"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nsleep 60\n")
    hook.chmod(0o755)
    checkout.scenario({"t1": [GOOD, HANG, GOOD, GOOD]})  # a second race would win at once
    write(checkout, {"race": 2})
    first = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(marker.exists, timeout=60)
    os.killpg(first.pid, signal.SIGKILL)  # doit, git and the hook
    first.communicate(timeout=10)
    assert checkout.stamp("t1", PLAN) is None and len(merges(repo)) == 1
    record = checkout.root / ".orch" / PLAN / "logs" / "t1.race.json"
    assert json.loads(record.read_text())["branch"] == f"orch/{PLAN}/t1+1"
    hook.unlink()
    starts = len(checkout.records())
    second = run(checkout)
    assert second.returncode == 0, out(second)
    assert len(checkout.records()) == starts, "no second race"
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1+1'"]
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["attempt"] == 1
    assert stamp["race"] == {"winner": "fa", "racers": 2}
    assert stamp["merge"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert leftovers(repo) == ([f"worktree {repo}"], ["main"]) and not record.exists()
    assert (repo / "out.txt").read_text() == "good\n"


def test_a_racer_s_question_is_that_racer_failing_and_the_others_race_on(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    asks = [{"question": "Postgres or SQLite?"}]
    checkout.scenario({"t1": [asks, [{"sleep": 0.3}, *GOOD], asks, asks]})
    write(checkout, {"race": 2})
    assert run(checkout).returncode == 0  # racer 2 won while racer 1 waited for nobody
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["attempt"] == 2
    checkout.doit("forget", f"{PLAN}:t1")
    write(checkout, {"race": 2, "title": "race again"})
    result = run(checkout)  # attempts 3 and 4: both ask; the race is one failed attempt
    record = checkout.state(PLAN)["tasks"][0]
    assert result.returncode != 0 and record["status"] == "ERROR", out(result)
    assert "every racer failed" in record["error"] and "Postgres or SQLite?" in record["error"]
