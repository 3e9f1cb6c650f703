"""Secrets never shown (DESIGN §13): the filter on strings, and a real run whose agents print
secret values, read back through every place orchlib writes or shows agent text."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
from conftest import Checkout
from webclient import serving

from orchlib.bus import Bus
from orchlib.events import Event, TaskFailed
from orchlib.redact import Pieces, Secrets, secrets_in

SECRET = "aws-secret-0123456789"
KEY = "sk-ant-api03-abcdefgh"
ENV = {"AWS_SECRET_ACCESS_KEY": SECRET, "ANTHROPIC_API_KEY": KEY}
HIDDEN = "[secret:AWS_SECRET_ACCESS_KEY]"


# --- on strings ----------------------------------------------------------------------------


def test_secret_set_of_an_environment() -> None:
    found = secrets_in(
        {"MY_TOKEN": " tok-0123456789\n", "SHORT_KEY": "1234567", "CLIENT": "cli-0123456789",
         "NODE_ENV": "production", "aws_secret": "lower-0123456789"},
        names=("CLIENT",),
    )  # fmt: skip
    assert found.names == {"tok-0123456789": "MY_TOKEN", "cli-0123456789": "CLIENT",
                           "lower-0123456789": "aws_secret"}  # fmt: skip
    assert found.redact("a tok-0123456789 b production") == "a [secret:MY_TOKEN] b production"
    assert not secrets_in({"PATH": "/usr/bin:/bin"}) and Secrets().redact("x") == "x"


def test_a_value_inside_another_is_replaced_whole() -> None:
    found = Secrets({"abcdefgh": "SHORT", "abcdefgh-long": "LONG"})
    assert found.redact("abcdefgh-long, abcdefgh") == "[secret:LONG], [secret:SHORT]"


def test_text_in_pieces_is_redacted_as_whole_text() -> None:
    found = Secrets({SECRET: "A", KEY: "B"})
    text = f"x{SECRET}{KEY} é {SECRET[:5]} tail {SECRET}"
    rng = random.Random(7)
    for _ in range(200):
        pieces, out, at = Pieces(found), "", 0
        while at < len(text):
            step = rng.randint(1, 9)
            out += pieces.feed(text[at : at + step])
            at += step
        assert out + pieces.feed("", final=True) == found.redact(text)


def test_the_bus_hands_subscribers_clean_events() -> None:
    seen: list[Event] = []
    bus = Bus(Secrets({SECRET: "AWS"}).redact)
    bus.subscribe(seen.append)
    bus.publish(TaskFailed("p", "t1", f"failed: {SECRET}", 1, final=True))
    assert seen == [TaskFailed("p", "t1", "failed: [secret:AWS]", 1, final=True, at=seen[0].at)]


# --- a real run ----------------------------------------------------------------------------

SINK = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"


def leaky_plan(checkout: Checkout, notes: Path) -> None:
    checkout.scenario({
        "t1": [[{"progress": [40, f"read {SECRET}"]}, {"done": f"the key is {SECRET}"}]],
        "t2": [[{"error": f"cannot use {KEY}"}]],
        "t3": [[{"question": f"may I print {SECRET}?"}]],
    })  # fmt: skip
    verify = f"echo 'verify saw {SECRET}'; exit 1"
    checkout.write_plan({
        "planId": "sec",
        "agent": checkout.agent(),
        "notify": [{"command": [sys.executable, "-c", SINK, str(notes), "{message}"]}],
        "projects": [{"name": p, "path": p} for p in ("a", "b", "c", "d")],
        "tasks": [{"id": "t1", "project": "a", "title": "one"},
                  {"id": "t2", "project": "b", "title": "two"},
                  {"id": "t3", "project": "c", "title": "three"},
                  {"id": "t4", "project": "d", "title": "four", "command": "echo built",
                   "verify": verify, "retries": 0}],
    })  # fmt: skip


def test_secrets_printed_by_agents_are_shown_nowhere(checkout: Checkout, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    leaky_plan(checkout, notes)
    run = checkout.doit(env=ENV)
    assert run.returncode != 0
    orch = checkout.root / ".orch" / "sec"
    shown = {
        "console": run.stdout + run.stderr,
        "state.json": (orch / "state.json").read_text(),
        "stamp": (orch / "stamps" / "t1.json").read_text(),
        "orchestration.md": (orch / "orchestration.md").read_text(),
        "notifications": notes.read_text(),
        "status": checkout.doit("status", env=ENV).stdout,
        "status --json": checkout.doit("status", "--json", env=ENV).stdout,
        "log t1": checkout.doit("log", "sec:t1", env=ENV).stdout,
        **{f"info {t}": checkout.doit("info", f"sec:{t}", env=ENV).stdout for t in ("t3", "t4")},
    }
    for where, text in shown.items():
        assert SECRET not in text and KEY not in text, where
    assert "the key is [secret:AWS_SECRET_ACCESS_KEY]" in shown["stamp"]
    assert "read [secret:AWS_SECRET_ACCESS_KEY]" in shown["log t1"]
    assert "cannot use [secret:ANTHROPIC_API_KEY]" in shown["state.json"]
    assert r"may I print \[secret:AWS_SECRET_ACCESS_KEY\]?" in shown["orchestration.md"]
    assert f"verify saw {HIDDEN}" in shown["notifications"]
    assert f"verify saw {HIDDEN}" in shown["info t4"]
    # The raw transcripts keep what was printed.
    assert SECRET in (orch / "logs" / "t1.1.log").read_text()
    assert SECRET in checkout.doit("log", "--raw", "sec:t1", env=ENV).stdout
    assert KEY in (orch / "logs" / "t2.1.log").read_text()


def test_progress_in_state_while_running_is_clean(checkout: Checkout, tmp_path: Path) -> None:
    go = tmp_path / "go"
    checkout.scenario({"t1": [[{"progress": [40, f"read {SECRET}"]}, {"wait_file": str(go)},
                               {"done": "ok"}]]})  # fmt: skip
    checkout.write_plan({"planId": "sec", "agent": checkout.agent(),
                         "projects": [{"name": "a", "path": "a"}],
                         "tasks": [{"id": "t1", "project": "a", "title": "one"}]})  # fmt: skip
    run = checkout.start(env=ENV)
    try:
        state = checkout.root / ".orch" / "sec" / "state.json"
        checkout.wait_for(lambda: state.exists() and "read [secret:" in state.read_text())
        assert SECRET not in state.read_text()
    finally:
        go.touch()
        run.communicate(timeout=60)
    assert run.returncode == 0


@pytest.mark.slow
def test_the_dashboard_log_is_redacted(
    checkout: Checkout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaky_plan(checkout, tmp_path / "notes.txt")
    checkout.doit(env=ENV)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with serving(checkout.root) as server:
        token = f"token={server.token}"
        log = server.get(f"/api/plans/sec/tasks/t1/log?{token}").text
        assert f"the key is {HIDDEN}" in log and SECRET not in log
        stream = server.events(f"/api/plans/sec/tasks/t1/log/events?{token}")
        stream.until(lambda e: e.name == "end")
        streamed = "".join(e.data["text"] for e in stream.seen if e.name == "log")
        assert streamed == log
        state = json.dumps(server.get(f"/api/plans/sec?{token}").json())
        assert SECRET not in state and KEY not in state
