"""`sandbox: bwrap` (DESIGN §14): every process of an attempt runs in a bubblewrap sandbox
that lets it write its own project only. Real `doit`, real agents (the fake agent), real
bwrap; skipped, with the reason, where bwrap is missing or refused (CI installs it)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchlib.executors.sandbox import Sandbox, probe, wrap
from tests.conftest import FAKE_AGENT, Checkout, pid_alive

PLAN = "box"
STANDINS = Path(__file__).parent / "standins"
_WHY_NOT = probe()
needs_bwrap = pytest.mark.skipif(_WHY_NOT is not None, reason=f"no sandbox here: {_WHY_NOT}")


def boxed(co: Checkout, tmp: Path, tasks: list[dict[str, Any]], **extra: Any) -> Path:
    """A plan under `sandbox: bwrap` whose fake agent records into a `sandboxWritable`
    folder (the checkout itself is read-only to it); the projects are `here` (the checkout
    itself, path `.`), `a` and `b`. The record folder is returned."""
    rec = tmp / "rec"
    rec.mkdir(exist_ok=True)
    argv = [sys.executable, str(FAKE_AGENT), str(co.scenario_file), str(rec / "record.jsonl")]
    projects = [{"name": n, "path": p} for n, p in (("here", "."), ("a", "a"), ("b", "b"))]
    plan = {
        "planId": PLAN,
        "agent": {"command": argv},
        "defaults": {"sandbox": "bwrap", "stallTimeout": "60s"},
        "sandboxWritable": [str(rec)],
        "projects": projects,
        "tasks": [{"project": "a", "title": t["id"], **t} for t in tasks],
        **extra,
    }
    co.write_plan(plan, f"{PLAN}.json")
    co.record_file = rec / "record.jsonl"
    return rec


def log(co: Checkout, task: str, attempt: int = 1, suffix: str = "log") -> str:
    return (co.root / ".orch" / PLAN / "logs" / f"{task}.{attempt}.{suffix}").read_text()


def task_ref(co: Checkout, task: str) -> dict[str, Any]:
    record = next(t for t in co.state(PLAN)["tasks"] if t["id"] == task)
    return dict(record["ref"])


def with_terminal_id(terminal_id: str) -> list[int]:
    """Every process of this machine whose environment carries the attempt's terminal id."""
    needle = f"\0TERMINAL_ID={terminal_id}\0".encode()
    found = []
    for name in os.listdir("/proc"):
        try:
            environ = b"\0" + Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if name.isdigit() and needle in environ and pid_alive(int(name)):
            found.append(int(name))
    return found


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


# --- plan keys and options (no bwrap needed) ----------------------------------------------


def test_bad_sandbox_values_are_located_plan_errors(checkout: Checkout, tmp_path: Path) -> None:
    boxed(checkout, tmp_path, [{"id": "t", "sandbox": "bwarp"}], sandboxWritable=[".orch/x"])
    plan = json.loads((checkout.root / "plans" / f"{PLAN}.json").read_text())
    plan["projects"][1]["sandbox"] = 3
    checkout.write_plan(plan, f"{PLAN}.json")
    result = checkout.doit("list")
    assert result.returncode == 3, output(result)
    lines = result.stderr.splitlines()
    assert any(
        "tasks[0].sandbox: 'bwarp' is not one of none, bwrap (did you mean 'bwrap'?)" in line
        for line in lines
    ), lines
    assert any("projects[1].sandbox: expected a string" in line for line in lines), lines
    assert any(
        "sandboxWritable[0]: '.orch/x' is inside the checkout's .orch" in line for line in lines
    ), lines
    assert all(line.startswith(f"plans/{PLAN}.json:") for line in lines), lines


def test_an_unknown_sandbox_option_is_one_line(checkout: Checkout, tmp_path: Path) -> None:
    boxed(checkout, tmp_path, [{"id": "t", "command": "true"}])
    result = checkout.doit("--sandbox", "bwarp")
    assert result.returncode == 3, output(result)
    assert (
        result.stderr.strip().splitlines()
        == ["orchlib: --sandbox 'bwarp' is not one of none, bwrap (did you mean 'bwrap'?)"]
        or "did you mean 'bwrap'" in result.stderr
    ), output(result)
    env = {"ORCH_SANDBOX": "box"}
    result = checkout.doit(env=env)
    assert result.returncode == 3 and "ORCH_SANDBOX 'box' is not one of" in output(result)


