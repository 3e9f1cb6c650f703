"""Agent profiles and output adapters, checked against stand-ins of the real CLIs.

The stand-ins (tests/standins/) are executables named like the real CLIs: they parse the
real flags strictly and print the real headless formats, so a wrong command line fails
here the way it would fail in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchlib.agents import (
    BUILTIN,
    Invocation,
    Launch,
    adapter,
    executable,
    invocation,
)
from orchlib.agents.claude import ClaudeStream
from orchlib.agents.codex import CodexJson
from orchlib.agents.gemini import GeminiStream
from orchlib.agents.opencode import OpencodeJson
from orchlib.agents.streams import OutputAdapter, PlainText
from orchlib.plan import AgentSpec
from orchlib.run.markers import Kind, Marker, scan

STANDINS = Path(__file__).parent / "standins"
TID = "term-shop-t1-1"
# Plan text that a shell would act on; everywhere it must stay a literal argument.
HOSTILE = "$(touch pwned) `touch pwned2` {{ jinja }} {task_id} {nope} 'q' \"dq\" ; rm -rf /"
# An apostrophe, parentheses and a semicolon: the summary must come back exactly.
SUMMARY = "Built the API (src/api.py); 12 tests pass, it's ready"
PROFILES = ("claude", "codex", "gemini", "aider", "opencode")
JSON_PROFILES = ("claude", "codex", "gemini", "opencode")


@pytest.fixture
def launch(tmp_path: Path) -> Launch:
    project = tmp_path / "shop"
    project.mkdir()
    prompt_file = tmp_path / "prompts" / "t1.1.md"
    prompt_file.parent.mkdir()
    # The prompt spells out the protocol with the real terminal id; a CLI that echoes the
    # prompt must not make this count as the agent's report.
    prompt = f"# Task t1\n{HOSTILE}\nWhen finished print: [DONE:{TID}] what you built\n"
    prompt_file.write_text(prompt, encoding="utf-8")
    return Launch(
        prompt=prompt,
        prompt_file=prompt_file,
        terminal_id=TID,
        task_id="t1",
        plan_id="shop-plan",
        project="shop",
        project_path=project,
    )


def spec(profile: str | None, **kw: object) -> AgentSpec:
    return AgentSpec(name=profile or "custom", profile=profile, **kw)  # type: ignore[arg-type]


# --- command lines --------------------------------------------------------------------

CLAUDE = ("claude", "-p", "--output-format", "stream-json", "--verbose")
CODEX = ("codex", "exec", "--json", "--skip-git-repo-check")
GEMINI = ("gemini", "--output-format", "stream-json")
AIDER = ("aider", "--no-pretty", "--no-fancy-input", "--no-check-update", "--no-analytics")
OPENCODE = ("opencode", "run", "--format", "json")


def test_builtin_names() -> None:
    assert BUILTIN == ("claude", "codex", "gemini", "aider", "opencode", "shell")


@pytest.mark.parametrize(
    ("agent", "argv"),
    [
        (spec("claude"), (*CLAUDE, "--permission-mode", "acceptEdits")),
        (spec("codex"), (*CODEX, "--sandbox", "workspace-write", "-")),
        (spec("gemini"), (*GEMINI, "--approval-mode", "auto_edit")),
        (spec("opencode"), OPENCODE),
    ],
)
def test_stdin_profiles(agent: AgentSpec, argv: tuple[str, ...], launch: Launch) -> None:
    # gemini 0.61 exits 55 in a folder it does not trust: the profile trusts the project
    env = {"GEMINI_CLI_TRUST_WORKSPACE": "true"} if agent.profile == "gemini" else {}
    assert invocation(agent, launch) == Invocation(argv=argv, env=env, prompt_mode="stdin")


def test_aider_takes_the_prompt_file(launch: Launch) -> None:
    inv = invocation(spec("aider"), launch)
    assert inv.argv == (*AIDER, "--yes-always", "--message-file", str(launch.prompt_file))
    assert inv.prompt_mode == "file"


@pytest.mark.parametrize(
    ("profile", "argv"),
    [
        ("claude", (*CLAUDE, "--permission-mode", "acceptEdits", "--resume", "S1")),
        ("codex", (*CODEX, "--sandbox", "workspace-write", "resume", "S1", "-")),
        ("gemini", (*GEMINI, "--approval-mode", "auto_edit", "--resume", "S1")),
        ("opencode", (*OPENCODE, "--session", "S1")),
    ],
)
def test_continue_resumes_the_previous_session(
    profile: str, argv: tuple[str, ...], launch: Launch
) -> None:
    resumed = replace(launch, resume_session="S1")
    assert invocation(spec(profile, session="continue"), resumed).argv == argv
    # a fresh session, or nothing to resume, starts a new one
    assert "S1" not in invocation(spec(profile), resumed).argv
    assert invocation(spec(profile, session="continue"), launch) == invocation(
        spec(profile), launch
    )


def test_aider_has_no_session_to_resume(launch: Launch) -> None:
    resumed = replace(launch, resume_session="S1")
    assert invocation(spec("aider", session="continue"), resumed) == invocation(
        spec("aider"), launch
    )


@pytest.mark.parametrize(
    ("profile", "argv"),
    [
        (
            "claude",
            (*CLAUDE, "--permission-mode", "acceptEdits", "--resume", "S1", "--model", "opus"),
        ),
        ("codex", (*CODEX, "--sandbox", "workspace-write", "--model", "opus", "resume", "S1", "-")),
        ("gemini", (*GEMINI, "--approval-mode", "auto_edit", "--resume", "S1", "--model", "opus")),
        ("opencode", (*OPENCODE, "--session", "S1", "--model", "opus")),
        (
            "aider",
            (*AIDER, "--yes-always", "--model", "opus", "--message-file", "{prompt_file}"),
        ),
    ],
)
def test_plan_args_follow_the_profile_args(
    profile: str, argv: tuple[str, ...], launch: Launch
) -> None:
    agent = spec(profile, args=("--model", "opus"), session="continue")
    expected = tuple(a.replace("{prompt_file}", str(launch.prompt_file)) for a in argv)
    assert invocation(agent, replace(launch, resume_session="S1")).argv == expected


@pytest.mark.parametrize(
    ("profile", "args", "dropped"),
    [
        ("claude", ("--dangerously-skip-permissions",), "--permission-mode"),
        ("claude", ("--permission-mode", "bypassPermissions"), "acceptEdits"),
        ("claude", ("--permission-mode=plan",), "acceptEdits"),
        ("codex", ("--sandbox", "danger-full-access"), "workspace-write"),
        ("codex", ("-sread-only",), "workspace-write"),
        ("codex", ("--dangerously-bypass-approvals-and-sandbox",), "--sandbox"),
        ("gemini", ("--yolo",), "--approval-mode"),
        ("gemini", ("--approval-mode=yolo",), "auto_edit"),
    ],
)
def test_plan_args_replace_the_permission_default(
    profile: str, args: tuple[str, ...], dropped: str, launch: Launch
) -> None:
    argv = invocation(spec(profile, args=args), launch).argv
    assert dropped not in argv
    starts = [i for i in range(len(argv)) if argv[i : i + len(args)] == args]
    assert len(starts) == 1


def test_opencode_permissions_are_opt_in(launch: Launch) -> None:
    argv = invocation(spec("opencode", args=("--auto",)), launch).argv
    assert argv == (*OPENCODE, "--auto")


@pytest.mark.parametrize(
    ("profile", "wanted", "used"),
    [
        ("claude", "arg", "stdin"),
        ("claude", "file", "stdin"),
        ("codex", "arg", "stdin"),
        ("opencode", "file", "stdin"),
        ("gemini", "file", "stdin"),
        ("aider", "stdin", "file"),
    ],
)
def test_unsupported_delivery_falls_back_to_the_default(
    profile: str, wanted: str, used: str, launch: Launch
) -> None:
    inv = invocation(spec(profile, prompt=wanted), launch)
    assert inv.prompt_mode == used
    assert inv.argv == invocation(spec(profile), launch).argv


def test_gemini_prompt_as_argument(launch: Launch) -> None:
    inv = invocation(spec("gemini", prompt="arg", args=("-m", "flash")), launch)
    assert inv.argv == (
        *GEMINI,
        "--approval-mode",
        "auto_edit",
        "-m",
        "flash",
        "--prompt=" + launch.prompt,
    )
    assert inv.prompt_mode == "arg"


def test_aider_prompt_as_argument(launch: Launch) -> None:
    inv = invocation(spec("aider", prompt="arg"), launch)
    assert inv.argv == (*AIDER, "--yes-always", "--message=" + launch.prompt)
    assert inv.prompt_mode == "arg"


def test_env_is_the_plan_env(launch: Launch) -> None:
    env = {"ANTHROPIC_MODEL": "opus", "X": "{task_id}"}
    inv = invocation(spec("claude", env=env), launch)
    assert inv.env == env  # env values are data, not templates
    assert inv.env is not env


def test_shell_has_no_invocation(launch: Launch) -> None:
    with pytest.raises(ValueError, match="shell"):
        invocation(spec("shell"), launch)
    assert isinstance(adapter(spec("shell")), PlainText)
    assert executable(spec("shell")) == "sh"


@pytest.mark.parametrize("profile", PROFILES)
def test_executable_is_the_cli(profile: str) -> None:
    assert executable(spec(profile)) == profile


def test_bad_specs_are_value_errors(launch: Launch) -> None:
    with pytest.raises(ValueError, match="unknown profile 'cursor'"):
        invocation(spec("cursor"), launch)
    with pytest.raises(ValueError, match="unknown profile"):
        executable(spec("cursor"))
    with pytest.raises(ValueError, match="needs a command"):
        invocation(spec(None), launch)
    with pytest.raises(ValueError, match="needs a command"):
        executable(spec(None))


@pytest.mark.parametrize(
    ("profile", "kind"),
    [
        ("claude", ClaudeStream),
        ("codex", CodexJson),
        ("gemini", GeminiStream),
        ("opencode", OpencodeJson),
        ("aider", PlainText),
        (None, PlainText),
    ],
)
def test_adapter_per_profile(profile: str | None, kind: type) -> None:
    first = adapter(spec(profile, command=("x",)))
    assert isinstance(first, kind)
    assert first is not adapter(spec(profile, command=("x",)))  # fresh per attempt


# --- custom commands ------------------------------------------------------------------


def test_custom_command_defaults_to_stdin(launch: Launch) -> None:
    inv = invocation(spec(None, command=("my-agent", "--fast"), env={"K": "V"}), launch)
    assert inv == Invocation(argv=("my-agent", "--fast"), env={"K": "V"}, prompt_mode="stdin")
    assert executable(spec(None, command=("my-agent", "--fast"))) == "my-agent"


def test_custom_command_arg_and_file_append_when_not_placed(launch: Launch) -> None:
    arg = invocation(spec(None, command=("a",), prompt="arg"), launch)
    assert arg.argv == ("a", launch.prompt)
    file = invocation(spec(None, command=("a",), prompt="file"), launch)
    assert file.argv == ("a", str(launch.prompt_file))
    placed = invocation(spec(None, command=("a", "-m", "{prompt}", "-v"), prompt="arg"), launch)
    assert placed.argv == ("a", "-m", launch.prompt, "-v")
    placed = invocation(spec(None, command=("a", "--in={prompt_file}"), prompt="file"), launch)
    assert placed.argv == ("a", f"--in={launch.prompt_file}")


def test_custom_placeholders_are_exact_tokens(launch: Launch) -> None:
    command = (
        "run",
        "{terminal_id}:{task_id}:{plan_id}:{project}",
        "{project_path}",
        "{unknown} {{task_id}} {TASK_ID} { task_id }",
    )
    argv = invocation(spec(None, command=command), launch).argv
    assert argv == (
        "run",
        f"{TID}:t1:shop-plan:shop",
        str(launch.project_path),
        "{unknown} {t1} {TASK_ID} { task_id }",
    )


def test_substituted_plan_text_is_never_rescanned(launch: Launch) -> None:
    hostile = replace(launch, prompt=HOSTILE)
    argv = invocation(spec(None, command=("a", "{prompt}", "{task_id}"), prompt="arg"), hostile)
    assert argv.argv == ("a", HOSTILE, "t1")  # "{task_id}" inside the prompt stays literal


def test_custom_command_runs_without_a_shell(launch: Launch) -> None:
    code = "import json, sys; print(json.dumps(sys.argv[1:]))"
    command = (sys.executable, "-c", code, "{prompt}", "x{{prompt}}y", "{task_id}")
    hostile = replace(launch, prompt=HOSTILE)
    inv = invocation(spec(None, command=command, prompt="arg"), hostile)
    done = subprocess.run(
        inv.argv, cwd=launch.project_path, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [HOSTILE, "x{" + HOSTILE + "}y", "t1"]
    assert not (launch.project_path / "pwned").exists()
    assert not (launch.project_path / "pwned2").exists()


# --- the stand-ins, run for real ------------------------------------------------------


class Run:
    """One attempt of a stand-in, as the dispatcher runs it: a log of stdout + stderr."""

    def __init__(self, agent: AgentSpec, launch: Launch, tmp: Path, **env: str) -> None:
        self.invocation = invocation(agent, launch)
        self.record_file = tmp / "record.jsonl"
        log = tmp / "attempt.log"
        environ = {
            **os.environ,
            "PATH": f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}",
            "TERMINAL_ID": launch.terminal_id,
            "ORCH_TASK_ID": launch.task_id,
            "ORCH_PLAN_ID": launch.plan_id,
            "ORCH_PROJECT": launch.project,
            "ORCH_ATTEMPT": "1",
            "ORCH_PROMPT_FILE": str(launch.prompt_file),
            "STANDIN_RECORD": str(self.record_file),
            "STANDIN_SUMMARY": SUMMARY,
            **self.invocation.env,
            **env,
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self.invocation.argv,
                cwd=launch.project_path,
                env=environ,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            assert proc.stdin is not None
            if self.invocation.prompt_mode == "stdin":
                proc.stdin.write(launch.prompt_file.read_bytes())
                proc.stdin.close()
            # file/arg: stdin stays open while the agent runs, as in the dispatcher
            self.returncode = proc.wait(timeout=60)
            proc.stdin.close()
        self.lines = log.read_text(encoding="utf-8").splitlines()
        self.adapter: OutputAdapter = adapter(agent)
        texts = [text for line in self.lines for text in self.adapter.texts(line)]
        self.markers = [m for text in texts for m in scan(text, launch.terminal_id)]

    def of(self, kind: Kind) -> list[Marker]:
        return [m for m in self.markers if m.kind is kind]

    @property
    def record(self) -> dict[str, object]:
        entries = self.record_file.read_text(encoding="utf-8").splitlines()
        assert len(entries) == 1
        found: dict[str, object] = json.loads(entries[0])
        return found


@pytest.mark.parametrize("profile", PROFILES)
def test_standin_done(profile: str, launch: Launch, tmp_path: Path) -> None:
    run = Run(spec(profile), launch, tmp_path)
    assert run.returncode == 0, run.lines
    assert [m.text for m in run.of(Kind.DONE)] == [SUMMARY]
    assert not run.of(Kind.ERROR) and not run.of(Kind.QUESTION)
    assert len(run.of(Kind.PROGRESS)) >= 1
    record = run.record
    assert record["argv"] == list(run.invocation.argv[1:])
    assert record["cwd"] == str(launch.project_path)
    env = record["env"]
    assert isinstance(env, dict)
    assert env["TERMINAL_ID"] == TID and env["ORCH_TASK_ID"] == "t1"
    stdin = launch.prompt if run.invocation.prompt_mode == "stdin" else None
    assert record["stdin"] == stdin
    assert run.adapter.session_id == record["session_id"]


@pytest.mark.parametrize("profile", JSON_PROFILES)
def test_marker_in_tool_input_is_not_counted(profile: str, launch: Launch, tmp_path: Path) -> None:
    run = Run(spec(profile), launch, tmp_path)
    raw = [m for line in run.lines for m in scan(line, TID) if m.kind is Kind.DONE]
    # the raw transcript repeats the report (command line, tool output copies, echoed
    # prompt); read through the adapter it is there exactly once
    assert len(raw) > 1
    assert [m.text for m in run.of(Kind.DONE)] == [SUMMARY]


@pytest.mark.parametrize(
    ("profile", "usage"),
    [
        (
            "claude",
            {
                "cost_usd": 0.0421,
                "num_turns": 3,
                "duration_ms": 5210,
                "input_tokens": 12,
                "output_tokens": 180,
                "subtype": "success",
                "is_error": False,
            },
        ),
        ("codex", {"input_tokens": 24763, "cached_input_tokens": 24448, "output_tokens": 122}),
        (
            "gemini",
            {"input_tokens": 14800, "output_tokens": 430, "duration_ms": 8123, "tool_calls": 1},
        ),
        (
            "opencode",
            {"cost_usd": 0.0154, "input_tokens": 20000, "output_tokens": 57, "num_steps": 2},
        ),
        ("aider", {}),
    ],
)
def test_standin_usage(
    profile: str, usage: dict[str, object], launch: Launch, tmp_path: Path
) -> None:
    run = Run(spec(profile), launch, tmp_path)
    got = {k: run.adapter.usage.get(k) for k in usage}
    assert got == pytest.approx(usage)
    assert set(usage) <= set(run.adapter.usage)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("mode", "kind"), [("error", Kind.ERROR), ("question", Kind.QUESTION)])
def test_standin_error_and_question(
    profile: str, mode: str, kind: Kind, launch: Launch, tmp_path: Path
) -> None:
    run = Run(spec(profile), launch, tmp_path, STANDIN_MODE=mode)
    assert [(m.kind, m.text) for m in run.markers if m.final] == [(kind, SUMMARY)]


@pytest.mark.parametrize("profile", PROFILES)
def test_standin_silent_exit(profile: str, launch: Launch, tmp_path: Path) -> None:
    run = Run(spec(profile), launch, tmp_path, STANDIN_MODE="silent-exit")
    assert run.returncode == 0
    assert not [m for m in run.markers if m.final]


@pytest.mark.parametrize("profile", JSON_PROFILES)
def test_standin_resumes_the_session(profile: str, launch: Launch, tmp_path: Path) -> None:
    session = "0199a213-81c0-7800-8aa1-bbab2a035a53"
    resumed = replace(launch, resume_session=session)
    run = Run(spec(profile, session="continue"), resumed, tmp_path)
    assert run.returncode == 0, run.lines
    assert run.adapter.session_id == session
    assert [m.text for m in run.of(Kind.DONE)] == [SUMMARY]


@pytest.mark.parametrize("profile", ("gemini", "aider"))
def test_standin_prompt_as_argument(profile: str, launch: Launch, tmp_path: Path) -> None:
    run = Run(spec(profile, prompt="arg"), launch, tmp_path)
    assert run.returncode == 0, run.lines
    assert [m.text for m in run.of(Kind.DONE)] == [SUMMARY]


@pytest.mark.parametrize(
    ("profile", "args"),
    [
        ("claude", ("--model", "opus", "--allowedTools", "Read", "Edit")),
        ("claude", ("--dangerously-skip-permissions",)),
        ("codex", ("--sandbox", "danger-full-access", "-c", "model_reasoning_effort=high")),
        ("codex", ("--full-auto",)),
        ("gemini", ("--yolo", "-m", "gemini-2.5-flash")),
        ("gemini", ("--approval-mode", "yolo")),
        ("aider", ("--model", "sonnet", "--no-auto-commits")),
        ("opencode", ("--auto", "--model", "anthropic/claude-sonnet-4-5")),
    ],
)
def test_standin_accepts_real_extension_args(
    profile: str, args: tuple[str, ...], launch: Launch, tmp_path: Path
) -> None:
    run = Run(spec(profile, args=args, session="continue"), launch, tmp_path)
    assert run.returncode == 0, run.lines
    assert [m.text for m in run.of(Kind.DONE)] == [SUMMARY]


@pytest.mark.parametrize("profile", PROFILES)
def test_standin_rejects_a_flag_the_cli_lacks(profile: str, launch: Launch, tmp_path: Path) -> None:
    run = Run(spec(profile, args=("--no-such-flag",)), launch, tmp_path)
    assert run.returncode == 2
    assert any("--no-such-flag" in line for line in run.lines)


@pytest.mark.parametrize(
    "argv",
    [
        ("codex", "exec", "--json", "--sandbox", "read-only", "--sandbox", "workspace-write", "-"),
        ("gemini", "--approval-mode", "auto_edit", "--approval-mode", "yolo"),
        ("gemini", "--yolo", "--approval-mode", "auto_edit"),
        ("claude", "-p", "--permission-mode", "acceptAll"),
        ("codex", "exec", "--ask-for-approval", "never", "-"),
    ],
)
def test_standins_reject_what_the_real_parsers_reject(
    argv: tuple[str, ...], launch: Launch
) -> None:
    done = standin(argv, launch, "x")
    assert done.returncode == 2, done.stderr


def test_claude_variadic_option_swallows_a_trailing_prompt(launch: Launch) -> None:
    # why the claude profile never passes the prompt as an argument
    base = ("claude", "-p", "--allowedTools", "Read")
    assert standin((*base, "say hi"), launch, None).returncode == 1
    assert standin((*base, "--", "say hi"), launch, None).returncode == 0


def test_codex_needs_a_git_repo_without_the_skip_flag(launch: Launch) -> None:
    assert standin(("codex", "exec", "--json", "-"), launch, "x").returncode == 1


def standin(
    argv: tuple[str, ...], launch: Launch, stdin: str | None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("STANDIN_RECORD", None)
    return subprocess.run(
        argv,
        cwd=launch.project_path,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- adapters on hand-made lines ------------------------------------------------------


def texts(stream: OutputAdapter, *events: object) -> list[str]:
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    return [text for line in lines for text in stream.texts(line)]


@pytest.mark.parametrize("kind", [ClaudeStream, CodexJson, GeminiStream, OpencodeJson])
def test_non_json_lines_pass_through(kind: type[OutputAdapter]) -> None:
    stream = kind()
    for line in ("Error: not logged in", "", "  [DONE:t] x"):
        assert stream.texts(line) == [line]


@pytest.mark.parametrize("kind", [ClaudeStream, CodexJson, GeminiStream, OpencodeJson])
def test_broken_event_lines_yield_nothing(kind: type[OutputAdapter]) -> None:
    # a cut or garbled event no longer says where its marker sat (a tool's input?)
    event = {"type": "assistant", "message": {"content": [{"type": "tool_use",
             "input": {"command": 'echo "[DONE:t] x"'}}]}}  # fmt: skip
    for line in ("{broken json [DONE:t] x", json.dumps(event)[:-3], '  {"a": "[DONE:t] x"'):
        assert kind().texts(line) == []


@pytest.mark.parametrize("kind", [ClaudeStream, CodexJson, GeminiStream, OpencodeJson])
@settings(max_examples=150, deadline=None)
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "type",
                        "message",
                        "content",
                        "text",
                        "item",
                        "part",
                        "state",
                        "usage",
                        "session_id",
                        "subtype",
                        "role",
                        "delta",
                        "output",
                        "stats",
                        "tokens",
                        "cache",
                        "result",
                        "error",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_adapters_never_raise(kind: type[OutputAdapter], doc: object) -> None:
    stream = kind()
    found = stream.texts(json.dumps(doc))
    assert isinstance(found, list) and all(isinstance(t, str) for t in found)
    assert isinstance(stream.usage, dict)


@pytest.mark.parametrize("kind", [ClaudeStream, CodexJson, GeminiStream, OpencodeJson])
@given(line=st.text(max_size=200))
def test_adapters_never_raise_on_any_text(kind: type[OutputAdapter], line: str) -> None:
    assert all(isinstance(t, str) for t in kind().texts(line))


def test_claude_tool_result_blocks_and_thinking() -> None:
    stream = ClaudeStream()
    found = texts(
        stream,
        {"type": "system", "subtype": "init", "session_id": "S"},
        {
            "type": "assistant",
            "message": {
                "content": [
                    {"type": "thinking", "thinking": f"I will print [DONE:{TID}] soon"},
                    {"type": "text", "text": f"[PROGRESS:{TID}] 10% - read"},
                ]
            },
        },
        {
            "type": "user",
            "message": {
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "text", "text": f"[DONE:{TID}] a"}],
                    }
                ]
            },
        },
        {"type": "user", "message": {"role": "user", "content": f"[DONE:{TID}] echoed prompt"}},
    )
    assert found == [f"[PROGRESS:{TID}] 10% - read", f"[DONE:{TID}] a"]
    assert stream.session_id == "S"


def test_claude_texts_are_decoded() -> None:
    stream = ClaudeStream()
    texts(stream, {"type": "system", "subtype": "init", "session_id": "S"})
    quiet = {"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}}
    assert texts(stream, quiet) == ["hi"]
    escaped = json.dumps(
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "[DONE:t] x"}]}}
    ).replace("[DONE", "\\u005bDONE")
    assert "[DONE" not in escaped
    assert texts(stream, escaped) == ["[DONE:t] x"]


def test_codex_skips_reasoning_and_in_progress_items() -> None:
    stream = CodexJson()
    found = texts(
        stream,
        {"type": "thread.started", "thread_id": "T"},
        {"type": "item.completed", "item": {"type": "reasoning", "text": f"[DONE:{TID}] plan"}},
        {
            "type": "item.updated",
            "item": {"type": "command_execution", "aggregated_output": f"[DONE:{TID}] partial"},
        },
        {
            "type": "item.completed",
            "item": {
                "type": "mcp_tool_call",
                "result": {"content": [{"type": "text", "text": f"[DONE:{TID}] mcp"}]},
                "error": None,
            },
        },
        {"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": "bad"}},
    )
    assert found == [f"[DONE:{TID}] mcp"]
    assert stream.session_id == "T"
    assert stream.usage == {"input_tokens": 5}


def test_codex_s_failed_turn_is_the_last_line_not_its_startup_warning() -> None:
    """A real `codex exec --json` (0.x) with its provider's key withheld: the attempt's
    error named the warning printed first, not why the turn failed."""
    stream = CodexJson()
    found = [
        *stream.texts('WARNING: proceeding, even though we could not create PATH aliases: '
                      'Refusing to create helper binaries under temporary dir "/tmp"'),
        *texts(stream,
               {"type": "thread.started", "thread_id": "01a24edc"},
               {"type": "item.completed", "item": {"id": "item_0", "type": "error", "message":
                "Model metadata for `scripted` not found. Defaulting to fallback metadata"}},
               {"type": "turn.started"},
               {"type": "error", "message": "Missing environment variable: `SCRIPTED_API_KEY`."},
               {"type": "turn.failed", "error": {
                   "message": "Missing environment variable: `SCRIPTED_API_KEY`."}}),
    ]  # fmt: skip
    assert found[-1] == "Missing environment variable: `SCRIPTED_API_KEY`.", found
    assert stream.limit is None


def gemini_delta(text: str) -> dict[str, object]:
    return {"type": "message", "role": "assistant", "content": text, "delta": True}


def test_gemini_joins_deltas_into_lines() -> None:
    stream = GeminiStream()
    assert texts(stream, gemini_delta("[DO"), gemini_delta("NE:t] half")) == []
    assert texts(stream, gemini_delta(" and half\nnext")) == ["[DONE:t] half and half"]
    assert texts(stream, gemini_delta(" line\n")) == ["next line"]
    assert texts(stream, gemini_delta("tail"), {"type": "result", "status": "success"}) == ["tail"]
    assert stream.usage == {"status": "success"}


def test_gemini_flushes_on_other_events_and_caps_the_buffer() -> None:
    stream = GeminiStream()
    tool = {"type": "tool_use", "tool_name": "x", "tool_id": "1", "parameters": {"c": "[DONE:t]"}}
    assert texts(stream, gemini_delta("[DONE:t] s"), tool) == ["[DONE:t] s"]
    full = {"type": "message", "role": "assistant", "content": "whole"}
    assert texts(stream, gemini_delta("a"), full) == ["a", "whole"]
    assert texts(stream, "stderr noise", gemini_delta("b")) == ["stderr noise"]
    big = "x" * (1 << 16)
    assert texts(stream, gemini_delta(big)) == ["b" + big]
    user = {"type": "message", "role": "user", "content": "[DONE:t] prompt"}
    failed = {"type": "tool_result", "tool_id": "1", "status": "error", "error": {"message": "e"}}
    assert texts(stream, user, failed) == ["e"]


def test_opencode_tool_error_and_session() -> None:
    stream = OpencodeJson()
    part = {
        "type": "tool",
        "state": {"status": "error", "input": {"c": "[DONE:t] i"}, "error": "E"},
    }
    found = texts(stream, {"type": "tool_use", "sessionID": "ses_1", "part": part})
    assert found == ["E"]
    assert stream.session_id == "ses_1"


def test_plain_text_is_every_line() -> None:
    stream = PlainText()
    assert stream.texts('{"type": "x"}') == ['{"type": "x"}']
    assert stream.session_id is None and stream.usage == {}


def test_claude_counts_each_message_usage_once_until_the_result_gives_totals() -> None:
    stream = ClaudeStream()

    def block(message_id: str, text: str) -> dict[str, object]:
        usage = {"input_tokens": 4, "output_tokens": 60, "cache_read_input_tokens": 9000}
        content = [{"type": "text", "text": text}]
        return {"type": "assistant", "message": {"id": message_id, "content": content,
                                                 "usage": usage}}  # fmt: skip

    texts(stream, block("m1", "a"), block("m1", "b"))  # two blocks of one message
    assert stream.usage == {"input_tokens": 4, "output_tokens": 60}
    texts(stream, block("m2", "c"))
    assert stream.usage == {"input_tokens": 8, "output_tokens": 120}
    result = {"type": "result", "subtype": "success", "total_cost_usd": 0.5,
              "usage": {"input_tokens": 10, "output_tokens": 100}}  # fmt: skip
    texts(stream, result, block("m3", "late"))
    assert stream.usage == {"cost_usd": 0.5, "input_tokens": 10, "output_tokens": 100,
                            "subtype": "success"}  # fmt: skip
