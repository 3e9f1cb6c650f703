"""End-to-end: every built-in agent profile through the real `doit` and the real dispatcher.

The agents are the stand-ins of tests/standins/, found on PATH under the real CLIs' names:
they parse the real flags strictly, record how they were called (argv, cwd, environment,
stdin, the prompt they took, their session id) and print the real headless output format.
The expected command lines are read from docs/agents.md, so the docs, the profiles and
the CLIs' parsers are held to each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout

STANDINS = Path(__file__).parent / "standins"
DOCS = Path(__file__).parent.parent / "docs" / "agents.md"
PLAN = "prof"
# Quotes, an apostrophe, parentheses and non-ASCII: the summary must come back exactly.
SUMMARY = 'Built the API (src/api.py); it\'s "ready" ✓'
PROFILES = ("claude", "codex", "gemini", "aider", "opencode")
JSON_PROFILES = ("claude", "codex", "gemini", "opencode")
# The stand-ins' own usage figures, as each profile's stamp must carry them.
USAGE: dict[str, dict[str, object]] = {
    "claude": {"cost_usd": 0.0421, "num_turns": 3, "input_tokens": 12, "output_tokens": 180,
               "cache_read_input_tokens": 33000, "subtype": "success"},
    "codex": {"input_tokens": 24763, "cached_input_tokens": 24448, "output_tokens": 122},
    "gemini": {"input_tokens": 14800, "output_tokens": 430, "cached_input_tokens": 9000,
               "tool_calls": 1, "status": "success"},
    "opencode": {"cost_usd": 0.0154, "input_tokens": 20000, "output_tokens": 57,
                 "cache_read_input_tokens": 16000, "num_steps": 2},
}  # fmt: skip


def documented(
    profile: str,
    session: str | None = None,
    args: tuple[str, ...] = (),
    prompt_file: Path | None = None,
) -> list[str]:
    """The command line docs/agents.md gives for `profile` (stdin or file delivery)."""
    text = DOCS.read_text(encoding="utf-8")
    section = re.search(rf"^### {profile}\b.*?\n```\n(.*?)\n```", text, re.M | re.S)
    assert section is not None, f"no command line for {profile} in {DOCS}"
    argv: list[str] = []
    for token in re.findall(r"\[[^\]]*\]|<[^>]*>|\S+", section[1]):
        if token == "<plan args>":
            argv.extend(args)
        elif token.startswith("["):
            # optional parts: only a session to resume is ever added here
            if session is not None and re.search(r"<(session|thread)_id>", token):
                argv.extend(re.sub(r"<\w+_id>", session, token[1:-1]).split())
        elif token == "<prompt_file>":
            argv.append(str(prompt_file))
        else:
            argv.append(token)
    return argv


class Standins:
    """A checkout whose agents are the stand-in CLIs on PATH; runs the real `doit`."""

    def __init__(self, checkout: Checkout, tmp_path: Path) -> None:
        self.co = checkout
        self.record_file = tmp_path / "standins.jsonl"

    def plan(self, tasks: list[dict[str, Any]], projects: tuple[str, ...] = ("app",),
             **extra: Any) -> None:  # fmt: skip
        """Write plan `prof` with `projects` (folder = name) and `tasks`."""
        plan = {"planId": PLAN, "projects": [{"name": p, "path": p} for p in projects],
                "tasks": [{"title": t["id"], "project": projects[0], **t} for t in tasks],
                **extra}  # fmt: skip
        self.co.write_plan(plan, "prof.json")

    def run(self, path: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        """`doit` with the stand-ins first on PATH (or exactly `path`)."""
        base = {
            "PATH": path or f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}",
            "STANDIN_RECORD": str(self.record_file),
            "STANDIN_SUMMARY": SUMMARY,
        }
        return self.co.doit(env={**base, **env})

    def calls(self) -> list[dict[str, Any]]:
        """Every recorded stand-in call, in order."""
        if not self.record_file.exists():
            return []
        lines = self.record_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def call(self, task: str) -> dict[str, Any]:
        """The one call that ran `task`."""
        found = [c for c in self.calls() if c["env"].get("ORCH_TASK_ID") == task]
        assert len(found) == 1, found
        return found[0]

    def stamp(self, task: str) -> dict[str, Any]:
        stamp = self.co.stamp(task, PLAN)
        assert stamp is not None, f"{task} has no stamp"
        return stamp

    def task_state(self, task: str) -> dict[str, Any]:
        tasks = self.co.state(PLAN)["tasks"]
        return next(t for t in tasks if t["id"] == task)

    def prompt_file(self, task: str, attempt: int = 1) -> Path:
        return (self.co.root / ".orch" / PLAN / "prompts" / f"{task}.{attempt}.md").resolve()


@pytest.fixture
def standins(checkout: Checkout, tmp_path: Path) -> Iterator[Standins]:
    found = Standins(checkout, tmp_path)
    yield found
    for call in found.calls():  # a stand-in outliving a failed run (e.g. a doit timeout)
        with contextlib.suppress(OSError):
            if str(STANDINS) in Path(f"/proc/{call['pid']}/cmdline").read_text():
                os.kill(call["pid"], signal.SIGKILL)


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


# --- one end-to-end run per profile ---------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_runs_headless_end_to_end(standins: Standins, profile: str) -> None:
    standins.plan([{"id": "t1"}], agent=profile)
    _ok(standins.run())
    stamp, call = standins.stamp("t1"), standins.call("t1")
    assert stamp["summary"] == SUMMARY
    assert stamp["agent"] == profile
    prompt_file = standins.prompt_file("t1")
    assert call["program"] == profile
    assert call["argv"] == documented(profile, prompt_file=prompt_file)[1:]
    assert call["cwd"] == str((standins.co.root / "app").resolve())
    expected_env = {
        "TERMINAL_ID": stamp["terminalId"],
        "ORCH_PLAN_ID": PLAN,
        "ORCH_TASK_ID": "t1",
        "ORCH_PROJECT": "app",
        "ORCH_ATTEMPT": "1",
        "ORCH_PROMPT_FILE": str(prompt_file),
    }
    assert {k: call["env"].get(k) for k in expected_env} == expected_env
    prompt = prompt_file.read_text(encoding="utf-8")
    assert f"[DONE:{stamp['terminalId']}]" in prompt  # this attempt's rendered prompt
    assert call["prompt"] == prompt
    # aider takes the prompt from --message-file (its stdin would be chat input); the rest
    # from stdin, which must then be exactly the rendered prompt
    assert call["stdin"] == (None if profile == "aider" else prompt)
    if profile in USAGE:
        assert stamp["sessionId"] == call["session_id"]
        assert {k: stamp["usage"].get(k) for k in USAGE[profile]} == pytest.approx(USAGE[profile])
    else:
        assert "sessionId" not in stamp and "usage" not in stamp


@pytest.mark.parametrize(
    ("profile", "wanted", "flag"),
    [
        ("gemini", "arg", "--prompt="),  # stdin stays open: gemini stops waiting for it
        ("aider", "arg", "--message="),
        ("claude", "file", None),  # claude -p needs stdin: the profile keeps it
    ],
)
def test_prompt_delivery_asked_by_the_plan(
    standins: Standins, profile: str, wanted: str, flag: str | None
) -> None:
    standins.plan([{"id": "t1"}], agent={"profile": profile, "prompt": wanted})
    _ok(standins.run())
    call, prompt = standins.call("t1"), standins.prompt_file("t1").read_text(encoding="utf-8")
    assert call["prompt"] == prompt
    assert standins.stamp("t1")["summary"] == SUMMARY
    default = documented(profile, prompt_file=standins.prompt_file("t1"))[1:]
    if flag is None:
        assert (call["argv"], call["stdin"]) == (default, prompt)
        return
    # the argument takes the place of aider's `--message-file <path>`, or ends gemini's argv
    before = default[:-2] if profile == "aider" else default
    assert (call["argv"], call["stdin"]) == ([*before, flag + prompt], None)


# --- what a JSON-stream agent reports --------------------------------------------------


@pytest.mark.parametrize("profile", JSON_PROFILES)
def test_error_and_question_are_understood(standins: Standins, profile: str) -> None:
    standins.plan(
        [
            {"id": "bad", "agent": {"profile": profile, "env": {"STANDIN_MODE": "error"}}},
            {"id": "ask", "project": "other",
             "agent": {"profile": profile, "env": {"STANDIN_MODE": "question"}}},
        ],
        projects=("app", "other"),
    )  # fmt: skip
    result = standins.run()
    assert result.returncode not in (0, 3), result.stdout + result.stderr
    bad, ask = standins.task_state("bad"), standins.task_state("ask")
    assert bad["status"] == "ERROR"
    assert bad["error"] == SUMMARY
    assert ask["status"] == "QUESTION"
    assert [q["question"] for q in ask["questions"]] == [SUMMARY]
    assert standins.co.stamp("bad", PLAN) is None and standins.co.stamp("ask", PLAN) is None
    # an ERROR is not retried and a question waits: one call each
    assert sorted(c["env"]["ORCH_TASK_ID"] for c in standins.calls()) == ["ask", "bad"]


@pytest.mark.parametrize("profile", JSON_PROFILES)
def test_marker_only_in_a_tool_input_does_not_count(standins: Standins, profile: str) -> None:
    # STANDIN_MODE=denied: the agent tries `echo "[DONE:<id>] ..."`, the tool call is denied,
    # so the marker is in the call's input only and the agent ends without a report
    standins.plan([{"id": "t1"}], agent=profile, defaults={"retries": 0})
    result = standins.run(STANDIN_MODE="denied")
    assert result.returncode not in (0, 3), result.stdout + result.stderr
    assert standins.co.stamp("t1", PLAN) is None
    state = standins.task_state("t1")
    assert state["status"] == "ERROR"
    assert "without DONE" in state["error"]
    log = Path(state["log"]).read_text(encoding="utf-8")
    assert f"[DONE:{state['terminalId']}] {SUMMARY[:12]}" in log  # it was there, as input
    assert len(standins.calls()) == 1


@pytest.mark.parametrize("pad", [1_200_000, 3_000_000])
def test_marker_in_a_tool_input_over_a_mib_does_not_count(standins: Standins, pad: int) -> None:
    # one event line longer than the splitter's 1 MiB text limit: still one event
    standins.plan([{"id": "t1"}], agent="claude", defaults={"retries": 0})
    result = standins.run(STANDIN_MODE="denied", STANDIN_PAD=str(pad))
    assert result.returncode not in (0, 3), result.stdout + result.stderr
    assert standins.co.stamp("t1", PLAN) is None
    state = standins.task_state("t1")
    assert state["status"] == "ERROR" and "without DONE" in state["error"]
    assert Path(state["log"]).stat().st_size > pad


# --- sessions --------------------------------------------------------------------------


SESSION_TASKS = [
    {"id": "t1"},
    {"id": "t2", "dependsOn": ["t1"]},
    {"id": "t3", "project": "b", "dependsOn": ["t1"]},
]


@pytest.mark.parametrize("profile", JSON_PROFILES)
def test_session_continue_resumes_the_previous_task_of_the_project(
    standins: Standins, profile: str
) -> None:
    standins.plan(SESSION_TASKS, projects=("a", "b"),
                  agent={"profile": profile, "session": "continue"})  # fmt: skip
    _ok(standins.run())
    first = standins.stamp("t1")["sessionId"]
    assert standins.call("t1")["argv"] == documented(profile)[1:]
    # codex: `exec ... resume <id> -`; the others: a --resume / --session flag
    assert standins.call("t2")["argv"] == documented(profile, session=first)[1:]
    assert standins.stamp("t2")["sessionId"] == first
    # another project never gets this project's session
    assert standins.call("t3")["argv"] == documented(profile)[1:]
    assert standins.stamp("t3")["sessionId"] != first


def test_sessions_are_fresh_by_default(standins: Standins) -> None:
    standins.plan(SESSION_TASKS, projects=("a", "b"), agent="claude")
    _ok(standins.run())
    assert standins.call("t2")["argv"] == documented("claude")[1:]
    assert standins.stamp("t2")["sessionId"] != standins.stamp("t1")["sessionId"]


# --- extending profiles from the plan ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--model", "opus"), id="model"),
        # the tests allowed: nothing is refused (echo, read-only, runs under acceptEdits anyway)
        pytest.param(("--model", "opus", "--allowedTools=Bash(python:*)"), id="tests-allowed"),
    ],
)
def test_profile_extended_by_the_plan(standins: Standins, args: tuple[str, ...]) -> None:
    agent = {"profile": "claude", "args": list(args), "env": {"FOO": "bar"}}
    standins.plan([{"id": "t1"}], agent=agent)
    _ok(standins.run(STANDIN_RECORD_ENV="FOO"))
    call = standins.call("t1")
    assert call["argv"] == documented("claude", args=args)[1:]
    assert call["env"]["FOO"] == "bar"
    assert standins.stamp("t1")["summary"] == SUMMARY
    log = Path(standins.task_state("t1")["log"]).read_text(encoding="utf-8")
    assert ("requires approval" in log) == (len(args) == 2)


def test_named_agents(standins: Standins) -> None:
    agents = {
        "fast": {"profile": "claude", "args": ["--model", "haiku"], "env": {"FOO": "fast"}},
        "careful": {"profile": "fast", "args": ["--effort", "high"]},
        "local": {"command": ["aider", "--no-pretty", "--yes-always", "--message={prompt}"],
                  "prompt": "arg", "env": {"FOO": "local", "STANDIN_NO_CODE": "1"}},
    }  # fmt: skip
    tasks = [
        {"id": "t1", "agent": "fast"},
        {"id": "t2", "agent": "careful", "dependsOn": ["t1"]},
        {"id": "t3", "agent": "local", "project": "b"},
    ]
    standins.plan(tasks, projects=("a", "b"), agents=agents)
    _ok(standins.run(STANDIN_RECORD_ENV="FOO"))
    t1, t2, t3 = (standins.call(t) for t in ("t1", "t2", "t3"))
    assert t1["argv"] == documented("claude", args=("--model", "haiku"))[1:]
    assert t2["argv"] == documented("claude", args=("--model", "haiku", "--effort", "high"))[1:]
    prompt = standins.prompt_file("t3").read_text(encoding="utf-8")
    assert (t3["program"], t3["argv"]) == ("aider", ["--no-pretty", "--yes-always",
                                                      f"--message={prompt}"])  # fmt: skip
    assert [c["env"]["FOO"] for c in (t1, t2, t3)] == ["fast", "fast", "local"]
    for task, name in (("t1", "fast"), ("t2", "careful"), ("t3", "local")):
        assert (standins.stamp(task)["summary"], standins.stamp(task)["agent"]) == (SUMMARY, name)


# --- a CLI missing from PATH -----------------------------------------------------------

# In each plan the `agent` key marked `# <-` is what makes tasks use claude.
MISSING_PLANS = {
    "plan": """\