def test_wrap_lays_orchlibs_files_over_a_project_at_the_checkout(tmp_path: Path) -> None:
    root = tmp_path / "co"
    for name in (".orch", "plans", "a"):
        (root / name).mkdir(parents=True)
    box = Sandbox(
        writable=(str(root), str(root / ".orch" / "worktrees" / "p" / "t")),
        readonly=(str(root / ".orch"), str(root / "plans"), str(root / "a"), str(root / "gone")),
        visible=(str(root),),
    )
    (root / ".orch" / "worktrees" / "p" / "t").mkdir(parents=True)
    argv = wrap(["agent", "--flag"], box, {"PATH": "/usr/bin:/bin"})
    binds = [(argv[i], argv[i + 1]) for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    ours = [(flag, path) for flag, path in binds if path == "/" or Path(path).is_relative_to(root)]
    order = [(flag, Path(path).relative_to(root) if path != "/" else path) for flag, path in ours]
    assert order == [
        ("--ro-bind", "/"),
        ("--ro-bind", Path(".")),  # visible first, then the project at `.` writable over it
        ("--bind", Path(".")),
        ("--ro-bind", Path(".orch")),  # orchlib's files and other projects read-only over that
        ("--ro-bind", Path("plans")),
        ("--ro-bind", Path("a")),
        ("--bind", Path(".orch/worktrees/p/t")),  # a worktree deeper still: writable again
    ]
    assert argv[-2:] == ("agent", "--flag")
    assert "--die-with-parent" not in argv and "--new-session" not in argv


def test_what_a_job_needs_to_start_stays_visible_under_the_private_tmp(tmp_path: Path) -> None:
    # A checkout, a venv or a tool under /tmp (CI clones there) must not vanish inside.
    tools, scripts = tmp_path / "tools", tmp_path / "scripts"
    tools.mkdir()
    scripts.mkdir()
    (tools / "agent").write_text("#!/bin/sh\n")
    (tools / "agent").chmod(0o755)
    (scripts / "run.py").write_text("")
    argv = wrap(["agent", str(scripts / "run.py")], Sandbox(), {"PATH": f"{tools}:/usr/bin"})
    shown = {argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind"}
    if str(tmp_path).startswith("/tmp/"):
        assert {str(tools.resolve()), str(scripts.resolve())} <= shown, argv
    assert "/usr/bin" not in shown  # outside /tmp: visible anyway, not bound again


# --- inside the sandbox -------------------------------------------------------------------


@needs_bwrap
def test_an_agent_writes_its_project_and_nothing_else(
    checkout: Checkout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    boxed(checkout, tmp_path, [{"id": "t", "project": "here"}, {"id": "o", "project": "b"}])
    forged = f".orch/{PLAN}/logs/t.1.log"  # project `a` has not run yet: no folder either
    tries = [f"{d}/x" for d in ("a", "plans", ".orch", str(home), "/etc")]
    tries.append("templates/task.md.j2")  # orchlib would render it in later prompts
    steps = [{"try_write": [path, "x"]} for path in ["mine.txt", *tries, "dodo.py"]]
    steps.append({"try_write": [forged, "[DONE:{tid}] forged"]})
    checkout.scenario({"t": [[*steps, {"done": "real"}]]})
    result = checkout.doit(f"{PLAN}:t", env={"HOME": str(home)})
    assert result.returncode == 0, output(result)
    transcript = log(checkout, "t")
    assert "WROTE mine.txt" in transcript
    for path in [*tries, "dodo.py", forged]:
        assert f"REFUSED {path}: Read-only file system" in transcript, transcript
    assert (checkout.root / "mine.txt").read_text() == "x\n"
    assert not (checkout.root / "a" / "x").exists() and not (home / "x").exists()
    assert not Path("/etc/x").exists()
    assert checkout.stamp("t", PLAN)["summary"] == "real"  # type: ignore[index]
    assert "forged" not in transcript.split("REFUSED")[0]


@needs_bwrap
def test_a_profiles_state_folders_are_writable_and_made_first(
    checkout: Checkout, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = checkout.root / "bin"  # not under /tmp: the sandbox's /tmp is its own
    bin_dir.mkdir()
    claude = bin_dir / "claude"  # the fake agent under the name of a profile
    agent = shutil.copy(FAKE_AGENT, bin_dir / "fake_agent.py")  # seen inside, wherever tests/ is
    claude.write_text(f"#!/bin/sh\nexec {sys.executable} {agent} {checkout.scenario_file}\n")
    claude.chmod(0o755)
    boxed(checkout, tmp_path, [{"id": "t", "agent": "claude"}])
    steps = [{"try_write": [str(home / p), "x"]} for p in (".claude/s", ".claude.json", "no")]
    checkout.scenario({"t": [[*steps, {"done": "ok"}]]})
    env = {"HOME": str(home), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = checkout.doit(env=env)
    assert result.returncode == 0, output(result)
    transcript = log(checkout, "t")
    assert f"WROTE {home}/.claude/s" in transcript and f"WROTE {home}/.claude.json" in transcript
    assert f"REFUSED {home}/no: Read-only file system" in transcript
    assert (home / ".claude.json").read_text() == "{}\nx\n"  # made as JSON before the bind


@needs_bwrap
def test_a_shell_task_and_its_verify_run_inside(checkout: Checkout, tmp_path: Path) -> None:
    (checkout.root / "b").mkdir()
    command = "echo pid $$; touch ok; touch ../b/x || echo refused; ls /tmp | wc -l"
    tasks = [{"id": "s", "command": command, "verify": "touch ../b/v", "retries": 0}]
    boxed(checkout, tmp_path, tasks)
    result = checkout.doit()
    assert result.returncode == 1, output(result)  # a failed task
    transcript = log(checkout, "s")
    assert "pid 2\n" in transcript  # its own PID namespace: bwrap's init is 1
    assert "refused" in transcript and (checkout.root / "a" / "ok").exists()
    assert "Read-only file system" in log(checkout, "s", suffix="verify.log")
    assert not (checkout.root / "b" / "x").exists() and not (checkout.root / "b" / "v").exists()
    assert "verify failed" in result.stdout


@needs_bwrap
def test_a_killed_run_adopts_the_sandboxed_agent(checkout: Checkout, tmp_path: Path) -> None:
    rec = boxed(checkout, tmp_path, [{"id": "t"}])
    go = rec / "go"
    checkout.scenario({"t": [[{"say": "started"}, {"wait_file": str(go)}, {"done": "adopted"}]]})
    first = checkout.start()
    checkout.wait_for(lambda: "t" in checkout.dispatched())
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    ref = task_ref(checkout, "t")
    assert pid_alive(ref["pid"])  # bwrap and its agent outlived the killed `doit`
    go.touch()
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert checkout.dispatched() == ["t"]  # followed, not started again
    assert checkout.stamp("t", PLAN)["summary"] == "adopted"  # type: ignore[index]
    assert not pid_alive(ref["pid"])


@needs_bwrap
def test_ctrl_c_stops_everything_inside_after_its_grace(checkout: Checkout, tmp_path: Path) -> None:
    rec = boxed(checkout, tmp_path, [{"id": "t"}])
    clean = rec / "clean"
    stray = str(rec / "stray.pid")
    steps = [{"term_grace": [str(clean), 0.3]}, {"spawn_child": True},
             {"spawn_setsid": stray}, {"say": "ready"}, {"hang": True}]  # fmt: skip
    checkout.scenario({"t": [steps]})
    run = checkout.start()
    checkout.wait_for(lambda: (rec / "stray.pid").exists())
    terminal_id = task_ref(checkout, "t")["terminalId"]
    assert len(with_terminal_id(terminal_id)) >= 4  # bwrap, its init, agent, child, stray
    os.kill(run.pid, signal.SIGINT)
    run.communicate(timeout=30)
    assert run.returncode == 130
    assert clean.read_text() == "shut down cleanly\n"  # TERM reached it; no KILL cut it short
    assert with_terminal_id(terminal_id) == []


@needs_bwrap
def test_a_worktree_agent_commits_but_cannot_plant_hooks(
    checkout: Checkout, tmp_path: Path
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    boxed(checkout, tmp_path, [{"id": "w"}])
    plan = json.loads((checkout.root / "plans" / f"{PLAN}.json").read_text())
    plan["projects"][1]["isolation"] = "worktree"
    checkout.write_plan(plan, f"{PLAN}.json")
    repo = checkout.root / "a"
    steps = [{"write": ["f.txt", "work"]}, {"git": ["add", "f.txt"]},
             {"git": ["commit", "-qm", "by the agent"]},
             {"try_write": [f"{repo}/.git/hooks/post-commit", "touch /tmp/x"]},
             {"try_write": [f"{repo}/.git/config", "[core]"]}, {"done": "committed"}]  # fmt: skip
    checkout.scenario({"w": [steps]})
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    transcript = log(checkout, "w")
    for planted in (".git/hooks/post-commit", ".git/config"):
        assert f"REFUSED {repo}/{planted}: Read-only file system" in transcript, transcript
    logged = subprocess.run(["git", "log", "--format=%s"], cwd=checkout.root / "a",
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "by the agent" in logged
    assert (checkout.root / "a" / "f.txt").read_text() == "work"


# --- bwrap missing or refused: nothing starts ---------------------------------------------


def _bin_without_bwrap(tmp_path: Path) -> Path:
    """A PATH folder with what a shell task needs, and no bwrap."""
    bin_dir = tmp_path / "nobwrap"
    bin_dir.mkdir()
    for tool in ("sh", "env", "true"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    return bin_dir


def test_a_missing_bwrap_stops_the_run_before_anything_starts(
    checkout: Checkout, tmp_path: Path
) -> None:
    boxed(checkout, tmp_path, [{"id": "s", "command": "touch ran"}])
    result = checkout.doit(env={"PATH": str(_bin_without_bwrap(tmp_path))})
    assert result.returncode == 3, output(result)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"plans/{PLAN}.json:") and ": defaults.sandbox: " in line
    assert "sandbox: bwrap cannot run (tasks s): bwrap not found on PATH" in line
    assert "set sandbox: none" in line
    assert not (checkout.root / "a" / "ran").exists()
    assert not (checkout.root / ".orch" / PLAN / "logs").exists()


def test_a_refused_bwrap_names_the_cause_and_none_goes_round_it(
    checkout: Checkout, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "bwrap"  # as bwrap fails where user namespaces are off
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace, likely because the "
        "kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    boxed(checkout, tmp_path, [{"id": "s", "command": "touch ran", "sandbox": "bwrap"}])
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = checkout.doit(env=env)
    assert result.returncode == 3, output(result)
    (line,) = result.stderr.strip().splitlines()
    assert "tasks[0].sandbox" in line and "bwrap refused to make a sandbox: bwrap: No perm" in line
    assert not (checkout.root / "a" / "ran").exists()
    result = checkout.doit("--sandbox", "none", env=env)  # the way round, for one run
    assert result.returncode == 0, output(result)
    assert (checkout.root / "a" / "ran").exists()
    result = checkout.doit(env=env)  # a no-op re-run never asks bwrap (nor switching re-runs)
    assert result.returncode == 0 and "nothing to do" in result.stdout, output(result)


def test_orch_sandbox_asks_for_it_where_the_plan_does_not(
    checkout: Checkout, tmp_path: Path
) -> None:
    boxed(checkout, tmp_path, [{"id": "s", "command": "touch ran"}])
    plan = json.loads((checkout.root / "plans" / f"{PLAN}.json").read_text())
    del plan["defaults"]["sandbox"]
    checkout.write_plan(plan, f"{PLAN}.json")
    env = {"PATH": str(_bin_without_bwrap(tmp_path)), "ORCH_SANDBOX": "bwrap"}
    result = checkout.doit(env=env)
    assert result.returncode == 3, output(result)
    assert result.stderr.startswith("orchlib: --sandbox bwrap (or ORCH_SANDBOX=bwrap): sandbox")


@needs_bwrap
def test_a_dask_worker_applies_the_sandbox(checkout: Checkout, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    (checkout.root / "b").mkdir()
    command = "echo pid $$; touch ok; touch ../b/x || echo refused"
    boxed(checkout, tmp_path, [{"id": "s", "command": command, "verify": "test -f ok"}])
    result = checkout.doit("--executor", "dask", "--scheduler", "local:1", timeout=120)
    assert result.returncode == 0, output(result)
    transcript = log(checkout, "s")
    assert "pid 2\n" in transcript and "refused" in transcript, transcript
    assert (checkout.root / "a" / "ok").exists() and not (checkout.root / "b" / "x").exists()
    assert task_ref(checkout, "s")["executor"] == "dask"


@needs_bwrap
def test_a_usage_limit_and_a_continued_session_work_inside(
    checkout: Checkout, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    until = time.time() + 4  # the agent must start before it ends, on a loaded machine too
    agent = {"profile": "claude", "session": "continue",
             "env": {"STANDIN_LIMIT_UNTIL": f"{until:.3f}"}}  # fmt: skip
    rec = boxed(checkout, tmp_path, [{"id": "t1", "agent": agent}], defaults={"sandbox": "bwrap"})
    env = {"PATH": f"{STANDINS}:{os.environ['PATH']}", "HOME": str(home),
           "STANDIN_RECORD": str(rec / "standins.jsonl")}  # fmt: skip
    result = checkout.doit(env=env, timeout=60)
    assert result.returncode == 0, output(result)
    assert "usage limit" in result.stdout
    calls = [json.loads(line) for line in (rec / "standins.jsonl").read_text().splitlines()]
    first, second = calls
    assert second["argv"][-2:] == ["--resume", first["session_id"]] and second["time"] >= until
    assert (home / ".claude").is_dir() and (home / ".claude.json").is_file()  # made for it


def test_a_dask_workers_probe_names_a_missing_bwrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchlib.executors import dask_cluster

    marker = tmp_path / ".orch" / "probe" / "m"
    marker.parent.mkdir(parents=True)
    marker.write_text("token")
    monkeypatch.setenv("PATH", str(_bin_without_bwrap(tmp_path)))
    lines = dask_cluster.probe(str(marker), "token", [], True)
    assert lines[-1].startswith("a working sandbox (bwrap not found on PATH"), lines
    assert not any("sandbox" in line for line in dask_cluster.probe(str(marker), "token", []))


@needs_bwrap
def test_enter_reaches_a_stalled_agent_inside(checkout: Checkout, tmp_path: Path) -> None:
    boxed(checkout, tmp_path, [{"id": "t", "stallTimeout": "1s"}])
    plan = json.loads((checkout.root / "plans" / f"{PLAN}.json").read_text())
    plan["agent"].update(prompt="file", env={"FAKE_NO_STDIN": "1"})
    checkout.write_plan(plan, f"{PLAN}.json")
    checkout.scenario({"t": [[{"read_stdin_line": True}, {"done": "woke up"}]]})
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert "got Enter" in log(checkout, "t")  # through bwrap to the agent's stdin


def asked_then_run(
    co: Checkout, env: dict[str, str], task: str = "t1"
) -> subprocess.CompletedProcess[str]:
    """The task's agent asks; the answer is given; the run that follows."""
    asked = co.doit(env=env, timeout=180)
    assert f"{task} asks: Which colour should it be?" in asked.stdout, output(asked)
    assert co.doit("answer", f"{PLAN}:{task}", "blue", env=env).returncode == 0
    return co.doit(env=env, timeout=180)


# --- the real Claude Code (when installed; CI does not install it) ----------------------

REAL_CLAUDE = os.environ.get("ORCH_REAL_CLAUDE", "")  # the path of a real `claude`


@needs_bwrap
@pytest.mark.skipif(not REAL_CLAUDE, reason="set ORCH_REAL_CLAUDE to a real Claude Code")
def test_the_real_claude_code_inside(checkout: Checkout, tmp_path: Path) -> None:
    """A question answered, a continued session, its project written and nothing else,
    against a scripted model on 127.0.0.1 (tests/scripted_anthropic.py)."""
    from tests.daskcluster import free_port

    home, port = tmp_path / "home", free_port()
    home.mkdir()
    (checkout.root / "b").mkdir()
    script = "echo hi >> mine.txt && echo WROTE; touch ../b/x $HOME/x 2>&1 || echo REFUSED"
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "scripted_anthropic.py"),
                               str(port), script, "--ask"])  # fmt: skip
    agent = {"profile": "claude", "args": ["--allowedTools", "Bash"], "session": "continue"}
    tasks = [{"id": "t1", "agent": agent}, {"id": "t2", "agent": agent, "dependsOn": ["t1"]}]
    boxed(checkout, tmp_path, tasks)
    env = {"HOME": str(home), "PATH": f"{Path(REAL_CLAUDE).parent}:{os.environ['PATH']}",
           "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_API_KEY": "sk-scripted",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"}  # fmt: skip
    try:
        result = asked_then_run(checkout, env)
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, output(result)
    stamps = [checkout.stamp(t, PLAN) or {} for t in ("t1", "t2")]
    assert "WROTE" in stamps[0]["summary"] and "Read-only file system" in stamps[0]["summary"]
    assert stamps[0]["sessionId"] == stamps[1]["sessionId"]  # t2 resumed t1's session
    assert (checkout.root / "a" / "mine.txt").read_text() == "hi\nhi\n"
    assert not (checkout.root / "b" / "x").exists() and not (home / "x").exists()


REAL_AIDER = os.environ.get("ORCH_REAL_AIDER", "")  # the path of a real `aider`


@needs_bwrap
@pytest.mark.skipif(not REAL_AIDER, reason="set ORCH_REAL_AIDER to a real aider")
def test_the_real_aider_inside(checkout: Checkout, tmp_path: Path) -> None:
    """After a question answered, aider edits its project; its edit of another project's
    file is refused by the
    sandbox (without one it lands), against tests/scripted_openai.py on 127.0.0.1."""
    from tests.daskcluster import free_port

    home, port = tmp_path / "home", free_port()
    home.mkdir()
    (checkout.root / "b").mkdir()
    outside = checkout.root / "b" / "x"
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "scripted_openai.py"),
                               str(port), "true", str(outside), "--ask"])  # fmt: skip
    args = ["--model", "openai/scripted", "--openai-api-base", f"http://127.0.0.1:{port}/v1",
            "--no-git", "--edit-format", "diff", "--no-show-model-warnings"]  # fmt: skip
    boxed(checkout, tmp_path, [{"id": "t", "agent": {"profile": "aider", "args": args}}])
    env = {"HOME": str(home), "PATH": f"{os.environ['PATH']}:{Path(REAL_AIDER).parent}",
           "OPENAI_API_KEY": "sk-scripted"}  # fmt: skip
    try:
        result = asked_then_run(checkout, env, "t")
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, output(result)
    assert (checkout.root / "a" / "mine.txt").read_text() == "hi\n"
    transcript = " ".join(log(checkout, "t", 2).split())  # aider wraps its long lines
    assert f"Unable to create {outside}, skipping edits" in transcript and not outside.exists()
    assert (home / ".aider").is_dir()  # its caches and analytics id, in its state folder


REAL_OPENCODE = os.environ.get("ORCH_REAL_OPENCODE", "")  # the path of a real `opencode`


@needs_bwrap
@pytest.mark.skipif(not REAL_OPENCODE, reason="set ORCH_REAL_OPENCODE to a real opencode")
def test_the_real_opencode_inside(checkout: Checkout, tmp_path: Path) -> None:
    """opencode's bash tool writes its project and is refused another's, and the next task
    continues its session (kept in its state folders), against tests/scripted_openai.py."""
    from tests.daskcluster import free_port

    home, port = tmp_path / "home", free_port()
    (home / ".config" / "opencode").mkdir(parents=True)
    provider = {"npm": "@ai-sdk/openai-compatible", "name": "Scripted",
                "options": {"baseURL": f"http://127.0.0.1:{port}/v1", "apiKey": "sk-scripted"},
                "models": {"m": {"name": "m", "tool_call": True}}}  # fmt: skip
    # opencode's own permissions let everything through: the sandbox is what refuses.
    allow = {"bash": "allow", "edit": "allow", "external_directory": "allow"}
    config = {"provider": {"scripted": provider}, "permission": allow}
    (home / ".config" / "opencode" / "opencode.json").write_text(json.dumps(config))
    (checkout.root / "b").mkdir()
    command = "echo hi >> mine.txt && echo WROTE; touch ../b/x 2>&1 || echo REFUSED"
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "scripted_openai.py"),
                               str(port), command, "--tools", "--ask"])  # fmt: skip
    agent = {"profile": "opencode", "args": ["--model", "scripted/m"], "session": "continue"}
    tasks = [{"id": "t1", "agent": agent}, {"id": "t2", "agent": agent, "dependsOn": ["t1"]}]
    boxed(checkout, tmp_path, tasks)
    env = {"HOME": str(home), "PATH": f"{os.environ['PATH']}:{Path(REAL_OPENCODE).parent}"}
    try:
        result = asked_then_run(checkout, env)
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, output(result)
    stamps = [checkout.stamp(t, PLAN) or {} for t in ("t1", "t2")]
    assert "WROTE | touch: cannot touch '../b/x': Read-only file system" in stamps[0]["summary"]
    assert stamps[0]["sessionId"] == stamps[1]["sessionId"]  # t2 continued t1's session
    assert (checkout.root / "a" / "mine.txt").read_text() == "hi\nhi\n"
    assert not (checkout.root / "b" / "x").exists()


REAL_GEMINI = os.environ.get("ORCH_REAL_GEMINI", "")  # the path of a real `gemini`


@needs_bwrap
@pytest.mark.skipif(not REAL_GEMINI, reason="set ORCH_REAL_GEMINI to a real Gemini CLI")
def test_the_real_gemini_cli_inside(checkout: Checkout, tmp_path: Path) -> None:
    """Gemini CLI's shell tool writes its project and is refused another's, and the next
    task continues its session (in ~/.gemini), against tests/scripted_gemini.py."""
    from tests.daskcluster import free_port

    home, port = tmp_path / "home", free_port()
    (home / ".gemini").mkdir(parents=True)
    auth = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(auth))
    (checkout.root / "b").mkdir()
    command = "echo hi >> mine.txt && echo WROTE; touch ../b/x 2>&1 || echo REFUSED"
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "scripted_gemini.py"),
                               str(port), command, "--ask"])  # fmt: skip
    agent = {"profile": "gemini", "args": ["--yolo", "--model", "scripted"], "session": "continue"}
    tasks = [{"id": "t1", "agent": agent}, {"id": "t2", "agent": agent, "dependsOn": ["t1"]}]
    boxed(checkout, tmp_path, tasks)
    env = {"HOME": str(home), "PATH": f"{os.environ['PATH']}:{Path(REAL_GEMINI).parent}",
           "GOOGLE_GEMINI_BASE_URL": f"http://127.0.0.1:{port}",
           "GEMINI_API_KEY": "scripted"}  # fmt: skip
    try:
        result = asked_then_run(checkout, env)
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, output(result)
    stamps = [checkout.stamp(t, PLAN) or {} for t in ("t1", "t2")]
    assert "touch: cannot touch '../b/x': Read-only file system" in stamps[0]["summary"]
    assert stamps[0]["sessionId"] == stamps[1]["sessionId"]  # t2 continued t1's session
    assert (checkout.root / "a" / "mine.txt").read_text() == "hi\nhi\n"
    assert not (checkout.root / "b" / "x").exists()


