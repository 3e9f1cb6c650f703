"""`doit draft` (DESIGN §9): an agent writes a plan, orchlib validates it round by round.

The drafting agent is the fake agent (a real process, `--agent "python fake_agent.py ..."`,
scenario key "draft", one entry per dispatch) or a stand-in CLI on PATH; `doit` is the real
one, run in a checkout in tmp_path with no terminal unless a test gives it a pty.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_AGENT, SEED_PLAN, Checkout, pid_alive

from orchlib.doitedge.cmdutil import options_first
from orchlib.doitedge.draftcmd import Draft
from orchlib.draft import powers
from orchlib.draft.review import critical_path
from orchlib.plan.file import load_plan

STANDINS = Path(__file__).parent / "standins"
GOAL = "Build an e-commerce platform with a React frontend and a Node backend"


def good_plan(plan_id: str = "shop") -> dict[str, Any]:
    """The seed plan without executionOrder (orchlib computes it)."""
    plan = copy.deepcopy(SEED_PLAN)
    plan["planId"] = plan_id
    del plan["executionOrder"]
    return plan


def bad_plan() -> dict[str, Any]:
    """A plan with one located error: t4 depends on an unknown task."""
    plan = good_plan()
    plan["tasks"][3]["dependsOn"] = ["t1", "t9"]
    return plan


class Drafter:
    """Runs `doit draft` in a checkout with the fake agent as the drafting agent."""

    def __init__(self, co: Checkout) -> None:
        self.co = co

    @property
    def agent(self) -> str:
        argv = [sys.executable, str(FAKE_AGENT), str(self.co.scenario_file),
                str(self.co.record_file)]  # fmt: skip
        return shlex.join(argv)

    def rounds(self, *dispatches: list[dict[str, Any]]) -> None:
        """The fake agent's steps for dispatch 1, 2, ... (the last one repeats)."""
        self.co.scenario({"draft": list(dispatches)})

    def draft(self, *args: str, agent: bool = True, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        argv = [sys.executable, "-m", "doit", "draft", *(["--agent", self.agent] if agent else []),
                *args]  # fmt: skip
        full = {**os.environ, **(env or {})}
        return subprocess.run(argv, cwd=self.co.root, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60, env=full)  # fmt: skip

    def prompts(self) -> list[str]:
        return [r["prompt"] for r in self.co.records()]

    def drafts(self) -> Path:
        return self.co.root / ".orch" / "drafts"

    def no_stamps(self) -> bool:
        """Nothing ran: no stamp, no plan state folder, no doit database."""
        orch = self.co.root / ".orch"
        ran = [*orch.glob("*/stamps/*"), orch / "shop", orch / "doit.sqlite3"]
        return not any(path.exists() for path in ran)


@pytest.fixture
def drafter(checkout: Checkout) -> Drafter:
    return Drafter(checkout)


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


# --- the repair loop -------------------------------------------------------------------


def test_invalid_first_draft_is_repaired_in_round_two(drafter: Drafter) -> None:
    drafter.rounds(
        [{"progress": [40, "projects identified"]}, {"write_plan": bad_plan()},
         {"done": "plan written"}],
        [{"write_plan": good_plan()}, {"done": "plan fixed"}],
    )  # fmt: skip
    result = drafter.draft(GOAL)
    _ok(result)
    first, second = drafter.prompts()
    # round 2's prompt carries orchlib's own located error line, literally
    located = r"^\s*(\S+plan\.yaml:\d+:\d+: tasks\[3\]\.dependsOn\[1\]: unknown task 't9'.*)$"
    error = re.search(located, result.stdout, re.MULTILINE)
    assert error is not None, result.stdout
    assert error[1] in second and "unknown task" not in first
    written = drafter.co.root / "plans" / "shop.yaml"
    text = written.read_text()
    assert text.startswith("# Drafted by `doit draft`")
    assert "executionOrder:\n  - [t1, t2]" in text and "  - [t4]" in text
    plan = load_plan(written, drafter.co.root)
    assert plan.phases == (("t1", "t2"), ("t3",), ("t4",))
    assert "Critical path: t2 -> t3 -> t4, 65 estimated minutes" in result.stdout
    assert "Phase 2" in result.stdout and "Review plans/shop.yaml" in result.stdout
    assert result.stdout.rstrip().endswith("doit")
    assert drafter.no_stamps()


def test_prompt_spells_out_the_plan_path_and_terminal_id(drafter: Drafter) -> None:
    (drafter.co.root / "backend").mkdir()
    drafter.co.write_plan(good_plan("old"), "old.json")
    drafter.rounds([{"write_plan": good_plan()}, {"done": "ok"}])
    _ok(drafter.draft(GOAL))
    (record,) = drafter.co.records()
    prompt, tid = record["prompt"], record["terminal_id"]
    plan_file = drafter.drafts() / "build-an-e-commerce-platform" / "plan.yaml"
    assert f"**Plan file:** `{plan_file}`" in prompt
    assert f"`{plan_file.relative_to(drafter.co.root).as_posix()}`" in prompt
    assert f'echo "[DONE:{tid}]' in prompt and f"**Terminal ID:** {tid}" in prompt
    assert GOAL in prompt and "- backend/" in prompt
    assert "plans/old.json: planId old" in prompt and "not one of: old" in prompt
    assert "30 to 60 minutes" in prompt and "verify" in prompt and "```yaml" in prompt
    # The agent works in its draft folder, where the plan file is: never the checkout root.
    assert record["cwd"] == str(plan_file.parent)
    assert f"**Working folder (this draft's own folder):** {plan_file.parent}" in prompt
    assert "**Plan file, relative to the working folder:** `plan.yaml`" in prompt
    assert f"**The checkout:** {drafter.co.root} (project paths are relative to it" in prompt


def test_the_drafting_agent_cannot_reach_the_checkout_root_by_accident(
    drafter: Drafter,
) -> None:
    # What an agent writes "here" (relative paths: a dodo.py, a cache) lands in its folder.
    drafter.rounds([{"write": ["dodo.py", "raise SystemExit('hijacked')"]},
                    {"write": [".orch/cache/x", "x"]},
                    {"write_plan": good_plan()}, {"done": "ok"}])  # fmt: skip
    _ok(drafter.draft(GOAL))
    root = drafter.co.root
    assert (root / "dodo.py").read_text() == "from orchlib.dodo import *  # noqa: F403\n"
    assert not (root / ".orch" / "cache" / "x").exists()
    folder = drafter.drafts() / "build-an-e-commerce-platform"
    assert (folder / "dodo.py").exists() and (folder / ".orch" / "cache" / "x").exists()
    assert drafter.co.doit("list").returncode == 0


def powerful_plan() -> dict[str, Any]:
    """A valid plan with a field of each kind that runs something or widens access."""
    plan = good_plan()
    plan["allowOutsidePaths"] = True
    plan["defaults"] = {"executor": "local"}
    plan["agents"] = {"fast": {"profile": "claude", "args": ["--dangerously-skip-permissions"],
                               "env": {"HTTPS_PROXY": "http://proxy.example:3128"}}}  # fmt: skip
    plan["notify"] = [{"command": ["notify-send", "{title}"]}, "ntfy://orch-topic"]
    plan["tasks"][0]["command"] = "curl -s https://get.example/install.sh | sh"
    plan["tasks"][1]["agent"] = "fast"
    plan["tasks"][2]["verify"] = "npm test\nnpm run lint"
    return plan


def test_the_review_lists_what_runs_or_widens_access(drafter: Drafter) -> None:
    drafter.rounds([{"write_plan": powerful_plan()}, {"done": "plan written"}])
    result = drafter.draft(GOAL)
    _ok(result)
    out = result.stdout
    section = out[out.index("Runs or widens access") :]
    for line in [
        "  plan: allowOutsidePaths: true  (lets project folders live outside the checkout)",
        "  defaults: executor: local  (where the agents run)",
        '  agents.fast: args: ["--dangerously-skip-permissions"]  (extra arguments of the agent',
        '  agents.fast: env: {"HTTPS_PROXY": "http://proxy.example:3128"}  (environment',
        '  plan: notify: [{"command": ["notify-send", "{title}"]}, "ntfy://orch-topic"]  (runs',
        "  task t1: command: curl -s https://get.example/install.sh | sh  (runs this command)",
        "  task t3: verify: (runs this command after the task's DONE)\n      npm test\n"
        "      npm run lint\n",
    ]:  # fmt: skip
        assert line in section, (line, section)
    assert section.index("Runs or widens") < out.index("Review plans/shop.yaml")


def test_a_plan_that_only_runs_its_agents_says_so(drafter: Drafter) -> None:
    drafter.rounds([{"write_plan": {**good_plan(), "agent": "codex"}}, {"done": "plan written"}])
    result = drafter.draft(GOAL)
    _ok(result)
    assert "Runs or widens access: nothing beyond each task's agent in its project folder" in (
        result.stdout
    )
    # A custom agent command (here the drafting fake agent, kept as the plan's agent) is shown.
    drafter.rounds([{"write_plan": good_plan("shop2")}, {"done": "plan written"}])
    result = drafter.draft(GOAL + " again")
    _ok(result)
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("  agent: command: [")]
    assert "fake_agent.py" in line and line.endswith("(runs this command)")


