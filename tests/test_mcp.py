"""`doit mcp` driven by the MCP SDK's own stdio client, and `doit skill` (DESIGN §17).

The server is the real `doit mcp` in a tmp checkout; the runs it starts are real detached
`doit` processes dispatching the fake agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import Checkout, pid_alive
from mcp import ClientSession, StdioServerParameters, stdio_client
from ruamel.yaml import YAML

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def server(folder: Path, errlog: Any) -> AsyncIterator[ClientSession]:
    """A client session with `doit mcp` started in `folder`."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "doit", "mcp"],
                                   cwd=str(folder), env=env)  # fmt: skip
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    """The tool's JSON result; fails the test on a tool error."""
    result = await session.call_tool(tool, args)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    assert not result.is_error, text
    assert result.structured_content is not None
    assert json.loads(text) == result.structured_content  # the text is the same JSON
    return result.structured_content


async def fails(session: ClientSession, tool: str, **args: Any) -> str:
    """The tool error's text; fails the test when the tool succeeds."""
    result = await session.call_tool(tool, args)
    text = "\n".join(c.text for c in result.content)  # type: ignore[union-attr]
    assert result.is_error, text
    return text


async def until(session: ClientSession, ready: Callable[[dict[str, str]], bool],
                timeout: float = 20.0) -> dict[str, str]:  # fmt: skip
    """Poll `status` until `ready(states)` holds; `states` maps PLAN:TASK to its state."""
    deadline = time.monotonic() + timeout
    while True:
        doc = await call(session, "status")
        states = {t["name"]: t["state"] for p in doc["plans"] for t in p["tasks"]}
        if ready(states):
            return states
        assert time.monotonic() < deadline, f"status never got there: {states}"
        await anyio.sleep(0.05)


