"""Usage limits (DESIGN §11) end to end: a stand-in CLI over its limit, the real `doit`.

The stand-ins report their CLI's own limit message while STANDIN_LIMIT_UNTIL (epoch seconds)
lies ahead, and run normally after it, as an account over its limit does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout
from test_profiles import PLAN, STANDINS, SUMMARY, Standins

from orchlib.agents import aider, claude, codex, gemini, opencode
from orchlib.agents.aider import AiderText
from orchlib.agents.gemini import GeminiStream
from orchlib.agents.limits import recognise
from orchlib.run.pauses import Pauses, iso

SINK = (
    "import json, sys\n"
    "with open(sys.argv[1], 'a') as f: f.write(json.dumps(sys.argv[2:]) + '\\n')\n"
)


SLOW = {"STANDIN_DELAY": "2"}


@pytest.fixture
def standins(checkout: Checkout, tmp_path: Path) -> Iterator[Standins]:
    found = Standins(checkout, tmp_path)
    yield found


def limited(profile: str, until: float) -> dict[str, Any]:
    """An agent whose CLI account is over its usage limit until `until`."""
    return {"profile": profile, "env": {"STANDIN_LIMIT_UNTIL": f"{until:.3f}"}}


def calls_of(standins: Standins, task: str) -> list[dict[str, Any]]:
    return [c for c in standins.calls() if c["env"].get("ORCH_TASK_ID") == task]


def test_a_usage_limit_pauses_the_profile_and_the_task_resumes_after_the_reset(
    standins: Standins, checkout: Checkout, tmp_path: Path
) -> None:
    until = time.time() + 6
    sink = tmp_path / "sink.py"
    sink.write_text(SINK)
    received = tmp_path / "notes.jsonl"
    notify = [{"command": [sys.executable, str(sink), str(received), "{event}", "{message}"]}]
    standins.plan(
        [
            {"id": "t1", "agent": limited("claude", until)},  # hits the limit
            # another CLI keeps running; it ends after t1 was paused, while the limit lasts
            {
                "id": "t2",
                "project": "b",
                "agent": {"profile": "codex", "env": {"STANDIN_DELAY": "2"}},
            },
            # claude again, ready while the limit lasts: it must wait for the reset
            {"id": "t3", "project": "c", "dependsOn": ["t2"], "agent": limited("claude", until)},
        ],
        projects=("a", "b", "c"),
        defaults={"retries": 0},
        notify=notify,
    )
    proc = checkout.start(env=_env(standins))
    try:
        checkout.wait_for(lambda: _status_of(checkout, "t1") == "PAUSED", timeout=30)
        shown = checkout.doit("status")
        assert "PAUSED until" in shown.stdout, shown.stdout
        record = _task(checkout, "t1")
        assert record["pausedUntil"] and "usage limit" in record["lastUpdate"]
        # t3 became ready during the pause: held before it started, shown as PAUSED too
        checkout.wait_for(lambda: _status_of(checkout, "t3") == "PAUSED", timeout=30)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    t1, t2, t3 = (calls_of(standins, t) for t in ("t1", "t2", "t3"))
    # retries: 0, yet DONE: the limited attempt used no retry; the second came after the reset
    assert len(t1) == 2 and t1[1]["time"] >= until
    assert standins.stamp("t1")["attempt"] == 2 and standins.stamp("t1")["summary"] == SUMMARY
    # codex ran during claude's pause; t3 (claude) was not dispatched before the reset
    assert len(t2) == 1 and t2[0]["time"] < until
    assert standins.stamp("t2")["finishedAt"] < iso(until)
    assert len(t3) == 1 and t3[0]["time"] >= until
    assert "PAUSED until" in out and "claude usage limit" in out
    notes = [json.loads(line) for line in received.read_text().splitlines()]
    limits = [n for n in notes if n[0] == "usage_limit"]
    assert len(limits) == 1 and "claude" in limits[0][1]


def test_no_wait_limits_ends_the_run_with_exit_2_and_the_time_to_come_back(
    standins: Standins, checkout: Checkout
) -> None:
    until = time.time() + 120
    standins.plan([{"id": "t1", "agent": limited("claude", until)}], defaults={"retries": 0})
    started = time.monotonic()
    result = checkout.doit("--no-wait-limits", env=_env(standins))
    assert result.returncode == 2, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    assert "usage limit resets at" in result.stdout and "come back" in result.stdout
    record = _task(checkout, "t1")
    assert record["status"] == "PAUSED" and record["pausedUntil"]
    assert len(calls_of(standins, "t1")) == 1
    assert "PAUSED until" in checkout.doit("status").stdout
    # the next run, before the reset: the limit still holds, nothing is dispatched
    again = checkout.doit("--no-wait-limits", env=_env(standins))
    assert again.returncode == 2 and "come back" in again.stdout
    assert len(calls_of(standins, "t1")) == 1
    assert _task(checkout, "t1")["status"] == "PAUSED"


@pytest.mark.parametrize("profile", ["codex", "gemini", "opencode"])
def test_each_json_profile_pauses_on_its_cli_limit(
    standins: Standins, checkout: Checkout, profile: str
) -> None:
    until = time.time() + 600
    standins.plan([{"id": "t1", "agent": limited(profile, until)}], defaults={"retries": 0})
    result = checkout.doit("--no-wait-limits", env=_env(standins))
    assert result.returncode == 2, result.stdout + result.stderr
    record = _task(checkout, "t1")
    assert record["status"] == "PAUSED", record


def _env(standins: Standins) -> dict[str, str]:
    return {
        "PATH": f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}",
        "STANDIN_RECORD": str(standins.record_file),
        "STANDIN_SUMMARY": SUMMARY,
    }


def _task(checkout: Checkout, task: str) -> dict[str, Any]:
    return next(t for t in checkout.state(PLAN)["tasks"] if t["id"] == task)


def _status_of(checkout: Checkout, task: str) -> str:
    try:
        return str(_task(checkout, task)["status"])
    except (FileNotFoundError, ValueError, StopIteration):
        return ""


# --- recognising the CLIs' messages (pure) ---------------------------------------------

NOW = 1_790_000_000.0  # a fixed moment; clock times are read in local time or their zone


# Each CLI's own limit messages, from its module (orchlib/agents/<cli>.py).
LIMITS = {m.PROFILE.name: m.LIMITS for m in (claude, codex, gemini, aider, opencode)}


@pytest.mark.parametrize(
    ("cli", "message", "left"),
    [
        ("claude", "Claude AI usage limit reached|1790003600", 3600),
        ("gemini", "You have exhausted your capacity on this model. Your quota will reset after "
         "2h3m4s.", 2 * 3600 + 3 * 60 + 4),
        ("codex", "You've hit your usage limit. To get more access now, send a request to your "
         "admin or try again in 3 days 6 hours 57 minutes.", ((3 * 24 + 6) * 60 + 57) * 60),
        ("opencode", "status 429: This request would exceed your account's rate limit. "
         "(retry after 7s)", 7),
        ("aider", "litellm.RateLimitError: AnthropicException - rate_limit_error", None),
        ("aider", "The API provider has rate limited you. Try again later or check your quotas.",
         None),
        ("gemini", "Quota exceeded for quota metric 'Gemini 2.5 Pro Requests' "
         "(RESOURCE_EXHAUSTED)", None),
    ],
)  # fmt: skip
def test_limit_messages_and_their_reset(cli: str, message: str, left: float | None) -> None:
    found = recognise(message, NOW, LIMITS[cli])
    assert found is not None
    assert (None if found.reset_at is None else found.reset_at - NOW) == left


def test_a_cli_s_own_message_is_no_limit_from_another_cli() -> None:
    # "usage limit reached" is Claude Code's wording; from opencode it is the model's text
    assert recognise("Claude AI usage limit reached|1790003600", NOW, LIMITS["opencode"]) is None
    assert recognise("status 429: slow down", NOW, LIMITS["claude"]) is not None


@pytest.mark.parametrize(
    "message",
    [
        "Claude usage limit reached. Your limit will reset at 3pm (America/Santiago).",
        "5-hour limit reached ∙ resets 3pm",
        "You've hit your session limit · resets 11:20am (Europe/Budapest)",
        "You've hit your usage limit. Try again at 3:28 PM.",
        "You've hit your usage limit. Try again at Aug 8th, 2027 12:30 PM.",
    ],
)
def test_clock_times_reset_at_their_next_occurrence(message: str) -> None:
    found = recognise(message, NOW, LIMITS["claude"])
    assert found is not None and found.reset_at is not None
    assert NOW < found.reset_at < NOW + 400 * 86400
    clock = datetime.fromtimestamp(found.reset_at, _zone(message))
    assert (clock.hour, clock.minute) in {(15, 0), (11, 20), (15, 28), (12, 30)}


def test_a_clock_time_just_passed_is_that_minute_not_tomorrow() -> None:
    # codex prints the reset without seconds: "3:28 PM" may be said at 3:28:40
    said = datetime.fromtimestamp(NOW).replace(second=40)
    text = f"You've hit your usage limit. Try again at {said.strftime('%I:%M %p')}."
    found = recognise(text, said.timestamp(), LIMITS["codex"])
    assert found is not None and found.reset_at is not None
    assert 0 < found.reset_at - said.timestamp() <= 60


@pytest.mark.parametrize(
    "text",
    ["All tests pass.", "Retrying in 5 seconds", "reset the counter at 3pm", "HTTP 200 OK"],
)
def test_other_text_is_no_limit(text: str) -> None:
    assert all(recognise(text, NOW, limits) is None for limits in LIMITS.values())


def test_without_a_reset_time_the_pause_is_5_minutes_doubling_to_an_hour() -> None:
    clock = [NOW]
    pauses = Pauses(clock=lambda: clock[0])
    lengths = []
    for _ in range(6):
        lengths.append(pauses.pause("claude", None) - clock[0])
        clock[0] += 4000  # each pause over
    assert lengths == [300, 600, 1200, 2400, 3600, 3600]
    pauses.clear_backoff("claude")
    assert pauses.pause("claude", None) - clock[0] == 300
    assert pauses.until("codex") is None and pauses.until("claude") == clock[0] + 300
    assert pauses.pause("codex", clock[0] + 42) == clock[0] + 42  # the CLI's own reset time


def _zone(message: str) -> Any:
    from zoneinfo import ZoneInfo

    for name in ("America/Santiago", "Europe/Budapest"):
        if name in message:
            return ZoneInfo(name)
    return None


# --- aider: code the model writes is not a report ---------------------------------------


def _aider_texts(lines: list[str]) -> list[str]:
    reader = AiderText()
    return [text for line in lines for text in reader.texts(line)]


def test_aider_skips_fences_and_edit_blocks() -> None:
    lines = [
        "intro [DONE:T] a",
        "```python",
        "x = '[DONE:T] b'",
        "```",
        "<<<<<<< SEARCH",
        "old",
        "=======",
        "```",  # a fence inside an edit block (a Markdown file being edited)
        "[DONE:T] c",
        ">>>>>>> REPLACE",
        "````markdown",
        "```",
        "[DONE:T] d",
        "```",
        "````",
        "~~~",
        "[DONE:T] e",
        "~~~",
        "[DONE:T] real",
    ]
    assert _aider_texts(lines) == ["intro [DONE:T] a", "[DONE:T] real"]


def test_aider_rate_limit_line_is_a_limit_but_the_models_words_are_not() -> None:
    reader = AiderText()
    reader.texts("```")
    reader.texts("litellm.RateLimitError: in a code block")
    reader.texts("```")
    reader.texts("We hit a quota exceeded error in the old code.")
    assert reader.limit is None
    reader.texts("The API provider has rate limited you. Try again later or check your quotas.")
    assert reader.limit is not None and reader.limit.reset_at is None


def test_an_interrupt_ends_the_wait_for_a_reset(standins: Standins, checkout: Checkout) -> None:
    standins.plan([{"id": "t1", "agent": limited("claude", time.time() + 300)}])
    proc = checkout.start(env=_env(standins))
    try:
        checkout.wait_for(lambda: _status_of(checkout, "t1") == "PAUSED", timeout=30)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err


def test_with_session_continue_the_task_resumes_the_paused_session(
    standins: Standins, checkout: Checkout
) -> None:
    agent = {**limited("claude", time.time() + 3), "session": "continue"}
    standins.plan([{"id": "t1", "agent": agent}], defaults={"retries": 0})
    result = checkout.doit(env=_env(standins), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    first, second = calls_of(standins, "t1")
    assert "--resume" not in first["argv"]
    assert second["argv"][-2:] == ["--resume", first["session_id"]]


def test_a_later_report_with_a_reset_time_wins() -> None:
    reader = GeminiStream()
    reader.texts("Attempt 1 failed with status 429. Retrying with backoff...")
    assert reader.limit is not None and reader.limit.reset_at is None
    reader.texts("[API Error: You have exhausted your capacity on this model. "
                 "Your quota will reset after 1h.]")  # fmt: skip
    reader.texts("Attempt 2 failed with status 429. Retrying with backoff...")
    assert reader.limit.reset_at is not None and reader.limit.reset_at > time.time() + 3500


def test_a_paused_task_frees_its_slot(standins: Standins, checkout: Checkout) -> None:
    until = time.time() + 6
    standins.plan(
        [
            {"id": "t1", "agent": limited("claude", until)},
            {"id": "t2", "project": "b", "agent": {"profile": "codex", "env": SLOW}},
        ],
        projects=("a", "b"),
        defaults={"retries": 0},
    )
    result = checkout.doit("-n", "1", env=_env(standins), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    t1, t2 = calls_of(standins, "t1"), calls_of(standins, "t2")
    assert t1[0]["time"] < t2[0]["time"] < until <= t1[1]["time"]


def test_a_racer_s_usage_limit_holds_its_profile_s_other_tasks(
    standins: Standins, checkout: Checkout
) -> None:
    from test_worktrees import NO_GIT_CONFIG, make_repo

    until = time.time() + 4
    make_repo(checkout.root / "app", {"README": "app\n"})
    project = {"name": "app", "path": "app", "isolation": "worktree", "parallel": 2}
    plan = {
        "planId": PLAN,
        # the winner thinks a while, so the loser's limit is read before the race ends
        "agents": {
            "lim": limited("claude", until),
            "ok": {"profile": "codex", "env": {"STANDIN_DELAY": "1.5"}},
        },
        "defaults": {"retries": 0},
        "projects": [project, {"name": "b", "path": "b"}],
        "tasks": [
            {"id": "t1", "title": "t1", "project": "app", "race": ["lim", "ok"]},
            {"id": "t2", "title": "t2", "project": "b", "dependsOn": ["t1"], "agent": "lim"},
        ],
    }
    checkout.write_plan(plan, "prof.json")
    result = standins.run(**NO_GIT_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert standins.stamp("t1")["race"] == {"winner": "ok", "racers": 2}
    # claude's limit, reported by the losing racer, held t2 until the reset: one call.
    (t2,) = calls_of(standins, "t2")
    assert t2["time"] >= until