planId: prof
agent: claude  # <-
projects:
  - {name: a, path: a}
tasks:
  - {id: t1, project: a, title: one}
  - {id: t2, project: a, title: two, agent: codex}
  - {id: t3, project: a, title: three}
""",
    "project": """\
planId: prof
agent: codex
projects:
  - {name: a, path: a}
  - name: b
    path: b
    agent: claude  # <-
tasks:
  - {id: t1, project: b, title: one}
  - {id: t2, project: a, title: two}
  - {id: t3, project: b, title: three}
""",
    "task": """\
planId: prof
agent: codex
projects:
  - {name: a, path: a}
tasks:
  - {id: t1, project: a, title: one}
  - {id: t2, project: a, title: two}
  - id: t3
    project: a
    title: three
    agent:  # <-
      profile: claude
      args: [--model, opus]
""",
}


@pytest.mark.parametrize(
    ("where", "tasks"),
    [
        pytest.param("plan", "t1, t3", id="plan"),
        pytest.param("project", "t1, t3", id="project"),
        pytest.param("task", "t3", id="task"),
    ],
)
def test_missing_cli_is_a_located_error_before_anything_runs(
    standins: Standins, tmp_path: Path, where: str, tasks: str
) -> None:
    text = MISSING_PLANS[where]
    (standins.co.root / "plans" / "x.yaml").write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.endswith("# <-"))
    bin_dir = tmp_path / "bin"  # codex is installed, claude is not
    bin_dir.mkdir()
    for name in ("codex", "_standin.py"):
        (bin_dir / name).symlink_to(STANDINS / name)
    result = standins.run(path=str(bin_dir))
    assert result.returncode == 3, result.stdout + result.stderr
    expected = (
        rf"orchlib: agent 'claude' not found on PATH \(tasks {tasks}\); install it or set agent: "
        rf"in plans/x\.yaml:{line}(:\d+)?"
    )
    assert re.fullmatch(expected, result.stderr.strip()), result.stderr
    assert not standins.calls()  # checked before anything was dispatched
    assert not (standins.co.root / ".orch" / PLAN / "prompts").exists()


# --- what the screen shows of an agent's work -------------------------------------------------


def test_log_decodes_claude_events_and_status_shows_cost(standins: Standins) -> None:
    standins.plan([{"id": "t1"}], agent="claude")
    _ok(standins.run())
    log = standins.co.doit("log", f"{PLAN}:t1")
    assert log.returncode == 0, log.stderr
    lines = log.stdout.splitlines()
    assert any(line.startswith("= result") for line in lines), lines
    assert not any(line.lstrip().startswith("{") for line in lines)  # no raw JSON events
    raw = standins.co.doit("log", "--raw", f"{PLAN}:t1").stdout
    assert raw.lstrip().startswith("{")
    status = standins.co.doit("status").stdout.splitlines()
    assert status[1].split()[5:7] == ["COST", "TOKENS"], status
    assert "$" in status[2] and "spent" in status[0]
    doc = json.loads(standins.co.doit("status", "--json").stdout)
    assert doc["totals"]["costUsd"] == doc["plans"][0]["tasks"][0]["costUsd"] > 0


# --- what the real CLIs do that a fresh set-up meets ------------------------------------


def test_claude_refused_commands_are_in_the_attempts_record(standins: Standins) -> None:
    # acceptEdits in -p mode: `echo "[DONE:..]"` runs, the tests are refused (needs approval)
    standins.plan([{"id": "t1"}], agent="claude")
    result = standins.run()
    _ok(result)
    assert standins.task_state("t1")["denied"] == ["Bash: python -m pytest -q"]
    assert "refused Bash: python -m pytest -q" in result.stdout
    # the Write's tool_use_result repeats the written file, marker included: never read
    assert standins.stamp("t1")["summary"] == SUMMARY


def test_claude_with_tests_allowed_has_nothing_refused(standins: Standins) -> None:
    agent = {"profile": "claude", "args": ["--allowedTools=Bash(python -m pytest:*)"]}
    standins.plan([{"id": "t1"}], agent=agent)
    _ok(standins.run())
    assert standins.task_state("t1")["denied"] == []


def test_gemini_runs_in_a_folder_it_was_never_told_to_trust(standins: Standins) -> None:
    # gemini 0.61 exits 55 in an untrusted folder; the profile trusts the project folder
    bare = subprocess.run(
        [str(STANDINS / "gemini"), "--output-format", "stream-json"], input="hi",
        capture_output=True, text=True, env={**os.environ, "GEMINI_CLI_TRUST_WORKSPACE": ""},
    )  # fmt: skip
    assert bare.returncode == 55 and "trusted directory" in bare.stderr
    standins.plan([{"id": "t1"}], agent="gemini")
    _ok(standins.run())
    assert standins.stamp("t1")["summary"] == SUMMARY