REAL_CODEX = os.environ.get("ORCH_REAL_CODEX", "")  # the path of a real `codex`


@needs_bwrap
@pytest.mark.skipif(not REAL_CODEX, reason="set ORCH_REAL_CODEX to a real Codex CLI")
def test_the_real_codex_inside(checkout: Checkout, tmp_path: Path) -> None:
    """Codex, its own sandbox off, runs a command that writes its project and is refused
    another's by ours, and the next task resumes its session (in ~/.codex), against
    tests/scripted_responses.py."""
    from tests.daskcluster import free_port

    home, port = tmp_path / "home", free_port()
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(
        'model = "scripted"\nmodel_provider = "scripted"\n[model_providers.scripted]\n'
        f'name = "scripted"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
        'env_key = "SCRIPTED_API_KEY"\nwire_api = "responses"\n'
    )
    (checkout.root / "b").mkdir()
    command = "echo hi >> mine.txt && echo WROTE; touch ../b/x 2>&1 || echo REFUSED"
    server = subprocess.Popen([sys.executable,
                               str(Path(__file__).parent / "scripted_responses.py"),
                               str(port), command, "--ask"])  # fmt: skip
    agent = {"profile": "codex", "args": ["--sandbox", "danger-full-access"],
             "session": "continue"}  # fmt: skip
    tasks = [{"id": "t1", "agent": agent}, {"id": "t2", "agent": agent, "dependsOn": ["t1"]}]
    # a self-configured provider's key is withheld unless included (docs/agents.md)
    boxed(checkout, tmp_path, tasks, environment={"include": ["SCRIPTED_API_KEY"]})
    env = {"HOME": str(home), "PATH": f"{os.environ['PATH']}:{Path(REAL_CODEX).parent}",
           "SCRIPTED_API_KEY": "scripted"}  # fmt: skip
    try:
        result = asked_then_run(checkout, env)
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, output(result)
    stamps = [checkout.stamp(t, PLAN) or {} for t in ("t1", "t2")]
    assert "touch: cannot touch '../b/x': Read-only file system" in stamps[0]["summary"]
    assert stamps[0]["sessionId"] == stamps[1]["sessionId"]  # t2 resumed t1's session
    assert (checkout.root / "a" / "mine.txt").read_text() == "hi\nhi\n"
    assert not (checkout.root / "b" / "x").exists()
