"""`doit serve` (DESIGN §12): the JSON API, the event streams, the token-guarded answer and
the confinement to `.orch/`, against real `doit` runs of the fake agent."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Checkout
from webclient import Server, serving

pytestmark = pytest.mark.slow
P = "orch-abc123"


def hold_t1(checkout: Checkout, go: Path) -> None:
    """t1 reports 40% and then waits for `go`; the other tasks finish at once."""
    checkout.scenario(
        {"t1": [[{"progress": [40, "scaffolding"]}, {"wait_file": str(go)}, {"done": "ready"}]]}
    )


def finish(run: subprocess.Popen[str], kill: bool = False) -> int:
    """Wait for a `doit` run (killing it first if asked) and close its pipes."""
    if kill and run.poll() is None:
        os.killpg(run.pid, signal.SIGKILL)
    try:
        run.communicate(timeout=60)
    finally:  # an agent left running (its own session) may hold a pipe open
        for pipe in (run.stdout, run.stderr):
            if pipe is not None:
                pipe.close()
    return run.returncode


def test_api_on_a_finished_plan(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    with serving(checkout.root) as server:
        assert f"dashboard of {checkout.root} (1 plan), Ctrl+C to stop" in server.printed
        plans = server.get("/api/plans").json()
        assert [p["id"] for p in plans] == [P]
        assert plans[0]["status"] == "completed"
        assert plans[0]["counts"]["DONE"] == 4 and plans[0]["total"] == 4
        assert plans[0]["summary"].startswith("E-commerce platform")

        assert server.get(f"/api/plans/{P}").json() == checkout.state()
        words = server.get("/api/words").json()  # the one table (state/words.py)
        assert words["QUESTION"] == {"word": "QUESTION", "tone": "question"}, words

        t1 = checkout.state()["tasks"][0]
        log = server.get(f"/api/plans/{P}/tasks/t1/log")
        assert log.status == 200 and log.headers["x-orch-attempt"] == "1"
        assert log.headers["content-type"].startswith("text/plain")
        assert f"[DONE:{t1['terminalId']}] did t1" in log.text
        assert server.get(f"/api/plans/{P}/tasks/t1/log?attempt=1").body == log.body
        assert server.get(f"/api/plans/{P}/tasks/t1/log?tail=7").body == log.body[-7:]
        assert server.get(f"/api/plans/{P}/tasks/t1/log?attempt=9").status == 404
        assert server.get(f"/api/plans/{P}/tasks/t1/log?attempt=x").status == 400
        assert server.get(f"/api/plans/{P}/tasks/nope/log").status == 404
        assert server.get("/api/plans/nope").status == 404


def test_a_huge_log_is_tailed_and_streamed_not_loaded(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    log = checkout.root / ".orch" / P / "logs" / "t1.2.log"
    with log.open("wb") as handle:  # 1 GiB, sparse: no disk used
        handle.truncate(1 << 30)
        handle.seek(1 << 30)
        handle.write(b"END-MARKER\n")
    with serving(checkout.root) as server:
        tail = server.get(f"/api/plans/{P}/tasks/t1/log?attempt=2&tail=11")
        assert tail.body == b"END-MARKER\n" and tail.headers["x-orch-log-size"] == str(
            log.stat().st_size
        )
        stream = server.events(f"/api/plans/{P}/tasks/t1/log/events?attempt=2")
        first = stream.until(lambda e: e.name == "log")
        assert first.data["text"].endswith("END-MARKER\n") and len(first.data["text"]) <= 64 * 1024
        stream.close()
        conn = http.client.HTTPConnection(server.host, int(server.port), timeout=30)
        conn.request("GET", f"/api/plans/{P}/tasks/t1/log?attempt=2&token={server.token}")
        whole = conn.getresponse()
        assert whole.status == 200 and len(whole.read(8 << 20)) == 8 << 20  # it streams
        rss = _rss_mb(server.proc.pid)
        conn.close()
    assert rss < 100, f"{rss:.0f} MB"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_plan_that_never_ran_is_listed_pending(checkout: Checkout) -> None:
    checkout.seed()
    with serving(checkout.root) as server:
        (line,) = server.get("/api/plans").json()
        assert (line["id"], line["status"], line["counts"]["PENDING"]) == (P, "pending", 4)
        data = server.get(f"/api/plans/{P}").json()
        assert [t["status"] for t in data["tasks"]] == ["PENDING"] * 4
        assert data["phases"] == [["t1", "t2"], ["t3"], ["t4"]]
        assert not (checkout.root / ".orch" / P / "state.json").exists()  # serve writes nothing


def test_api_and_events_during_a_run(checkout: Checkout, tmp_path: Path) -> None:
    go = tmp_path / "go"
    hold_t1(checkout, go)
    checkout.seed()
    with serving(checkout.root) as server:
        events = server.events()
        run = checkout.start()
        try:
            # t1 stays at 40% until `go` exists (a state shorter than the server's 100 ms
            # look at the files could be skipped, as the run's own writes coalesce 50 ms).
            events.until(lambda e: e.name == "update" and e.data["task"]["percent"] == 40)
            assert _task(server, "t1")["status"] == "IN_PROGRESS"
            plan = server.get(f"/api/plans/{P}").json()
            assert plan["status"] == "in_progress" and plan["run"]["endedAt"] == ""
            assert "40% - scaffolding" in server.get(f"/api/plans/{P}/tasks/t1/log").text
            events.until(lambda e: e.data == {"planId": P, "taskId": "t2", "status": "DONE"})
            go.touch()
            events.until(lambda e: e.data == {"planId": P, "taskId": "t4", "status": "DONE"})
            assert finish(run) == 0
        finally:
            finish(run, kill=True)
        events.until(lambda e: e.name == "plan" and e.data["status"] == "completed")
        changes = [e.data for e in events.seen if e.name == "message"]
        assert all(set(c) == {"planId", "taskId", "status"} for c in changes)
        t1 = [c["status"] for c in changes if c["taskId"] == "t1"]
        assert t1 == ["IN_PROGRESS", "DONE"]  # one event per state change, in order
        updates = [e.data for e in events.seen if e.name == "update" and e.data["taskId"] == "t1"]
        assert [u["task"]["percent"] for u in updates][-2:] == [40, 100]
        events.close()


def test_the_log_streams_while_the_attempt_runs(checkout: Checkout, tmp_path: Path) -> None:
    go = tmp_path / "go"
    hold_t1(checkout, go)
    checkout.seed()
    run = checkout.start()
    try:
        with serving(checkout.root) as server:
            checkout.wait_for(lambda: _task(server, "t1")["status"] == "IN_PROGRESS")
            stream = server.events(f"/api/plans/{P}/tasks/t1/log/events")
            first = stream.until(lambda e: e.name == "log" and "scaffolding" in e.data["text"])
            go.touch()
            stream.until(lambda e: e.name == "log" and "[DONE:" in e.data["text"])
            end = stream.until(lambda e: e.name == "end")
            text = "".join(e.data["text"] for e in stream.seen if e.name == "log")
            log = server.get(f"/api/plans/{P}/tasks/t1/log?attempt=1").text
            assert text == log and end.data["offset"] == len(log.encode())
            # A browser that reconnects sends the last id it saw and gets only the rest.
            resumed = server.events(
                f"/api/plans/{P}/tasks/t1/log/events?attempt=1", {"Last-Event-ID": first.id or ""}
            )
            resumed.until(lambda e: e.name == "end")
            rest = "".join(e.data["text"] for e in resumed.seen if e.name == "log")
            assert first.data["text"] + rest == log
        assert finish(run) == 0
    finally:
        finish(run, kill=True)


def test_answer_needs_the_token_and_is_doit_answer(checkout: Checkout) -> None:
    checkout.scenario({"t2": [[{"question": "Postgres or SQLite?"}], [{"done": "used it"}]]})
    checkout.seed()
    assert checkout.doit().returncode != 0
    url = f"/api/plans/{P}/tasks/t2/answer"
    with serving(checkout.root) as server:
        before = checkout.state()
        assert server.post(url, {"answer": "SQLite"}, auth=False).status == 403
        assert server.post(f"{url}?token=wrong", {"answer": "SQLite"}).status == 403
        no_token = {"answer": "SQLite", "token": server.token}  # not a way to give it
        assert server.post(url, no_token, auth=False).status == 403
        assert checkout.state()["tasks"] == before["tasks"]  # nothing written

        assert server.post(f"{url}?token={server.token}", {"answer": "  "}).status == 400
        assert server.post(f"{url}?token={server.token}", b"not json").status == 400
        missing = server.post(
            f"/api/plans/{P}/tasks/t9/answer?token={server.token}", {"answer": "x"}
        )
        assert missing.status == 404
        events = server.events()
        done = server.post(url, {"answer": "SQLite"})  # Authorization: Bearer
        assert done.status == 200, done.body
        assert "answered “Postgres or SQLite?”" in done.json()["message"]
        question = checkout.state()["tasks"][1]["questions"][0]
        assert question["answer"] == "SQLite" and question["answeredAt"]
        update = events.until(lambda e: e.name == "update" and e.data["taskId"] == "t2")
        assert update.data["task"]["questions"][0]["answer"] == "SQLite"
        # As with `doit answer`: answering again before the task resumes replaces the answer.
        again = server.post(f"{url}?token={server.token}", {"answer": "MySQL"})
        assert again.status == 200 and "replacing the earlier answer" in again.json()["message"]
        t1 = server.post(f"/api/plans/{P}/tasks/t1/answer?token={server.token}", {"answer": "x"})
        assert t1.status == 409 and "no open question" in t1.json()["error"]
        events.close()
    assert checkout.doit().returncode == 0
    prompt = [r["prompt"] for r in checkout.records() if r["task"] == "t2"][-1]
    assert "Postgres or SQLite?" in prompt and "MySQL" in prompt


def test_no_path_leaves_orch(checkout: Checkout, tmp_path: Path) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "state.json").write_text(json.dumps({"planId": "evil", "summary": "SECRET-42"}))
    (secret / "x.1.log").write_text("SECRET-42")
    orch = checkout.root / ".orch"
    (orch / "evil").symlink_to(secret)
    (orch / P / "logs" / "t1.7.log").symlink_to(secret / "x.1.log")
    attempts = [
        "/api/plans/evil", "/api/plans/evil/tasks/x/log?attempt=1",
        f"/api/plans/{P}/tasks/t1/log?attempt=7",
        "/api/plans/../../../etc/passwd", "/api/plans/..%2F..%2Fsecret",
        "/api/plans/%2e%2e/tasks/secret/log", f"/api/plans/{P}/tasks/..%2F..%2F..%2Fsecret/log",
        f"/api/plans/{P}/tasks/t1/log?attempt=..%2F..%2Fsecret", "/api/plans/.", "/api/plans/..",
        "/../../../../etc/passwd", "/static/../../../../etc/passwd", "/dashboard.js/../../x",
    ]  # fmt: skip
    with serving(checkout.root) as server:
        assert [p["id"] for p in server.get("/api/plans").json()] == [P]
        for path in attempts:
            reply = server.get(path)
            assert reply.status in (400, 404), (path, reply.status)
            assert b"SECRET-42" not in reply.body and b"root:" not in reply.body, path
        wrong_host = server.get("/api/plans", {"Host": "attacker.example:8765"})
        assert wrong_host.status == 400  # a loopback server refuses other names (DNS rebinding)


def test_page_assets_ship_in_the_package_and_load_nothing_from_elsewhere(
    checkout: Checkout,
) -> None:
    checkout.seed()
    with serving(checkout.root) as server:
        page = server.get(f"/?token={server.token}")
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in (page, server.get("/dashboard.js"), server.get("/dashboard.css")):
            text = asset.text.replace("http://www.w3.org/2000/svg", "")  # a name, not a fetch
            assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_ctrl_c_stops_the_server_at_once(checkout: Checkout) -> None:
    checkout.seed()
    server = Server(checkout.root)
    events = server.events()  # an open stream must not hold the shutdown up
    started = time.monotonic()
    code, err = server.stop(signal.SIGINT)
    assert code == 130 and "Traceback" not in err, err
    assert time.monotonic() - started < 5
    events.close()


def test_host_other_than_loopback_warns_and_names_stay_checked(checkout: Checkout) -> None:
    checkout.seed()
    server = Server(checkout.root, "--host", "0.0.0.0")
    try:
        reply = server.request("GET", "/api/plans", headers={"Host": "my-box:1"})
        assert reply.status == 400  # never `*`: DNS rebinding would read the logs
        assert server.get("/api/plans", {"Host": f"0.0.0.0:{server.port}"}).status == 200
    finally:
        _, err = server.stop()
    assert "warning: listening on 0.0.0.0, not only on this machine" in err


@pytest.mark.parametrize("launcher", ["doit", "orchlib"])
def test_busy_port_is_one_line(checkout: Checkout, launcher: str) -> None:
    checkout.seed()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", launcher, "serve", "--port", str(port)], cwd=checkout.root,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"orchlib: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


@pytest.mark.parametrize("launcher", ["doit", "orchlib"])
def test_a_port_out_of_range_is_one_orchlib_line(checkout: Checkout, launcher: str) -> None:
    checkout.seed()
    argv = [sys.executable, "-m", launcher, "serve", "--port", "99999"]
    result = subprocess.run(argv, cwd=checkout.root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr == "orchlib: serve: --port 99999: not a port (0-65535)\n"  # not ERROR:


def test_serve_takes_no_task_names(checkout: Checkout) -> None:
    checkout.seed()
    result = checkout.doit("serve", "t1")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr == "orchlib: doit serve takes no task names (got 't1')\n"


def test_without_the_web_extra_one_line(checkout: Checkout) -> None:
    checkout.seed()
    hide = "import sys; sys.modules['starlette'] = None; sys.argv[0] = 'doit'; "
    run = "from doit.doit_cmd import DoitMain; sys.exit(DoitMain().run(['serve']))"
    result = subprocess.run(
        [sys.executable, "-c", hide + run], cwd=checkout.root, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "orchlib: doit serve needs the web extra: pip install 'orchlib[web]' "
        "(starlette is not installed)"
    ]


def _task(server: Server, task_id: str) -> dict[str, object]:
    data = server.get(f"/api/plans/{P}").json()
    return next(t for t in data["tasks"] if t["id"] == task_id)
