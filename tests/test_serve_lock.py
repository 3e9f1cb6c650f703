"""The dashboard's lock (DESIGN §12), probed on a real `doit serve` with real HTTP requests:
the token on every request (query, Bearer, cookie), the Host header on every bind, the
conditions of a write, and which files under `.orch/` may be served."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Checkout
from webclient import Server, serving

pytestmark = pytest.mark.slow
P = "orch-abc123"
READS = [
    "/", "/dashboard.js", "/dashboard.css", "/api/plans", f"/api/plans/{P}",
    f"/api/plans/{P}/tasks/t1/log", f"/api/plans/{P}/tasks/t1/log/events", "/events",
]  # fmt: skip


def test_every_request_needs_the_token(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    with serving(checkout.root) as server:
        for path in READS:
            for headers in ({}, {"Authorization": "Bearer nope"},
                            {"Cookie": f"orchlib_token_{server.port}=nope"},
                            {"Authorization": f"Basic {server.token}"}):  # fmt: skip
                reply = server.get(path, headers, auth=False)
                assert reply.status == 403, (path, headers, reply.status)
                assert b"[DONE:" not in reply.body and b"Initialize" not in reply.body
            assert (
                server.get(f"{path}{'&' if '?' in path else '?'}token=x", auth=False).status == 403
            )
        api = server.get("/api/plans", auth=False)
        assert api.json() == {"error": "needs the token printed by `doit serve` (?token=...)"}
        # What a browser gets without it says where the address is.
        page = server.get("/", auth=False)
        assert page.headers["content-type"].startswith("text/html")
        assert "doit serve" in page.text and f"orchlib: open {server.base}/?token=" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # The same reads with the token, given each way.
        for path in READS[:6]:
            joined = f"{path}{'&' if '?' in path else '?'}token={server.token}"
            assert server.get(joined, auth=False).status == 200, path
            assert server.get(path).status == 200, path  # Authorization: Bearer
        cookie = {"Cookie": f"orchlib_token_{server.port}={server.token}"}
        assert server.get("/api/plans", cookie, auth=False).json()[0]["id"] == P
        stream = server.events("/events", cookie)  # an event stream opened with the cookie
        stream.close()


def test_the_page_sets_a_strict_httponly_cookie(checkout: Checkout) -> None:
    checkout.seed()
    with serving(checkout.root) as server:
        page = server.get(f"/?token={server.token}", auth=False)
        assert page.status == 200
        cookie = page.headers["set-cookie"]
        name = f"orchlib_token_{server.port}"
        assert cookie.startswith(f"{name}={server.token};")
        assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}
        assert "set-cookie" not in server.get("/api/plans").headers  # Bearer: no cookie needed
        # Two dashboards on one host have their own cookies (a cookie ignores the port).
        with serving(checkout.root) as other:
            assert other.port != server.port
            mine = {"Cookie": f"{name}={server.token}"}
            assert other.get("/api/plans", mine, auth=False).status == 403


def test_the_host_is_checked_on_every_bind(checkout: Checkout) -> None:
    checkout.seed()
    server = Server(checkout.root, "--host", "0.0.0.0", "--allow-host", "My-Box",
                    "--allow-host", "dash.example.org")  # fmt: skip
    assert server.host == "My-Box", server.printed  # the name other machines use, not 0.0.0.0
    try:
        port = server.port
        for host, status in [
            ("attacker.example", 400), (f"attacker.example:{port}", 400),
            (f"127.0.0.1:{port}", 200), ("localhost", 200), (f"[::1]:{port}", 200),
            (f"0.0.0.0:{port}", 200), ("my-box:1", 200), (f"DASH.example.org:{port}", 200),
            ("dash.example.org.evil.example", 400), ("", 400),
        ]:  # fmt: skip
            reply = server.get("/api/plans", {"Host": host})
            assert reply.status == status, (host, reply.status, reply.body)
            if status == 400:
                assert set(reply.json()) == {"error"} and b"orch-abc123" not in reply.body
        # A refused Host is refused before the token is even looked at.
        page = server.get(f"/?token={server.token}", {"Host": "attacker.example"}, auth=False)
        assert page.status == 400 and "set-cookie" not in page.headers
    finally:
        _, err = server.stop()
    assert "warning: listening on 0.0.0.0, not only on this machine" in err
    assert "My-Box, dash.example.org" in err and "--allow-host NAME" in err


def test_a_write_needs_json_and_its_own_origin(checkout: Checkout) -> None:
    checkout.scenario({"t2": [[{"question": "Postgres or SQLite?"}]]})
    checkout.seed()
    assert checkout.doit().returncode != 0
    url = f"/api/plans/{P}/tasks/t2/answer"
    body = json.dumps({"answer": "SQLite"}).encode()
    with serving(checkout.root) as server:
        before = checkout.state()["tasks"]
        own = f"http://127.0.0.1:{server.port}"
        refused = [
            ({"Content-Type": "text/plain"}, 415),
            ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
            ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
            ({}, 415),
            ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
            ({"Content-Type": "application/json", "Origin": "null"}, 403),
            ({"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{server.port}1"},
             403),
            ({"Content-Type": "application/json", "Origin": f"https://127.0.0.1:{server.port}"},
             403),
        ]  # fmt: skip
        for headers, status in refused:
            reply = server.request("POST", url, body, headers)
            assert reply.status == status, (headers, reply.status)
            assert list(reply.json()) == ["error"] and "\n" not in reply.json()["error"]
        assert checkout.state()["tasks"] == before  # nothing written
        ok = server.request("POST", url, body, {"Content-Type": "application/json; charset=utf-8",
                                                 "Origin": own})  # fmt: skip
        assert ok.status == 200, ok.body
        again = server.request(
            "POST",
            url,
            json.dumps({"answer": "MySQL"}).encode(),
            {"Content-Type": "application/json"},
        )  # no Origin: a script
        assert again.status == 200, again.body
    assert checkout.state()["tasks"][1]["questions"][0]["answer"] == "MySQL"


def test_only_single_linked_regular_files_of_plan_tasks(checkout: Checkout, tmp_path: Path) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    secret = tmp_path / "secret.txt"
    secret.write_text('{"planId": "orch-abc123", "summary": "SECRET-42", "tasks": []}')
    orch = checkout.root / ".orch" / P
    logs = orch / "logs"
    os.link(secret, logs / "t1.5.log")  # a hard link to a file of the user's, outside
    (logs / "zz.1.log").write_text("SECRET-42 under a name no task has")
    (logs / "t1.6.log").symlink_to(logs / "t1.1.log")  # a symlink, even one inside .orch
    os.mkfifo(logs / "t1.7.log")  # never blocks the server
    (logs / "t2.8.log").mkdir()
    with serving(checkout.root) as server:
        for path in [
            f"/api/plans/{P}/tasks/t1/log?attempt=5", f"/api/plans/{P}/tasks/zz/log",
            f"/api/plans/{P}/tasks/zz/log?attempt=1", f"/api/plans/{P}/tasks/zz/log/events",
            f"/api/plans/{P}/tasks/t1/log?attempt=6", f"/api/plans/{P}/tasks/t1/log?attempt=7",
            f"/api/plans/{P}/tasks/t2/log?attempt=8",
            f"/api/plans/{P}/tasks/t1/log/events?attempt=5",
        ]:  # fmt: skip
            reply = server.get(path)
            assert reply.status == 404, (path, reply.status)
            assert b"SECRET-42" not in reply.body
        assert server.get(f"/api/plans/{P}/tasks/t1/log?attempt=1").status == 200
        # The very log that was served stops being served once it has a second link.
        os.link(logs / "t1.1.log", tmp_path / "copy.log")
        assert server.get(f"/api/plans/{P}/tasks/t1/log?attempt=1").status == 404
        # A hard-linked state.json is not read: the plan is shown from its plan file.
        (orch / "state.json").unlink()
        os.link(secret, orch / "state.json")
        plan = server.get(f"/api/plans/{P}")
        assert plan.status == 200 and b"SECRET-42" not in plan.body
        assert [t["id"] for t in plan.json()["tasks"]] == ["t1", "t2", "t3", "t4"]
