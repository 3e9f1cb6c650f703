"""Review by another agent (DESIGN §16): the real `doit`, the fake agent as the worker and
as its reviewer (tests/fake_agent.py plays `<task>.review` when it reviews)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout, pid_alive
from test_profiles import STANDINS
from test_worktrees import NO_GIT_CONFIG, make_repo, merges, out, run

from orchlib.agents.streams import PlainText
from orchlib.errors import PlanError
from orchlib.plan import Limits
from orchlib.plan.file import load_plan
from orchlib.run.attemptstate import AttemptState, Result
from orchlib.run.markers import Kind, Marker, scan

PLAN = "rev"


def write(co: Checkout, tasks: list[dict[str, Any]], isolated: bool = False,
          review: object = "fake", agents: dict[str, Any] | None = None) -> None:  # fmt: skip
    """Plan `rev`: project `app`, its tasks done by the fake agent and reviewed by it too."""
    project: dict[str, Any] = {"name": "app", "path": "app"}
    if isolated:
        project["isolation"] = "worktree"
    plan: dict[str, Any] = {
        "planId": PLAN,
        "agents": {"fake": co.agent(), **(agents or {})},
        "agent": "fake",
        "defaults": {"review": review, "retries": 1},
        "projects": [project],
        "tasks": [{"project": "app", "title": f"do {t['id']}", **t} for t in tasks],
    }
    co.write_plan(plan, f"{PLAN}.json")


def starts(co: Checkout, name: str) -> list[dict[str, Any]]:
    return [r for r in co.records() if r["task"] == name]


def review_log(co: Checkout, task: str, attempt: int) -> Path:
    return co.root / ".orch" / PLAN / "logs" / f"{task}.{attempt}.review.log"


def test_an_approved_done_is_stamped_with_the_review(checkout: Checkout) -> None:
    (checkout.root / "app").mkdir()
    (checkout.root / "app" / "old.txt").write_text("untouched\n")
    checkout.scenario({"t1": [[{"write": ["a.txt", "alpha line\n"]}, {"done": "a.txt made"}]],
                       "t1.review": [[{"say": "[APPROVE:{tid}] a.txt holds alpha"}]]})  # fmt: skip
    write(checkout, [{"id": "t1", "verify": "test -f a.txt"}])
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert "reviewing (fake)" in result.stdout and "review by fake: APPROVE" in result.stdout
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["summary"] == "a.txt made"
    assert stamp["review"] == {
        "agent": "fake",
        "verdict": "approve",
        "summary": "a.txt holds alpha",
    }
    (reviewer,) = starts(checkout, "t1.review")
    (worker,) = starts(checkout, "t1")
    assert reviewer["terminal_id"] != worker["terminal_id"]
    assert reviewer["cwd"] == str(checkout.root / "app")
    prompt = reviewer["prompt"]  # the task, the summary and the files changed, not the others
    assert "do t1" in prompt and "a.txt made" in prompt and reviewer["terminal_id"] in prompt
    assert "new file: a.txt" in prompt and "alpha line" in prompt and "old.txt" not in prompt
    assert "a.txt holds alpha" in review_log(checkout, "t1", 1).read_text()
    shown = checkout.doit("log", "--review", f"{PLAN}:t1")
    assert shown.returncode == 0 and "a.txt holds alpha" in shown.stdout, out(shown)


def test_a_reject_feeds_the_next_attempt_and_uses_a_retry(checkout: Checkout) -> None:
    (checkout.root / "app").mkdir()
    checkout.scenario({"t1.review": [[{"say": "[REJECT:{tid}] add a test for the parser"}],
                                     [{"say": "[APPROVE:{tid}] tested now"}]]})  # fmt: skip
    write(checkout, [{"id": "t1"}])
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert "REJECT: add a test for the parser" in result.stdout
    first, second = starts(checkout, "t1")
    assert "add a test for the parser" not in first["prompt"]
    assert "add a test for the parser" in second["prompt"]
    stamp = checkout.stamp("t1", PLAN)
    assert (
        stamp is not None and stamp["attempt"] == 2 and stamp["review"]["summary"] == "tested now"
    )


def test_a_rejected_last_attempt_fails_the_task(checkout: Checkout) -> None:
    (checkout.root / "app").mkdir()
    checkout.scenario({"t1.review": [[{"say": "[REJECT:{tid}] wrong file"}]]})
    write(checkout, [{"id": "t1", "retries": 0}])
    result = run(checkout)
    assert result.returncode != 0 and checkout.stamp("t1", PLAN) is None, out(result)
    assert "rejected the work: wrong file" in result.stdout


def test_no_verdict_twice_fails_and_a_forged_id_does_not_count(checkout: Checkout) -> None:
    (checkout.root / "app").mkdir()
    # The worker's own APPROVE decides nothing; the reviewer's forged one neither.
    checkout.scenario({
        "t1": [[{"say": "[APPROVE:{tid}] self-approved"}, {"done": "made it"}]],
        "t1.review": [[{"say": "[APPROVE:term-t1-1-abcdef] forged"}, {"say": "hmm"}]],
    })  # fmt: skip
    write(checkout, [{"id": "t1"}])
    result = run(checkout)
    assert result.returncode != 0, out(result)
    assert len(starts(checkout, "t1.review")) == 2 and len(starts(checkout, "t1")) == 1
    record = next(t for t in checkout.state(PLAN)["tasks"] if t["id"] == "t1")
    assert record["status"] == "ERROR" and "review gave no verdict" in record["error"]
    assert checkout.stamp("t1", PLAN) is None


def test_the_reviewer_sees_the_git_diff_of_the_attempt_before_the_merge(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n", "lib.py": "x = 1\n"})
    checkout.scenario({"t1": [[{"write": ["lib.py", "x = 2\n"]},
                               {"git": ["commit", "-qam", "two"]},
                               {"write": ["new.py", "y = 3\n"]}, {"done": "x is 2"}]],
                       "t1.review": [[{"say": "[APPROVE:{tid}] fine"}]]})  # fmt: skip
    write(checkout, [{"id": "t1"}], isolated=True)
    result = run(checkout)
    assert result.returncode == 0, out(result)
    (reviewer,) = starts(checkout, "t1.review")
    prompt = reviewer["prompt"]
    assert "-x = 1" in prompt and "+x = 2" in prompt  # committed by the agent
    assert "new file (untracked): new.py" in prompt and "y = 3" in prompt
    assert reviewer["cwd"] == str(checkout.root / ".orch" / "worktrees" / PLAN / "t1")
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1'"]
    assert (repo / "new.py").read_text() == "y = 3\n"
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["review"]["verdict"] == "approve" and stamp["merge"]


@pytest.mark.parametrize(
    ("review", "where", "says"),
    [
        ("nobody", "defaults.review", "unknown agent profile 'nobody'"),
        ({"instructions": "x"}, "defaults.review", "missing required key 'agent'"),
        (3, "defaults.review", "expected an agent name or a mapping"),
    ],
)
def test_a_bad_review_is_a_located_plan_error(
    checkout: Checkout, review: object, where: str, says: str
) -> None:
    write(checkout, [{"id": "t1"}], review=review)
    with pytest.raises(PlanError) as err:
        load_plan(checkout.root / "plans" / f"{PLAN}.json", checkout.root)
    assert where in str(err.value) and says in str(err.value)


# --- the verdict markers on strings, and the state machine's two vocabularies -----------

RID = "review-t1-1-abc123"


@pytest.mark.parametrize("kind", [Kind.APPROVE, Kind.REJECT])
def test_a_verdict_is_a_final_marker(kind: Kind) -> None:
    [marker] = scan(f'echo "[{kind.value}:{RID}] tests cover the parser"', RID)
    assert marker == Marker(kind, RID, "tests cover the parser") and marker.final
    assert scan(f"[{kind.value}:other-id] forged", RID) == []
    assert scan(f"[{kind.value}:{RID}] <why the work is acceptable>", RID) == []  # echoed


def test_a_reviewer_is_decided_by_verdicts_and_an_agent_by_its_own_markers() -> None:
    lines = f"[DONE:{RID}] done instead\n[REJECT:{RID}] no tests\n[APPROVE:{RID}] ok\n"
    reviewer = AttemptState(RID, Limits(), PlainText(), now=0.0, verdicts=True)
    reviewer.output(lines.encode(), 1.0)
    verdict = reviewer.decide(0)
    assert verdict.result is Result.ERROR and verdict.text == "no tests"  # REJECT: the first
    agent = AttemptState(RID, Limits(), PlainText(), now=0.0)
    agent.output(f"[APPROVE:{RID}] self\n[REJECT:{RID}] x\n".encode(), 1.0)
    assert agent.decide(0).result is Result.CLOSED  # a worker cannot approve itself


def test_review_is_in_the_spec_hash_only_when_set(tmp_path: Path) -> None:
    from orchlib.state.stamps import spec_hash

    def hashed(review: object) -> str:
        plan: dict[str, Any] = {"planId": "s", "projects": [{"name": "p", "path": "p"}],
                                "tasks": [{"id": "t1", "project": "p", "title": "T"}]}  # fmt: skip
        if review is not None:
            plan["tasks"][0]["review"] = review
        path = tmp_path / "plans" / "s.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(plan))
        loaded = load_plan(path, tmp_path)
        return spec_hash(loaded, loaded.tasks["t1"], "TEMPLATE")

    plain, codex = hashed(None), hashed("codex")
    assert (
        len({plain, codex, hashed("claude"), hashed({"agent": "codex", "instructions": "x"})}) == 4
    )
    assert hashed({"agent": "codex"}) == codex


# --- composition: Ctrl-C, a killed run, a usage limit -------------------------------------


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout + stderr


def test_ctrl_c_stops_the_reviewer_and_interrupts_the_task(checkout: Checkout) -> None:
    (checkout.root / "app").mkdir()
    checkout.scenario({"t1.review": [[{"say": "reading"}, {"hang": True}]]})
    write(checkout, [{"id": "t1"}])
    proc = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(lambda: "reading" in _text(review_log(checkout, "t1", 1)))
    (reviewer,) = starts(checkout, "t1.review")

    def t1() -> dict[str, Any]:
        return next(t for t in checkout.state(PLAN)["tasks"] if t["id"] == "t1")

    # state.json follows the event within its write batch, not before the reviewer prints
    checkout.wait_for(lambda: t1()["lastUpdate"] == "reviewing (fake)")
    assert t1()["status"] == "IN_PROGRESS"
    os.kill(proc.pid, signal.SIGINT)
    code, said = _finish(proc)
    assert code == 130 and "Traceback" not in said, said
    assert not pid_alive(reviewer["pid"])
    record = next(t for t in checkout.state(PLAN)["tasks"] if t["id"] == "t1")
    assert record["status"] == "ERROR" and "interrupted by SIGINT" in record["error"]
    assert checkout.stamp("t1", PLAN) is None and len(starts(checkout, "t1")) == 1


def test_a_killed_run_s_review_is_started_again_and_merged_once(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [[{"write": ["a.txt", "a\n"]}, {"done": "a.txt"}]],
                       "t1.review": [[{"say": "reading"}, {"hang": True}]]})  # fmt: skip
    write(checkout, [{"id": "t1"}], isolated=True)
    first = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(lambda: "reading" in _text(review_log(checkout, "t1", 1)))
    (old,) = starts(checkout, "t1.review")
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    checkout.scenario({"t1": [[{"done": "should not run"}]],
                       "t1.review": [[{"say": "[APPROVE:{tid}] a.txt is right"}]]})  # fmt: skip
    second = run(checkout)
    assert second.returncode == 0, out(second)
    assert not pid_alive(old["pid"]), "the killed run's reviewer is stopped"
    assert len(starts(checkout, "t1")) == 1 and len(starts(checkout, "t1.review")) == 2
    prompt = starts(checkout, "t1.review")[1]["prompt"]
    assert "a.txt" in prompt  # the baseline noted at the attempt's start survived
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1'"]
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["review"]["summary"] == "a.txt is right"


def test_a_reviewer_at_its_usage_limit_waits_and_uses_no_retry(
    checkout: Checkout, tmp_path: Path
) -> None:
    (checkout.root / "app").mkdir()
    until = time.time() + 4  # the agent must start before it ends, on a loaded machine too
    critic = {"profile": "claude", "env": {"STANDIN_LIMIT_UNTIL": f"{until:.3f}",
                                           "STANDIN_MODE": "approve"}}  # fmt: skip
    write(checkout, [{"id": "t1", "retries": 0}], review="critic", agents={"critic": critic})
    calls = tmp_path / "calls.jsonl"
    path = f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}"
    result = run(checkout, env={"PATH": path, "STANDIN_RECORD": str(calls),
                                "STANDIN_SUMMARY": "fine by me"})  # fmt: skip
    assert result.returncode == 0, out(result)
    assert "review by critic waits" in result.stdout
    assert len(calls.read_text().splitlines()) == 2 and len(starts(checkout, "t1")) == 1
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["review"] == {
        "agent": "critic", "verdict": "approve", "summary": "fine by me",
        **({"usage": stamp["review"]["usage"]} if "usage" in stamp["review"] else {}),
    }  # fmt: skip


def test_a_reviewer_s_usage_counts_to_the_task_s_budget_and_stops_it(
    checkout: Checkout, tmp_path: Path
) -> None:
    (checkout.root / "app").mkdir()
    # A claude reviewer that reports usage step by step and keeps working (DESIGN §15).
    critic = {"profile": "claude", "env": {"STANDIN_STEPS": "40", "STANDIN_STEP_SLEEP": "0.25",
                                           "STANDIN_MODE": "approve"}}  # fmt: skip
    write(checkout, [{"id": "t1", "retries": 2, "budget": {"tokens": 100}}], review="critic",
          agents={"critic": critic})  # fmt: skip
    calls = tmp_path / "calls.jsonl"
    path = f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}"
    began = time.monotonic()
    result = run(checkout, env={"PATH": path, "STANDIN_RECORD": str(calls)})
    assert result.returncode != 0, out(result)
    assert time.monotonic() - began < 8  # 40 steps of 0.25 s: stopped at the crossing
    assert len(calls.read_text().splitlines()) == 1  # no second start, no retry
    assert checkout.stamp("t1", PLAN) is None
    record = {t["id"]: t for t in checkout.state(PLAN)["tasks"]}["t1"]
    assert record["status"] == "ERROR" and record["error"].startswith("budget spent:")
    assert record["spend"]["tokens"] > 100


def test_a_reviewer_cli_missing_from_path_is_named_before_dispatch(checkout: Checkout) -> None:
    (checkout.root / "app").mkdir()
    write(checkout, [{"id": "t1"}], review="codex")
    result = run(checkout, env={"PATH": "/nonexistent-bin"})
    assert result.returncode == 3 and checkout.records() == [], out(result)
    assert "reviewer agent 'codex' not found on PATH (tasks t1)" in result.stderr
    assert "set review: in plans/rev.json" in result.stderr


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def test_the_dashboard_serves_the_reviewer_s_transcript(checkout: Checkout) -> None:
    from webclient import serving

    (checkout.root / "app").mkdir()
    checkout.scenario({"t1.review": [[{"say": "[APPROVE:{tid}] checked by the critic"}]]})
    write(checkout, [{"id": "t1"}])
    assert run(checkout).returncode == 0
    with serving(checkout.root) as server:
        reviewed = server.get(f"/api/plans/{PLAN}/tasks/t1/log?review=1")
        assert reviewed.status == 200 and b"checked by the critic" in reviewed.body
        plain = server.get(f"/api/plans/{PLAN}/tasks/t1/log")
        assert b"checked by the critic" not in plain.body
        assert server.get(f"/api/plans/{PLAN}/tasks/t1/log?review=1&attempt=2").status == 404


def test_with_approve_a_person_approves_after_the_review(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [[{"write": ["a.txt", "a\n"]}, {"done": "a.txt"}]],
                       "t1.review": [[{"say": "[APPROVE:{tid}] reviewed"}]]})  # fmt: skip
    write(checkout, [{"id": "t1", "approve": True}], isolated=True)
    first = run(checkout)
    assert first.returncode != 0 and "review by fake: APPROVE" in first.stdout, out(first)
    record = next(t for t in checkout.state(PLAN)["tasks"] if t["id"] == "t1")
    assert record["status"] == "APPROVAL" and merges(repo) == []
    approved = checkout.doit("approve", f"{PLAN}:t1", env=NO_GIT_CONFIG)
    assert approved.returncode == 0, out(approved)
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["review"]["summary"] == "reviewed" and stamp["merge"]


def test_the_reviewer_runs_in_the_task_s_sandbox(checkout: Checkout, tmp_path: Path) -> None:
    from orchlib.executors.sandbox import probe

    if (why := probe()) is not None:
        pytest.skip(f"no sandbox here: {why}")
    (checkout.root / "app").mkdir()
    (checkout.root / "other").mkdir()
    checkout.scenario({"t1.review": [[{"try_write": ["../other/x.txt", "review {tid}"]},
                                      {"try_write": ["note.txt", "review {tid}"]},
                                      {"say": "[APPROVE:{tid}] fine"}]]})  # fmt: skip
    write(checkout, [{"id": "t1"}])
    path = checkout.root / "plans" / f"{PLAN}.json"
    data = json.loads(path.read_text())
    data["defaults"]["sandbox"] = "bwrap"
    data["projects"].append({"name": "other", "path": "other"})
    path.write_text(json.dumps(data))
    rec = tmp_path / "rec"  # the record file must be writable inside the box
    rec.mkdir()
    data["sandboxWritable"] = [str(rec)]
    data["agents"]["fake"]["command"][-1] = str(rec / "record.jsonl")
    path.write_text(json.dumps(data))
    checkout.record_file = rec / "record.jsonl"
    result = run(checkout)
    assert result.returncode == 0, out(result)
    said = review_log(checkout, "t1", 1).read_text()
    assert "REFUSED ../other/x.txt" in said and "WROTE note.txt" in said
    assert not (checkout.root / "other" / "x.txt").exists()


REAL_CLAUDE = os.environ.get("ORCH_REAL_CLAUDE", "")  # the path of a real `claude`


@pytest.mark.skipif(not REAL_CLAUDE, reason="set ORCH_REAL_CLAUDE to a real Claude Code")
def test_the_real_claude_code_reviews(checkout: Checkout, tmp_path: Path) -> None:
    """The real Claude Code as the reviewer, against a scripted model on 127.0.0.1."""
    import sys

    from daskcluster import free_port

    home, port = tmp_path / "home", free_port()
    home.mkdir()
    (checkout.root / "app").mkdir()
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "scripted_anthropic.py"),
                               str(port)])  # fmt: skip
    checkout.scenario({"t1": [[{"write": ["a.txt", "alpha\n"]}, {"done": "a.txt written"}]]})
    write(checkout, [{"id": "t1"}], review="critic", agents={"critic": {"profile": "claude"}})
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
    assert stamp is not None and stamp["review"]["agent"] == "critic"
    assert stamp["review"]["summary"] == "scripted review: a.txt", stamp["review"]
    assert stamp["review"].get("usage"), "the reviewer's own usage, as the CLI reported it"


REAL_CODEX = os.environ.get("ORCH_REAL_CODEX", "")  # the path of a real `codex`


@pytest.mark.skipif(not (REAL_CLAUDE and REAL_CODEX), reason="set ORCH_REAL_CLAUDE and "
                    "ORCH_REAL_CODEX to a real Claude Code and Codex CLI")  # fmt: skip
def test_the_real_codex_reviews_the_real_claude_code_s_work(
    checkout: Checkout, tmp_path: Path
) -> None:
    """Two real CLIs of two vendors: Claude Code does the task, Codex reviews it, each
    against its scripted model on 127.0.0.1 (tests/scripted_anthropic.py, _responses.py)."""
    import sys

    from daskcluster import free_port

    home, ports = tmp_path / "home", (free_port(), free_port())
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(
        'model = "scripted"\nmodel_provider = "scripted"\n[model_providers.scripted]\n'
        f'name = "scripted"\nbase_url = "http://127.0.0.1:{ports[1]}/v1"\n'
        'env_key = "SCRIPTED_API_KEY"\nwire_api = "responses"\n'
    )
    (checkout.root / "app").mkdir()
    here = Path(__file__).parent
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                str(here / "scripted_anthropic.py"),
                str(ports[0]),
                "echo alpha > a.txt && echo wrote a.txt",
            ]
        ),
        subprocess.Popen([sys.executable, str(here / "scripted_responses.py"), str(ports[1])]),
    ]
    write(checkout, [{"id": "t1"}], review="critic",
          agents={"critic": {"profile": "codex"}, "worker": {"profile": "claude"}})  # fmt: skip
    plan_file = checkout.root / "plans" / f"{PLAN}.json"
    plan = json.loads(plan_file.read_text())
    plan["agent"] = "worker"
    # codex's custom provider reads its key from a variable the default policy withholds
    plan["environment"] = {"include": ["SCRIPTED_API_KEY"]}
    plan_file.write_text(json.dumps(plan))
    bins = f"{Path(REAL_CLAUDE).parent}:{Path(REAL_CODEX).parent}"
    env = {"HOME": str(home), "PATH": f"{bins}:{os.environ['PATH']}",
           "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{ports[0]}", "ANTHROPIC_API_KEY": "sk-scripted",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
           "SCRIPTED_API_KEY": "sk-test-0123456789"}  # fmt: skip
    try:
        result = run(checkout, env=env)
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    assert result.returncode == 0, out(result)
    stamp = checkout.stamp("t1", PLAN)
    assert stamp is not None and stamp["agent"] == "worker", stamp
    assert stamp["review"]["agent"] == "critic" and stamp["review"]["verdict"] == "approve"
    assert stamp["review"]["summary"] == "scripted review", stamp["review"]
    assert (checkout.root / "app" / "a.txt").read_text() == "alpha\n"