async def run_ended(session: ClientSession, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (await call(session, "list_plans"))["runningPid"] is not None:
        assert time.monotonic() < deadline, "the run did not end"
        await anyio.sleep(0.05)


def plan_text(co: Checkout, plan_id: str, tasks: list[dict[str, Any]]) -> str:
    """A YAML plan with one project and the fake agent."""
    plan = {"planId": plan_id, "agent": co.agent(),
            "projects": [{"name": "app", "path": "./app"}], "tasks": tasks}  # fmt: skip
    out = Path(co.root.parent / "plan-text.yaml")
    YAML().dump(plan, out)
    return out.read_text()


def task(task_id: str, *deps: str) -> dict[str, Any]:
    return {"id": task_id, "project": "app", "title": f"task {task_id}", "dependsOn": list(deps)}


@pytest.fixture
def co(checkout: Checkout) -> Any:
    yield checkout
    _stop_detached_run(checkout.root)


def _stop_detached_run(root: Path) -> None:
    """A run the server started and a failed test left going: kill it (and its agents)."""
    lock = root / ".orch" / "run.lock"
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock.read_text().strip())
        if pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_plan_run_question_log_and_stop_through_mcp(
    co: Checkout, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    co.scenario({
        "t2": [[{"question": "JWT or sessions?"}], [{"say": "using the answer"}, {"done": "auth"}]],
        "slow": [[{"progress": [10, "started"]}, {"hang": True}]],
    })  # fmt: skip
    text = plan_text(co, "web", [task("t1"), task("t2", "t1")])
    errlog = (tmp_path / "server-stderr.txt").open("w")

    async def scenario() -> None:
        async with server(co.root, errlog) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert names == {"list_plans", "validate_plan", "write_plan", "run", "status",
                             "task_log", "answer", "approve", "reject", "stop_run"}  # fmt: skip
            assert await call(s, "validate_plan", text=text) == {"valid": True, "errors": []}
            assert (await call(s, "write_plan", plan_id="web", text=text))["path"] == (
                "plans/web.yaml"
            )
            assert (co.root / "plans" / "web.yaml").read_text() == text

            started = await call(s, "run")
            assert started["pid"] > 0
            states = await until(s, lambda st: st.get("web:t2") == "QUESTION")
            assert states["web:t1"] == "DONE"
            await run_ended(s)
            status = await call(s, "status", target="web:t2")
            assert status["plans"][0]["tasks"][0]["last"] == "? JWT or sessions?"

            said = await call(s, "answer", task="web:t2", text="JWT only")
            assert "answered" in said["message"]
            await call(s, "run", targets=["web"])
            await until(s, lambda st: st["web:t2"] == "DONE")
            await run_ended(s)
            assert "JWT only" in co.records()[-1]["prompt"]  # the answer reached the agent
            listed = (await call(s, "list_plans"))["plans"]
            assert listed[0]["counts"] == {"DONE": 2} and listed[0]["file"] == "plans/web.yaml"

            log = await call(s, "task_log", task="web:t2", tail=2)
            assert log["attempt"] == 2 and log["lines"] >= 2
            assert log["text"].splitlines()[-2:] == ["using the answer",
                                                     log["text"].splitlines()[-1]]  # fmt: skip
            assert "[DONE:" in log["text"].splitlines()[-1]

            # The same JSON as `doit status --json`, the same text as `doit log`.
            assert await call(s, "status") == json.loads(co.doit("status", "--json").stdout)
            assert log["text"].splitlines() == co.doit("log", "web:t2").stdout.splitlines()[-2:]

    async def start_slow() -> int:
        async with server(co.root, errlog) as s:
            slow = plan_text(co, "long", [task("slow")])
            await call(s, "write_plan", plan_id="long", text=slow)
            pid: int = (await call(s, "run", targets=["long"]))["pid"]
            await until(s, lambda st: st.get("long:slow") == "IN_PROGRESS")
            return pid

    async def stop(pid: int) -> None:
        async with server(co.root, errlog) as s:
            refused = await fails(s, "run")
            assert f"pid {pid}" in refused and "run lock" in refused
            stopped = await call(s, "stop_run")
            assert stopped == {"pid": pid, "stopped": True, "exitCode": None}  # not its child
            assert not pid_alive(pid)
            row = (await call(s, "status", target="long:slow"))["plans"][0]["tasks"][0]
            assert row["state"] == "ERROR" and "interrupted" in row["last"]
            assert "no run is going" in await fails(s, "stop_run")

    anyio.run(scenario)
    pid = anyio.run(start_slow)
    assert pid_alive(pid)  # the run outlives the server that started it
    anyio.run(stop, pid)
    errlog.close()
    assert "Traceback" not in (tmp_path / "server-stderr.txt").read_text()
    # The client logs each stdout line of the server that is not a protocol message.
    assert not [r for r in caplog.records if "Failed to parse" in r.getMessage()]


def test_approve_and_reject_through_mcp(co: Checkout, tmp_path: Path) -> None:
    co.write_plan({"planId": "web", "agent": co.agent(), "defaults": {"approve": True},
                   "projects": [{"name": "app", "path": "./app"}],
                   "tasks": [task("t1"), task("t2")]}, name="web.json")  # fmt: skip
    errlog = (tmp_path / "server-stderr.txt").open("w")

    async def scenario() -> None:
        async with server(co.root, errlog) as s:
            assert "not waiting for approval" in await fails(s, "approve", task="web:t1")
            await call(s, "run")
            await until(s, lambda st: set(st.values()) == {"APPROVAL"})
            await run_ended(s)
            assert "approved" in (await call(s, "approve", task="web:t1"))["message"]
            assert "PLAN:TASK" in await fails(s, "reject", task="t2", text="shorter")
            assert "say what to change" in await fails(s, "reject", task="web:t2", text=" ")
            assert "rejected" in (await call(s, "reject", task="web:t2", text="shorter"))["message"]
            states = await until(s, lambda st: st["web:t2"] == "PENDING")
            assert states["web:t1"] == "DONE"

    anyio.run(scenario)
    errlog.close()
    assert co.stamp("t1", "web") is not None and co.stamp("t2", "web") is None
    rejected = {t["id"]: t for t in co.state("web")["tasks"]}["t2"]["rejected"]
    assert rejected == "shorter"


def test_bad_input_is_a_tool_error_with_orchlib_message(co: Checkout, tmp_path: Path) -> None:
    co.write_plan({"planId": "web", "agent": co.agent(),
                   "projects": [{"name": "app", "path": "./app"}],
                   "tasks": [task("t1")]}, name="web.json")  # fmt: skip
    errlog = (tmp_path / "server-stderr.txt").open("w")
    bad = "planId: shop\nprojects: [{name: app, path: ./app}]\ntasks:\n  - {id: t1, project: app, title: x, dependsOn: [t9]}\n"  # noqa: E501
    clash = plan_text(co, "web", [task("t1")])

    async def scenario() -> None:
        async with server(co.root, errlog) as s:
            assert "unknown task 'web:t7'" in await fails(s, "answer", task="web:t7", text="x")
            assert "has no open question" in await fails(s, "answer", task="web:t1", text="x")
            assert "unknown task" in await fails(s, "task_log", task="nope:t1")
            assert "has no transcript yet" in await fails(s, "task_log", task="web:t1")
            assert "names no plan or task" in await fails(s, "status", target="shop")

            checked = await call(s, "validate_plan", text=bad)
            assert checked["valid"] is False
            assert checked["errors"] == [
                "plan.yaml:4:50: tasks[0].dependsOn[0]: unknown task 't9' (known: t1)"
            ]
            dup = await call(s, "validate_plan", text=clash)
            assert "plan id 'web' is already used by plans/web.json" in dup["errors"][0]
            as_json = await call(s, "validate_plan", text="{", format="json")
            assert as_json["errors"][0].startswith("plan.json:1:2: invalid JSON")

            refused = await fails(s, "write_plan", plan_id="shop", text=bad)
            assert "plans/shop.yaml:4:50: tasks[0].dependsOn[0]: unknown task 't9'" in refused
            assert not (co.root / "plans" / "shop.yaml").exists()
            other = await fails(s, "write_plan", plan_id="shop", text=clash)
            assert "planId: must be 'shop'" in other
            assert "plan_id '../x'" in await fails(s, "write_plan", plan_id="../x", text=bad)

            good = plan_text(co, "shop", [task("t1")])
            (co.root / "plans" / "shop.yaml").write_text("# mine\n")
            assert "plans/shop.yaml exists; pass force=true" in await fails(
                s, "write_plan", plan_id="shop", text=good)  # fmt: skip
            assert (co.root / "plans" / "shop.yaml").read_text() == "# mine\n"
            await call(s, "write_plan", plan_id="shop", text=good, force=True)
            assert (co.root / "plans" / "shop.yaml").read_text() == good

            ghost = good.replace("planId: shop", "planId: ghost").replace(
                sys.executable, "no-such-agent-cli"
            )
            await call(s, "write_plan", plan_id="ghost", text=ghost)
            nothing_ran = await fails(s, "run", targets=["ghost"])  # doit exited 3 at once
            assert "agent 'no-such-agent-cli' not found on PATH (tasks t1)" in nothing_ran
            (co.root / "plans" / "ghost.yaml").unlink()
            assert "target '--always'" in await fails(s, "run", targets=["--always"])
            assert "unknown executor 'k8s'" in await fails(s, "run", executor="k8s")
            (co.root / "plans" / "broken.yaml").write_text("planId: [\n")
            broken = await fails(s, "status")
            assert broken.splitlines()[0].endswith("plans/broken.yaml:2:1: invalid YAML: expected "
                                                   "the node content, but found '<stream end>' "
                                                   "(while parsing a flow node)")  # fmt: skip

    anyio.run(scenario)

    async def elsewhere() -> None:
        async with server(tmp_path, errlog) as s:
            assert "is not a checkout (no plans/ folder)" in await fails(s, "list_plans")

    anyio.run(elsewhere)
    errlog.close()
    assert "Traceback" not in (tmp_path / "server-stderr.txt").read_text()
    (co.root / "plans" / "broken.yaml").unlink()
    (co.root / "plans" / "shop.yaml").write_text(bad)  # what `doit` says of the same text
    assert co.doit("list").stderr.splitlines() == [
        "plans/shop.yaml:4:50: tasks[0].dependsOn[0]: unknown task 't9' (known: t1)"
    ]


def test_without_the_extra_doit_mcp_says_what_to_install(co: Checkout, tmp_path: Path) -> None:
    hidden = tmp_path / "no-mcp"
    hidden.mkdir()
    (hidden / "mcp.py").write_text("raise ImportError('not installed', name='mcp')\n")
    env = {**os.environ, "PYTHONPATH": str(hidden)}
    proc = subprocess.run([sys.executable, "-m", "doit", "mcp"], cwd=co.root, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr == (
        "orchlib: doit mcp needs the mcp extra: pip install 'orchlib[mcp]' (mcp is not installed)\n"
    )


def test_doit_skill_writes_skill_md_with_front_matter(co: Checkout, tmp_path: Path) -> None:
    done = co.doit("skill")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote .claude/skills/orchlib/SKILL.md\n"
    path = co.root / ".claude" / "skills" / "orchlib" / "SKILL.md"
    text = path.read_text()
    head, body = text.removeprefix("---\n").split("\n---\n", 1)
    front = YAML(typ="safe").load(head)
    assert set(front) == {"name", "description"} and front["name"] == "orchlib"
    assert "Use when" in front["description"]
    for tool in ("validate_plan", "write_plan", "run(", "status(", "task_log", "answer(",
                 "stop_run", "doit forget", "doit clean", "doit accept", "dependsOn"):  # fmt: skip
        assert tool in body, tool
    assert "{{" not in text and "{%" not in text

    assert co.doit("skill").stdout == ".claude/skills/orchlib/SKILL.md is up to date\n"
    path.write_text("my own skill\n")
    refused = co.doit("skill")
    assert refused.returncode == 3 and "exists and differs; --force" in refused.stderr
    assert path.read_text() == "my own skill\n"
    assert co.doit("skill", "--force").returncode == 0 and path.read_text() == text

    elsewhere = tmp_path / "skills"
    written = subprocess.run([sys.executable, "-m", "orchlib", "skill", "--dest", str(elsewhere)],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert (elsewhere / "SKILL.md").read_text() == text


def test_every_text_of_a_result_or_an_error_passes_the_door(
    co: Checkout, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    from orchlib.assistant import server as mcp_server
    from orchlib.assistant.shown import Door
    from orchlib.assistant.tools import Tools

    door = Door(lambda text: text.replace("s3cr3t", "[secret:KEY]"))
    monkeypatch.setattr(Tools, "door", lambda self: door)
    co.write_plan({"planId": "web", "summary": "uses s3cr3t", "agent": co.agent(),
                   "projects": [{"name": "app", "path": "./app"}],
                   "tasks": [task("t1")]}, name="web.json")  # fmt: skip
    tools = mcp_server.build(co.root)

    async def scenario() -> None:
        listed = await tools.call_tool("list_plans", {})
        assert listed.structured_content["plans"][0]["summary"] == "uses [secret:KEY]"
        assert "s3cr3t" not in listed.content[0].text  # type: ignore[union-attr]
        with pytest.raises(ToolError) as failed:
            await tools.call_tool("answer", {"task": "web:s3cr3t", "text": "x"})
        assert "unknown task 'web:[secret:KEY]'" in str(failed.value)

    anyio.run(scenario)


def test_secrets_in_results_and_errors_are_shown_by_name(
    co: Checkout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs once the secret filter (DESIGN §13, issue 19) is merged and Tools.door() uses it.
    pytest.importorskip("orchlib.redact", reason="the secret filter is not on this branch")
    secret = "supersecretvalue123"
    monkeypatch.setenv("MY_API_KEY", secret)  # the server, its run and the agent inherit it
    co.scenario({"t1": [[{"say": f"the key is {secret}"}, {"done": f"used {secret}"}]]})
    text = plan_text(co, "web", [task("t1")])
    errlog = (tmp_path / "server-stderr.txt").open("w")

    async def scenario() -> None:
        async with server(co.root, errlog) as s:
            await call(s, "write_plan", plan_id="web", text=text)
            await call(s, "run")
            await until(s, lambda st: st.get("web:t1") == "DONE")
            await run_ended(s)
            status = await call(s, "status")
            log = await call(s, "task_log", task="web:t1")
            error = await fails(s, "answer", task=f"web:{secret}", text="x")
            for shown in (json.dumps(status), json.dumps(log), error):
                assert secret not in shown, shown
            assert "the key is [secret:MY_API_KEY]" in log["text"]
            assert "unknown task 'web:[secret:MY_API_KEY]'" in error

    anyio.run(scenario)
    errlog.close()
    assert secret in (co.root / ".orch" / "web" / "logs" / "t1.1.log").read_text()  # raw kept