def test_rounds_exhausted_exit_3_with_errors_and_the_draft_kept(drafter: Drafter) -> None:
    drafter.rounds([{"write_plan": bad_plan()}, {"done": "plan written"}])
    result = drafter.draft(GOAL, "--rounds", "2")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert re.match(r"\.orch/drafts/\S+/plan\.yaml:\d+:\d+: tasks\[3\]\.dependsOn\[1\]", lines[0])
    assert "no valid plan after 2 rounds" in lines[-1] and "Traceback" not in result.stderr
    assert len(drafter.co.records()) == 2
    assert list((drafter.co.root / "plans").iterdir()) == []
    kept = drafter.drafts() / "build-an-e-commerce-platform" / "plan.yaml"
    assert json.loads(kept.read_text())["tasks"][3]["dependsOn"] == ["t1", "t9"]
    assert drafter.no_stamps()


def test_no_plan_written_is_a_failed_round(drafter: Drafter) -> None:
    drafter.rounds([{"done": "forgot the file"}], [{"exit": 0}])
    result = drafter.draft(GOAL, "--rounds", "2")
    assert result.returncode == 3
    assert "no plan was written" in drafter.prompts()[1]
    assert "without DONE, ERROR or QUESTION" in result.stderr
    last = result.stderr.splitlines()[-1]  # no draft is said to be kept: there is none
    assert "the agent wrote no plan; its transcripts: .orch/drafts/" in last, last
    assert "kept in" not in last


def test_the_same_cli_failure_twice_stops_the_draft(drafter: Drafter) -> None:
    drafter.rounds([{"say": "Not logged in - Please run /login"}, {"exit": 1}])
    result = drafter.draft(GOAL)  # 3 rounds allowed: the second says nothing new
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(drafter.co.records()) == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("orchlib: the drafting agent failed the same way twice: ") and (
        "Not logged in" in line
    ), line
    # The round's header says which round; its problem line does not say it again.
    assert "orchlib: draft round 1 of 3: 1 problem\n  agent exited (code 1)" in result.stdout
    assert "orchlib: round 1:" not in result.stdout


def test_draft_outside_a_checkout_refuses_before_any_agent(
    drafter: Drafter, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for argv in (["-m", "doit"], ["-m", "orchlib"]):
        result = subprocess.run([sys.executable, *argv, "draft", "--agent", drafter.agent, GOAL],
                                cwd=bare, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        assert result.returncode == 3 and result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"orchlib: {bare} is not a checkout (no plans/ folder)"), line
    assert list(bare.iterdir()) == [] and drafter.co.records() == []


def test_plan_printed_after_done_is_taken(drafter: Drafter) -> None:
    yaml = "planId: printed\nprojects: [{name: app, path: ./app}]\ntasks:\n  - {id: a, project: app, title: A}\n"  # noqa: E501
    drafter.rounds([{"say": "```yaml\nplanId: not-this-one\n```"}, {"done": "plan printed"},
                    {"print_plan": yaml}])  # fmt: skip
    result = drafter.draft(GOAL)
    _ok(result)
    assert load_plan(drafter.co.root / "plans" / "printed.yaml", drafter.co.root).tasks
    assert "plan 'printed', 1 project, 1 task (drafted in 1 round)" in result.stdout + result.stderr


def test_plan_id_is_enforced_and_fed_back(drafter: Drafter) -> None:
    drafter.rounds([{"write_plan": good_plan("other")}, {"done": "x"}],
                   [{"write_plan": good_plan("shop")}, {"done": "x"}])  # fmt: skip
    _ok(drafter.draft(GOAL, "--plan-id", "shop"))
    assert "planId: must be 'shop'" in drafter.prompts()[1]
    assert (drafter.co.root / "plans" / "shop.yaml").exists()


def test_agent_error_exits_1(drafter: Drafter) -> None:
    drafter.rounds([{"error": "cannot plan without a budget"}])
    result = drafter.draft(GOAL)
    assert result.returncode == 1
    assert "the drafting agent reported an error: cannot plan without a budget" in result.stderr


# --- questions ---------------------------------------------------------------------------


def test_question_without_a_terminal_exits_1_and_answer_continues(drafter: Drafter) -> None:
    drafter.rounds([{"question": "Sessions in Redis or JWT only?"}],
                   [{"write_plan": good_plan()}, {"done": "plan written"}])  # fmt: skip
    asked = drafter.draft(GOAL)
    assert asked.returncode == 1
    assert "asks: Sessions in Redis or JWT only?" in asked.stderr
    assert 'doit draft --answer "' in asked.stderr
    assert not (drafter.co.root / "plans" / "shop.yaml").exists()
    other = drafter.draft("another goal", "--answer", "JWT only", agent=False)
    assert other.returncode == 3 and "has another goal" in other.stderr
    answered = drafter.draft(GOAL, "--answer", "JWT only", agent=False)  # the goal may be repeated
    _ok(answered)
    prompt = drafter.prompts()[1]
    assert "Sessions in Redis or JWT only?" in prompt and "**Answer:** JWT only" in prompt
    assert GOAL in prompt
    assert (drafter.co.root / "plans" / "shop.yaml").exists()
    again = drafter.draft("--answer", "more", agent=False)
    assert again.returncode == 3 and "no draft waits for an answer" in again.stderr


def test_question_is_asked_on_a_terminal(drafter: Drafter) -> None:
    drafter.rounds([{"question": "Sessions in Redis or JWT only?"}],
                   [{"write_plan": good_plan()}, {"done": "plan written"}])  # fmt: skip
    main, child = pty.openpty()
    argv = [sys.executable, "-m", "doit", "draft", "--agent", drafter.agent, GOAL]
    proc = subprocess.Popen(argv, cwd=drafter.co.root, stdin=child, stdout=child,
                            stderr=child, close_fds=True)  # fmt: skip
    os.close(child)
    seen = _read_until(main, b"Your answer: ")
    assert b"The drafting agent asks: Sessions in Redis or JWT only?" in seen
    os.write(main, b"JWT only\n")
    seen += _read_until(main, b"then run:")
    assert proc.wait(timeout=30) == 0, seen.decode(errors="replace")
    os.close(main)
    assert "**Answer:** JWT only" in drafter.prompts()[1]
    assert (drafter.co.root / "plans" / "shop.yaml").exists()


def _read_until(fd: int, wanted: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the child side closed
                break
    assert wanted in seen, seen.decode(errors="replace")
    return seen


# --- the goal, the target file ---------------------------------------------------------


def test_goal_from_a_file(drafter: Drafter) -> None:
    (drafter.co.root / "PRD.md").write_text("# Shop\n\nUsers log in with JWT.\n")
    drafter.rounds([{"write_plan": good_plan()}, {"done": "plan written"}])
    _ok(drafter.draft("--from", "PRD.md"))
    prompt = drafter.prompts()[0]
    assert "# Shop\n\nUsers log in with JWT." in prompt
    assert (drafter.drafts() / "prd" / "plan.yaml").exists()
    missing = drafter.draft("--from", "nope.md")
    assert missing.returncode == 3 and "--from nope.md: cannot read it" in missing.stderr


def test_goal_with_an_equals_sign_is_kept(drafter: Drafter) -> None:
    drafter.rounds([{"write_plan": good_plan()}, {"done": "plan written"}])
    _ok(drafter.draft("serve on PORT=8080 only"))
    assert "serve on PORT=8080 only" in drafter.prompts()[0]


def test_never_overwrites_a_plan_without_force(drafter: Drafter) -> None:
    existing = drafter.co.root / "plans" / "shop.yaml"
    existing.write_text("# mine\n" + json.dumps(good_plan("shop")))
    drafter.rounds([{"write_plan": good_plan()}, {"done": "plan written"}])
    early = drafter.draft("--plan-id", "shop", GOAL)
    assert early.returncode == 1 and "plans/shop.yaml already exists" in early.stderr
    assert drafter.co.records() == []  # refused before any agent ran
    late = drafter.draft(GOAL)  # the agent picks the id
    assert late.returncode == 1 and "doit draft --force replaces it" in late.stderr
    assert "the draft is kept in .orch/drafts/" in late.stderr
    assert existing.read_text().startswith("# mine")
    _ok(drafter.draft("--force", "--plan-id", "shop", GOAL))
    assert existing.read_text().startswith("# Drafted by")


def test_plan_id_used_by_another_file_is_fed_back(drafter: Drafter) -> None:
    drafter.co.write_plan(good_plan("shop"), "legacy.json")
    drafter.rounds([{"write_plan": good_plan("shop")}, {"done": "x"}],
                   [{"write_plan": good_plan("shop2")}, {"done": "x"}])  # fmt: skip
    _ok(drafter.draft(GOAL))
    assert "plan id 'shop' is already used by plans/legacy.json" in drafter.prompts()[1]
    assert (drafter.co.root / "plans" / "shop2.yaml").exists()


# --- from an empty checkout to a run -----------------------------------------------------


def test_draft_then_doit_runs_the_plan(drafter: Drafter) -> None:
    drafter.rounds([{"write_plan": good_plan()}, {"done": "plan written"}])
    _ok(drafter.draft(GOAL))
    assert drafter.no_stamps()
    run = drafter.co.doit()
    assert run.returncode == 0, run.stdout + run.stderr
    assert all(drafter.co.stamp(t, "shop") for t in ("t1", "t2", "t3", "t4"))


def test_no_agent_on_path_is_exit_3(drafter: Drafter, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = drafter.draft(GOAL, agent=False, env={"PATH": str(empty)})
    assert result.returncode == 3
    assert "no agent CLI found on PATH (looked for claude, codex, gemini" in result.stderr


def test_unknown_agent_is_exit_3(drafter: Drafter) -> None:
    result = drafter.draft(GOAL, "--agent", "no-such-agent-cli", agent=False)
    assert result.returncode == 3 and "'no-such-agent-cli' not found on PATH" in result.stderr


# --- the stand-in CLIs ---------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["claude", "codex", "gemini", "aider", "opencode"])
def test_each_profile_drafts_with_its_own_file_tool(
    drafter: Drafter, tmp_path: Path, profile: str
) -> None:
    plan_text = tmp_path / "plan.json"
    plan_text.write_text(json.dumps(good_plan()))
    record = tmp_path / "standin.jsonl"
    env = {"PATH": f"{STANDINS}{os.pathsep}{os.environ['PATH']}", "STANDIN_PLAN": str(plan_text),
           "STANDIN_RECORD": str(record), "STANDIN_SUMMARY": "plan written"}  # fmt: skip
    args = ["--agent", profile] if profile != "claude" else []  # claude: found first on PATH
    result = drafter.draft(*args, GOAL, agent=False, env=env)
    _ok(result)
    (call,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert call["program"] == profile and call["env"]["ORCH_TASK_ID"] == "draft"
    assert call["env"]["ORCH_PLAN_FILE"].endswith("plan.yaml")
    assert (drafter.co.root / "plans" / "shop.yaml").exists()
    assert f"agent: {profile}\n" in (drafter.co.root / "plans" / "shop.yaml").read_text()


def test_claude_printing_its_plan_after_done(drafter: Drafter, tmp_path: Path) -> None:
    plan = "planId: printed\nprojects: [{name: app, path: ./app}]\ntasks: [{id: a, project: app, title: A}]"  # noqa: E501
    env = {"PATH": f"{STANDINS}{os.pathsep}{os.environ['PATH']}",
           "STANDIN_SUMMARY": f"plan below\n```yaml\n{plan}\n```"}  # fmt: skip
    _ok(drafter.draft("--agent", "claude", GOAL, agent=False, env=env))
    assert (drafter.co.root / "plans" / "printed.yaml").exists()


# --- the review's arithmetic ---------------------------------------------------------------


def test_critical_path_follows_dependencies_and_project_order(tmp_path: Path) -> None:
    plan = {
        "planId": "p",
        "projects": [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}],
        "tasks": [
            {"id": "a1", "project": "a", "title": "x", "estimatedMinutes": 30},
            {"id": "b1", "project": "b", "title": "x", "estimatedMinutes": 10},
            {"id": "a2", "project": "a", "title": "x", "estimatedMinutes": 40},
            {"id": "b2", "project": "b", "title": "x", "estimatedMinutes": 5,
             "dependsOn": ["b1"]},
        ],
    }  # fmt: skip
    (tmp_path / "p.json").write_text(json.dumps(plan))
    # a1 and a2 share project a's terminal: 70 minutes, though neither depends on the other
    assert critical_path(load_plan(tmp_path / "p.json", tmp_path)) == (70.0, ["a1", "a2"])


def test_a_task_without_an_estimate_stays_on_the_critical_path(tmp_path: Path) -> None:
    plan = {"planId": "p", "projects": [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}],
            "tasks": [{"id": "t1", "project": "a", "title": "x", "estimatedMinutes": 10},
                      {"id": "t2", "project": "b", "title": "x", "dependsOn": ["t1"]}]}  # fmt: skip
    (tmp_path / "p.json").write_text(json.dumps(plan))
    assert critical_path(load_plan(tmp_path / "p.json", tmp_path)) == (10.0, ["t1", "t2"])


def test_interrupt_stops_the_drafting_agent(drafter: Drafter) -> None:
    drafter.rounds([{"progress": [10, "reading"]}, {"hang": True}])
    argv = [sys.executable, "-m", "doit", "draft", "--agent", drafter.agent, GOAL]
    proc = subprocess.Popen(argv, cwd=drafter.co.root, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    drafter.co.wait_for(lambda: drafter.co.records())
    log = next(drafter.drafts().glob("*/1.log"))
    drafter.co.wait_for(lambda: "PROGRESS" in log.read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "draft interrupted by SIGINT" in err and "Traceback" not in err
    (record,) = drafter.co.records()
    drafter.co.wait_for(lambda: not pid_alive(record["pid"]), timeout=10)
    assert list((drafter.co.root / "plans").iterdir()) == []


def test_plan_file_written_without_done_is_still_checked(drafter: Drafter) -> None:
    drafter.co.write_plan("planId: [broken", "broken.yaml")
    drafter.rounds([{"write_plan": good_plan()}, {"exit": 0}])
    result = drafter.draft(GOAL)
    _ok(result)
    assert len(drafter.co.records()) == 1
    assert "Note: plans/broken.yaml is invalid: doit exits 3 until it is fixed" in result.stdout


def test_a_checkout_template_overrides_the_packaged_prompt(drafter: Drafter) -> None:
    (drafter.co.root / "templates").mkdir()
    (drafter.co.root / "templates" / "draft.md.j2").write_text(
        "Plan {{ goal }} into {{ plan_file }}; report [DONE:{{ terminal_id }}].\n"
    )
    drafter.rounds([{"write_plan": good_plan()}, {"done": "ok"}])
    _ok(drafter.draft("a {{ shop }}"))
    (record,) = drafter.co.records()
    plan_file = drafter.drafts() / "a-shop" / "plan.yaml"
    assert (
        record["prompt"]
        == f"Plan a {{{{ shop }}}} into {plan_file}; report [DONE:{record['terminal_id']}].\n"
    )


def test_agent_mapping_is_checked_as_in_a_plan(drafter: Drafter) -> None:
    result = drafter.draft(GOAL, "--agent", "{profile: nope}", agent=False)
    assert result.returncode == 3
    assert result.stderr.startswith("orchlib: --agent: agent.profile: unknown agent profile 'nope'")


def test_options_may_follow_the_goal() -> None:
    args = ["build", "it", "--rounds", "2", "--force", "--from=PRD.md", "--", "--not-an-option"]
    assert options_first(args, Draft.cmd_options) == [
        "--rounds", "2", "--force", "--from=PRD.md", "--", "build", "it", "--not-an-option",
    ]  # fmt: skip


def test_rounds_must_be_positive(drafter: Drafter) -> None:
    result = drafter.draft(GOAL, "--rounds", "0")
    assert result.returncode == 3 and result.stderr == "orchlib: --rounds must be at least 1\n"
    assert drafter.co.records() == []


def test_a_usage_limit_ends_the_draft_with_exit_2_and_when_to_come_back(
    drafter: Drafter, tmp_path: Path
) -> None:
    record = tmp_path / "standin.jsonl"
    until = time.time() + 600
    env = {"PATH": f"{STANDINS}{os.pathsep}{os.environ['PATH']}", "STANDIN_RECORD": str(record),
           "STANDIN_LIMIT_UNTIL": str(until)}  # fmt: skip
    result = drafter.draft("--agent", "claude", GOAL, agent=False, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    expected = datetime.fromtimestamp(math.ceil(until)).strftime("%H:%M")
    assert "usage limit" in result.stderr + result.stdout
    assert f"run `doit draft` again after {expected}" in result.stderr + result.stdout
    assert len(record.read_text().splitlines()) == 1  # no round was burnt on it
    assert not (drafter.co.root / "plans" / "shop.yaml").exists()


def test_powers_are_one_table_and_found_anywhere() -> None:
    # Keys other parts of orchlib add (environment, sandbox, review, race) are shown as
    # soon as a plan has them, wherever they sit.
    data = {
        "planId": "p",
        "environment": {"inherit": "all"},
        "defaults": {"sandbox": "none", "review": "codex"},
        "projects": [{"name": "web", "path": ".", "race": 3, "sandboxWritable": ["/tmp"]}],
        "tasks": [{"id": "t1", "project": "web", "title": "T",
                   "agent": {"profile": "claude", "args": ["--yolo"]},
                   "command": "set -e\nmake\n"}],
    }  # fmt: skip
    found = [(p.where, p.key) for p in powers.find(data)]
    assert found == [
        ("plan", "environment"), ("defaults", "sandbox"), ("defaults", "review"),
        ("project web", "race"), ("project web", "sandboxWritable"),
        ("task t1.agent", "args"), ("task t1", "command"),
    ]  # fmt: skip
    shown = powers.lines(powers.find(data))
    assert shown[-3:] == ["  task t1: command: (runs this command)", "      set -e", "      make"]
    assert set(powers.POWERS) >= {
        "command",
        "verify",
        "args",
        "env",
        "environment",
        "notify",
        "allowOutsidePaths",
        "executor",
        "sandbox",
        "review",
        "race",
    }


@pytest.mark.parametrize("form", ["command line", "mapping"])
def test_a_drafting_command_may_name_checkout_files_relatively(drafter: Drafter, form: str) -> None:
    # It runs in its draft folder, yet `planner.py` is the checkout's file, as typed.
    (drafter.co.root / "planner.py").write_text(FAKE_AGENT.read_text())
    argv = [sys.executable, "planner.py", str(drafter.co.scenario_file),
            str(drafter.co.record_file)]  # fmt: skip
    agent = shlex.join(argv) if form == "command line" else json.dumps({"command": argv})
    drafter.rounds([{"write_plan": good_plan()}, {"done": "ok"}])
    _ok(drafter.draft("--agent", agent, GOAL, agent=False))
    (record,) = drafter.co.records()
    assert record["cwd"] == str(drafter.drafts() / "build-an-e-commerce-platform")


def test_terminal_escapes_in_a_drafted_plan_are_shown_not_obeyed(drafter: Drafter) -> None:
    plan = powerful_plan()
    plan["tasks"][3]["title"] = "Build auth UI\x1b[8A\x1b[J"  # cursor up 8 lines, erase below
    plan["summary"] = "Two lines\nof summary \x1b]0;title\x07"
    drafter.rounds([{"write_plan": plan}, {"done": "plan written"}])
    result = drafter.draft(GOAL)
    _ok(result)
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "Build auth UI\\x1b[8A\\x1b[J" in result.stdout
    assert "Two lines\nof summary \\x1b]0;title\\x07\n" in result.stdout
    assert "task t1: command: curl" in result.stdout
