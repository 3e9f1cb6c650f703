"""Recovery end-to-end: retries, stalls, verified DONE, questions, crashes, interrupts, the lock.

Every test runs the real `doit` as a subprocess on a checkout in tmp_path, with the fake
agent (tests/fake_agent.py) as the agent. Agents that must be held at a point wait for a
"go" file the test creates (`wait_file`), so no test depends on a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout, pid_alive

PLAN = "rec"


def write(
    co: Checkout,
    tasks: list[dict[str, Any]],
    projects: tuple[str | dict[str, Any], ...] = ("a",),
    plan_id: str = PLAN,
    **extra: Any,
) -> None:
    """A plan of `tasks` (project: the first one unless given) run by the fake agent.

    A project is a name (its folder too) or a full mapping; `extra` adds plan keys.
    """
    rows = [p if isinstance(p, dict) else {"name": p, "path": p} for p in projects]
    plan = {
        "planId": plan_id,
        "agent": co.agent(),
        "projects": rows,
        "tasks": [{"project": rows[0]["name"], "title": t["id"], **t} for t in tasks],
        **extra,
    }
    co.write_plan(plan, f"{plan_id}.json")


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def attempts(co: Checkout, task: str) -> list[int]:
    return [r["attempt"] for r in co.records() if r["task"] == task]


def prompts(co: Checkout, task: str) -> list[str]:
    return [r["prompt"] for r in co.records() if r["task"] == task]


def records(co: Checkout, plan_id: str = PLAN) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in co.state(plan_id)["tasks"]}


def stamp(co: Checkout, task: str) -> dict[str, Any]:
    found = co.stamp(task, PLAN)
    assert found is not None, f"{task} has no stamp"
    return found


def plan_dir(co: Checkout, plan_id: str = PLAN) -> Path:
    return co.root / ".orch" / plan_id


def read_state(co: Checkout) -> dict[str, dict[str, Any]]:
    """The task records on disk, {} while state.json does not exist yet."""
    try:
        return records(co)
    except FileNotFoundError:
        return {}


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out + err


# --- 1. attempt outcomes and retries -----------------------------------------------------


def test_closed_terminal_is_retried_and_the_reason_is_shown(checkout: Checkout) -> None:
    write(checkout, [{"id": "x"}])
    checkout.scenario({"x": [[{"say": "compiling..."}, {"exit": 0}], [{"done": "second try"}]]})
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert attempts(checkout, "x") == [1, 2]
    assert (
        "attempt 1 failed: agent exited (code 0) without DONE, ERROR or QUESTION: compiling..."
        " — retrying"
    ) in result.stdout
    assert stamp(checkout, "x")["attempt"] == 2
    assert stamp(checkout, "x")["summary"] == "second try"
    logs = plan_dir(checkout) / "logs"
    assert "compiling..." in (logs / "x.1.log").read_text()
    assert "second try" in (logs / "x.2.log").read_text()


def test_retries_come_from_task_project_and_defaults(checkout: Checkout) -> None:
    tasks = [{"id": "a1"}, {"id": "a2", "retries": 1}, {"id": "b1", "project": "b"}]
    write(checkout, tasks, ({"name": "a", "path": "a", "retries": 0}, "b"), defaults={"retries": 2})
    write(checkout, [{"id": "c1"}], projects=("c",), plan_id="plain")
    tries = [[{"say": f"try {n}"}, {"exit": n + 2}] for n in (1, 2, 3)]
    checkout.scenario({t: tries for t in ("a1", "a2", "b1", "c1")})
    result = checkout.doit()
    assert result.returncode != 0
    assert attempts(checkout, "a1") == [1]  # project: retries 0
    assert attempts(checkout, "a2") == [1, 2]  # task overrides project
    assert attempts(checkout, "b1") == [1, 2, 3]  # plan defaults
    assert attempts(checkout, "c1") == [1, 2]  # built-in default: 1 retry
    last = "agent exited (code 5) without DONE, ERROR or QUESTION: try 3"
    assert f"ERROR (attempt 3): {last}" in result.stdout
    assert records(checkout)["b1"]["status"] == "ERROR"
    assert last in records(checkout)["b1"]["error"]
    assert last in checkout.md(PLAN)
    assert "code 4" in records(checkout, "plain")["c1"]["error"]


def test_error_is_final_unless_retry_on_error(checkout: Checkout) -> None:
    tasks = [{"id": "e1"}, {"id": "e2", "project": "b", "retryOnError": True}]
    write(checkout, tasks, projects=("a", "b"))
    flaky = [[{"error": "database is down"}], [{"done": "recovered"}]]
    checkout.scenario({"e1": flaky, "e2": flaky})
    result = checkout.doit()
    assert result.returncode != 0
    assert attempts(checkout, "e1") == [1]
    assert "database is down" in records(checkout)["e1"]["error"]
    assert checkout.stamp("e1", PLAN) is None
    assert attempts(checkout, "e2") == [1, 2]
    assert stamp(checkout, "e2")["summary"] == "recovered"
    assert "attempt 1 failed: database is down — retrying" in result.stdout


def test_attempt_numbers_count_across_runs(checkout: Checkout) -> None:
    write(checkout, [{"id": "x"}])
    checkout.scenario({"x": [[{"exit": 1}], [{"exit": 1}], [{"done": "third"}]]})
    assert checkout.doit().returncode != 0
    assert checkout.doit().returncode == 0
    assert attempts(checkout, "x") == [1, 2, 3]
    assert len({r["terminal_id"] for r in checkout.records()}) == 3
    for n in (1, 2, 3):
        assert (plan_dir(checkout) / "logs" / f"x.{n}.log").is_file()
        assert f"**Attempt:** {n}" in (plan_dir(checkout) / "prompts" / f"x.{n}.md").read_text()
    assert stamp(checkout, "x")["attempt"] == 3


# --- 2. stalls, timeouts, exit grace -----------------------------------------------------


def test_stall_with_prompt_on_stdin_kills_the_group_at_once(checkout: Checkout) -> None:
    write(checkout, [{"id": "x"}], defaults={"stallTimeout": "1.5s"})
    hang = [{"spawn_child": "child.pid"}, {"say": "thinking"}, {"hang": True}]
    checkout.scenario({"x": [hang, [{"done": "woke"}]]})
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert attempts(checkout, "x") == [1, 2]
    assert "attempt 1 failed: no output for 1.5s; process group killed" in result.stdout
    assert "Enter was sent" not in result.stdout
    assert not pid_alive(checkout.records()[0]["pid"])
    assert not pid_alive(int((checkout.root / "a" / "child.pid").read_text()))


def test_stall_sends_enter_where_stdin_is_open(checkout: Checkout) -> None:
    tasks = [{"id": "x"}, {"id": "y", "project": "b", "agent": checkout.agent("arg")}]
    limits = {"stallTimeout": "1.5s"}
    write(checkout, tasks, ("a", "b"), agent=checkout.agent("file"), defaults=limits)
    checkout.scenario({
        "x": [[{"read_stdin_line": True}, {"done": "woke up"}]],
        "y": [[{"hang": True}], [{"done": "second"}]],
    })  # fmt: skip
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert attempts(checkout, "x") == [1]  # Enter woke it: no retry
    assert "got Enter" in (plan_dir(checkout) / "logs" / "x.1.log").read_text()
    assert attempts(checkout, "y") == [1, 2]
    assert "no output for 1.5s (Enter was sent); process group killed" in result.stdout


def test_timeout_bounds_a_whole_attempt(checkout: Checkout) -> None:
    write(checkout, [{"id": "x", "timeout": "2s"}])
    checkout.scenario({"x": [[{"chat": 0.05}], [{"done": "fast"}]]})
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert attempts(checkout, "x") == [1, 2]
    assert "attempt 1 failed: timed out after 2s; process group killed" in result.stdout
    assert not pid_alive(checkout.records()[0]["pid"])


def test_exit_grace_then_term_then_kill(checkout: Checkout) -> None:
    tasks = [{"id": "polite"}, {"id": "stubborn", "project": "b"}]
    write(checkout, tasks, projects=("a", "b"), defaults={"exitGrace": 1})
    checkout.scenario({
        "polite": [[{"done": "polite"}, {"sleep": 60}]],
        "stubborn": [[{"ignore_term": True}, {"spawn_child": "child.pid"},
                      {"done": "stubborn"}, {"hang": True}]],
    })  # fmt: skip
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    for task in ("polite", "stubborn"):
        assert 1.0 <= stamp(checkout, task)["durationSeconds"] < 30  # exitGrace, not 30s
        assert attempts(checkout, task) == [1]
    assert not any(pid_alive(r["pid"]) for r in checkout.records())
    assert not pid_alive(int((checkout.root / "b" / "child.pid").read_text()))


# --- 3. verified DONE --------------------------------------------------------------------


def test_failed_checks_are_failed_attempts_with_feedback(checkout: Checkout) -> None:
    check = "test -f hello.txt || { echo 'hello.txt is missing'; exit 1; }"
    tasks = [
        {"id": "v", "verify": check},
        {"id": "o", "project": "b", "outputs": ["dist/*.js"]},
        {"id": "never", "project": "c", "verify": "echo never good; exit 2", "retries": 0},
        {"id": "mute", "project": "d", "verify": "exit 1", "retries": 0},
    ]
    write(checkout, tasks, projects=("a", "b", "c", "d"))
    checkout.scenario({
        "v": [[{"done": "first"}], [{"write": ["hello.txt", "hi"]}, {"done": "second"}]],
        "o": [[{"done": "first"}], [{"write": ["dist/app.js", "x"]}, {"done": "built"}]],
    })  # fmt: skip
    result = checkout.doit()
    assert result.returncode != 0
    assert "attempt 1 failed: DONE, but verify failed" in result.stdout
    first, second = prompts(checkout, "v")
    assert "hello.txt is missing" in second and "hello.txt is missing" not in first
    assert "Feedback from the previous attempt" in second
    assert stamp(checkout, "v")["attempt"] == 2
    assert stamp(checkout, "v")["verify"]["exitCode"] == 0
    assert "dist/*.js" in prompts(checkout, "o")[1]
    assert stamp(checkout, "o")["summary"] == "built"
    assert checkout.stamp("never", PLAN) is None
    assert "never good" in records(checkout)["never"]["error"]
    mute = "DONE, but verify failed (command exited with code 1) and printed nothing"
    assert records(checkout)["mute"]["error"] == mute  # no colon before nothing


def test_deleted_output_or_changed_input_reruns_the_task(checkout: Checkout) -> None:
    tasks = [{"id": "x", "outputs": ["out.txt"], "inputs": ["spec.md"]},
             {"id": "y", "project": "b"}]  # fmt: skip
    write(checkout, tasks, projects=("a", "b"))
    (checkout.root / "a").mkdir()
    (checkout.root / "a" / "spec.md").write_text("v1")
    checkout.scenario({"x": [[{"write": ["out.txt", "built"]}, {"done": "x"}]]})
    assert checkout.doit().returncode == 0
    (checkout.root / "a" / "out.txt").unlink()
    assert checkout.doit().returncode == 0
    assert Counter(checkout.dispatched()) == {"x": 2, "y": 1}
    assert (checkout.root / "a" / "out.txt").is_file()
    (checkout.root / "a" / "spec.md").write_text("v2 with more")
    assert checkout.doit().returncode == 0
    assert Counter(checkout.dispatched()) == {"x": 3, "y": 1}
    assert checkout.doit().returncode == 0
    assert Counter(checkout.dispatched()) == {"x": 3, "y": 1}


# --- 4. questions ------------------------------------------------------------------------


def test_question_waits_and_answers_come_back_in_the_prompt(checkout: Checkout) -> None:
    tasks = [{"id": "q"}, {"id": "dep", "dependsOn": ["q"]}, {"id": "other", "project": "b"}]
    write(checkout, tasks, projects=("a", "b"), defaults={"exitGrace": 1})
    checkout.scenario({"q": [
        [{"question": "Postgres or SQLite?"}, {"hang": True}],  # a QUESTION ends the attempt
        [{"question": "Which port?"}],
        [{"done": "used both answers"}],
    ]})  # fmt: skip
    first = checkout.doit()
    assert first.returncode != 0
    assert sorted(checkout.dispatched()) == ["other", "q"]
    state = records(checkout)
    assert state["q"]["status"] == "QUESTION"
    assert state["q"]["questions"][0]["question"] == "Postgres or SQLite?"
    assert state["dep"]["status"] == "SKIPPED" and state["other"]["status"] == "DONE"
    assert "Postgres or SQLite?" in checkout.md(PLAN)
    assert f'doit answer {PLAN}:q "..."' in first.stdout
    again = checkout.doit()
    assert again.returncode != 0 and "still waiting for an answer" in again.stdout
    assert len(checkout.records()) == 2  # not dispatched again while unanswered
    answered = checkout.doit("answer", f"{PLAN}:q", "SQLite")
    assert answered.returncode == 0  # the confirmation says what the answer was
    assert "answered “Postgres or SQLite?” with “SQLite”;" in answered.stdout, answered.stdout
    assert checkout.doit().returncode != 0  # asks a second question
    assert checkout.doit("answer", f"{PLAN}:q", "port 8080").returncode == 0
    assert checkout.doit().returncode == 0
    assert attempts(checkout, "q") == [1, 2, 3]
    second, third = prompts(checkout, "q")[1:]
    assert "Postgres or SQLite?" in second and "SQLite" in second and "Which port?" not in second
    for needle in ("Postgres or SQLite?", "SQLite", "Which port?", "port 8080"):
        assert needle in third
    assert stamp(checkout, "dep")


def test_forget_releases_a_waiting_task(checkout: Checkout) -> None:
    write(checkout, [{"id": "q"}])
    checkout.scenario({"q": [[{"question": "A or B?"}], [{"done": "chose myself"}]]})
    assert checkout.doit().returncode != 0
    assert checkout.doit("forget", f"{PLAN}:q").returncode == 0
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert attempts(checkout, "q") == [1, 2]
    assert "A or B?" not in prompts(checkout, "q")[1]


def test_an_answer_given_during_the_run_counts_if_the_task_was_not_reached(
    checkout: Checkout,
) -> None:
    write(checkout, [{"id": "blocker"}, {"id": "q"}])  # one project: q runs after blocker
    checkout.scenario({
        "blocker": [[{"error": "flaky"}], [{"wait_file": "go"}, {"done": "unblocked"}]],
        "q": [[{"question": "Which DB?"}], [{"done": "used the answer"}]],
    })  # fmt: skip
    assert checkout.doit().returncode != 0
    run = checkout.start()
    checkout.wait_for(lambda: attempts(checkout, "blocker") == [1, 2])
    assert checkout.doit("answer", f"{PLAN}:q", "Postgres", timeout=20).returncode == 0
    (checkout.root / "a" / "go").touch()
    code, out = finish(run)
    assert code == 0, out
    assert attempts(checkout, "q") == [1, 2]
    assert "Which DB?" in prompts(checkout, "q")[1] and "Postgres" in prompts(checkout, "q")[1]


# --- 4 + 6. while a run is going: answer, readers, the run lock ---------------------------


def test_during_a_run_answer_and_readers_work_a_second_run_is_refused(
    checkout: Checkout,
) -> None:
    tasks = [{"id": "q"}, {"id": "slow", "project": "b"}]
    write(checkout, tasks, projects=("a", "b"))
    checkout.scenario({
        "q": [[{"question": "Which DB?"}], [{"done": "used the answer"}]],
        "slow": [[{"progress": [10, "started"]}, {"wait_file": "go"}, {"done": "slow"}]],
    })  # fmt: skip
    run = checkout.start()
    checkout.wait_for(lambda: read_state(checkout).get("q", {}).get("status") == "QUESTION")
    second = checkout.doit()
    assert second.returncode != 0
    assert "run.lock" in output(second) and f"pid {run.pid}" in output(second)
    assert "Traceback" not in output(second)
    for args in (["list", "--all"], ["status"]):
        reader = checkout.doit(*args, timeout=20)
        assert reader.returncode == 0, (args, output(reader))
        assert f"{PLAN}:slow" in reader.stdout
    info = checkout.doit("info", f"{PLAN}:slow", timeout=20)
    assert info.returncode == 1  # doit's info: 1 = the task is not up to date
    assert f"{PLAN}:slow: would run: no completion stamp" in info.stdout
    answer = checkout.doit("answer", f"{PLAN}:q", "Postgres", timeout=20)
    assert answer.returncode == 0, output(answer)
    (checkout.root / "b" / "go").touch()
    code, _ = finish(run)
    assert code != 0  # q was waiting when the run reached it
    assert records(checkout)["q"]["questions"][0]["answer"] == "Postgres"
    assert sorted(checkout.dispatched()) == ["q", "slow"]
    resumed = checkout.doit()
    assert resumed.returncode == 0, output(resumed)
    assert "Which DB?" in prompts(checkout, "q")[1] and "Postgres" in prompts(checkout, "q")[1]


# --- 5. crash safety ---------------------------------------------------------------------

CRASH_TASKS = [
    {"id": "a1"},
    {"id": "b1", "project": "b", "verify": ["test", "-f", "b1.txt"]},
    {"id": "b2", "project": "b", "dependsOn": ["b1"]},
    {"id": "a2", "dependsOn": ["a1", "b2"]},
]
HELD = {  # kill point -> (scenario, task whose agent is held by a go file)
    "before_agents": ({"b1": [[{"write": ["b1.txt", "x"]}, {"done": "b1 built"}]]}, ""),
    "agent_running": ({"b1": [[{"write": ["b1.txt", "x"]}, {"progress": [40, "half"]},
                               {"wait_file": "go"}, {"done": "b1 built"}]]}, "b1"),
    "after_done": ({"b1": [[{"write": ["b1.txt", "x"]}, {"done": "b1 built"},
                            {"wait_file": "go"}]]}, "b1"),
    "dependent_running": ({"b1": [[{"write": ["b1.txt", "x"]}, {"done": "b1 built"}]],
                           "b2": [[{"progress": [5, "begun"]}, {"wait_file": "go"},
                                   {"done": "b2 done"}]]}, "b2"),
}  # fmt: skip


def _kill_point_reached(co: Checkout, point: str) -> bool:
    if point == "before_agents":
        lock = co.root / ".orch" / "run.lock"
        return lock.is_file() and bool(lock.read_text().strip())
    if point == "agent_running":
        return "b1" in co.dispatched() and "[PROGRESS:" in _log(co, "b1")
    if point == "after_done":
        return "[DONE:" in _log(co, "b1")
    return co.stamp("b1", PLAN) is not None and "[PROGRESS:" in _log(co, "b2")


def _log(co: Checkout, task: str) -> str:
    path = plan_dir(co) / "logs" / f"{task}.1.log"
    return path.read_text() if path.is_file() else ""


# SIGHUP (a closed terminal) kills doit without cleanup, like SIGKILL: agents go on.
KILLS = [(point, signal.SIGKILL) for point in HELD] + [("agent_running", signal.SIGHUP)]


@pytest.mark.parametrize(("point", "sig"), KILLS)
def test_killed_doit_then_resume_never_redoes_or_doubles(
    checkout: Checkout, point: str, sig: signal.Signals
) -> None:
    write(checkout, CRASH_TASKS, projects=("a", "b"))
    scenario, held = HELD[point]
    checkout.scenario(scenario)
    first = checkout.start()
    deadline_poll(lambda: _kill_point_reached(checkout, point))
    os.kill(first.pid, sig)
    first.communicate(timeout=30)
    if point == "after_done":  # the agent exits before the next run: its log holds DONE
        release(checkout, held)
    resumed = checkout.start()
    if held and point != "after_done":
        checkout.wait_for(lambda: read_state(checkout).get(held, {}).get("adopted") is True)
        release(checkout, held)
    code, out = finish(resumed)
    assert code == 0, out
    assert "Traceback" not in out
    assert Counter(checkout.dispatched()) == {"a1": 1, "b1": 1, "b2": 1, "a2": 1}
    assert all(t["status"] == "DONE" for t in records(checkout).values())
    assert all(checkout.stamp(t["id"], PLAN) for t in CRASH_TASKS)
    if held:
        assert stamp(checkout, "b1")["summary"] == "b1 built"
        assert stamp(checkout, "b1")["verify"]["exitCode"] == 0
    if held and point != "after_done":
        assert f"{PLAN}:{held}" in out and "adopted running attempt 1" in out


def deadline_poll(predicate: Any, timeout: float = 20.0) -> None:
    """Like wait_for, checking every millisecond: a kill point may last only milliseconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "kill point not reached in time"
        time.sleep(0.001)


def release(co: Checkout, task: str) -> None:
    """Let a held agent go on, and wait until it has exited."""
    project = "a" if task.startswith("a") else "b"
    (co.root / project / "go").touch()
    pid = next(r["pid"] for r in co.records() if r["task"] == task)
    co.wait_for(lambda: not pid_alive(pid))


def test_an_attempt_that_left_nothing_is_not_counted(checkout: Checkout) -> None:
    write(checkout, [{"id": "x", "retries": 0}])
    checkout.scenario({"x": [[{"wait_file": "go"}, {"done": "never"}], [{"done": "second"}]]})
    first = checkout.start()
    checkout.wait_for(lambda: "x" in checkout.dispatched())
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    pid = checkout.records()[0]["pid"]
    os.killpg(pid, signal.SIGKILL)  # both gone, as after a reboot: a dead pid, an empty log
    checkout.wait_for(lambda: not pid_alive(pid))
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert attempts(checkout, "x") == [1, 2]
    assert stamp(checkout, "x")["attempt"] == 2


def test_a_verify_left_by_a_killed_run_is_stopped_before_checking_again(
    checkout: Checkout,
) -> None:
    write(checkout, [{"id": "x", "verify": "echo $$ >> verify.pids; test -f go || exec sleep 60"}])
    checkout.scenario({"x": [[{"done": "claimed"}]]})
    first = checkout.start()
    pids = checkout.root / "a" / "verify.pids"
    checkout.wait_for(lambda: pids.is_file() and pids.read_text().strip() != "")
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    (checkout.root / "a" / "go").touch()
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert attempts(checkout, "x") == [1]  # the DONE in the log was taken, then checked again
    old, new = (int(line) for line in pids.read_text().split())
    assert old != new and not pid_alive(old)
    assert stamp(checkout, "x")["verify"]["exitCode"] == 0


def test_an_adopted_shell_command_keeps_its_exit_code(checkout: Checkout) -> None:
    wait = "while [ ! -f go ]; do sleep 0.02; done; "
    tasks = [{"id": "build", "command": wait + "echo built"},
             {"id": "broken", "project": "b", "command": wait + "echo broke; exit 3"}]  # fmt: skip
    write(checkout, tasks, projects=("a", "b"))
    first = checkout.start()
    started = lambda: sorted(t for t, r in read_state(checkout).items() if r.get("pid"))  # noqa: E731
    checkout.wait_for(lambda: started() == ["broken", "build"])
    pids = [r["pid"] for r in records(checkout).values()]
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    for project in ("a", "b"):
        (checkout.root / project / "go").touch()
    checkout.wait_for(lambda: not any(pid_alive(p) for p in pids))
    result = checkout.doit()
    assert result.returncode != 0
    assert stamp(checkout, "build")["summary"] == "built"
    assert "command exited with code 3: broke" in records(checkout)["broken"]["error"]
    assert not (plan_dir(checkout) / "logs" / "build.2.log").exists()  # adopted, not re-run


def test_an_adopted_attempt_keeps_its_original_timeout(checkout: Checkout) -> None:
    write(checkout, [{"id": "x", "timeout": "4s"}])
    checkout.scenario({"x": [[{"chat": 0.1}], [{"done": "second"}]]})
    first = checkout.start()
    checkout.wait_for(lambda: "x" in checkout.dispatched())
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    began = checkout.records()[0]["start"]
    checkout.wait_for(lambda: time.time() > began + 4.2)  # the attempt is overdue now
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert "attempt 1 failed: timed out after 4s" in result.stdout
    assert attempts(checkout, "x") == [1, 2]
    run_began = parse_time(checkout.state(PLAN)["run"]["startedAt"])
    assert checkout.records()[1]["start"] - run_began < 3.0  # not another 4s


def parse_time(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_every_agent_group_and_starts_nothing(
    checkout: Checkout, sig: signal.Signals, code: int
) -> None:
    tasks = [
        {"id": "stubborn"},
        {"id": "parent", "project": "b"},
        {"id": "plain", "project": "c"},
        {"id": "after", "dependsOn": ["stubborn"]},
    ]
    write(checkout, tasks, projects=("a", "b", "c"), defaults={"retries": 2})
    checkout.scenario({
        "stubborn": [[{"ignore_term": True}, {"progress": [10, "x"]}, {"hang": True}]],
        "parent": [[{"spawn_child": "child.pid"}, {"progress": [10, "x"]}, {"hang": True}]],
        "plain": [[{"progress": [10, "x"]}, {"hang": True}]],
    })  # fmt: skip
    run = checkout.start()
    running = ("stubborn", "parent", "plain")
    checkout.wait_for(lambda: all("[PROGRESS:" in _log(checkout, t) for t in running))
    child = int((checkout.root / "b" / "child.pid").read_text())
    os.kill(run.pid, sig)
    exit_code, out = finish(run)
    assert exit_code == code, out
    assert "Traceback" not in out
    assert sorted(checkout.dispatched()) == sorted(running)  # no retry, no dependent
    pids = [r["pid"] for r in checkout.records()] + [child]
    assert not [p for p in pids if pid_alive(p)]
    state = checkout.state(PLAN)
    assert state["run"]["interrupted"] == sig.name
    tasks_now = records(checkout)
    for task in running:
        assert tasks_now[task]["status"] == "ERROR"
        assert f"interrupted by {sig.name}" in tasks_now[task]["error"]
    assert tasks_now["after"]["status"] != "DONE"
    assert f"interrupted by {sig.name}" in checkout.md(PLAN)
    checkout.scenario({})
    assert checkout.doit().returncode == 0
    assert Counter(checkout.dispatched()) == {"stubborn": 2, "parent": 2, "plain": 2, "after": 1}


def test_attempts_starting_together_share_the_one_wake_descriptor() -> None:
    """Every attempt waits on the descriptor `trigger` writes to, however they race to it."""
    import select

    from orchlib.run.context import Interrupt

    for _ in range(50):
        interrupt = Interrupt()
        start = threading.Barrier(8)
        seen: list[int] = []

        def ask(
            stop: Interrupt = interrupt, gate: threading.Barrier = start, out: list[int] = seen
        ) -> None:
            gate.wait()
            out.append(stop.wake_fd)

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(seen)) == 1
        interrupt.trigger("SIGTERM")
        assert select.select([seen[0]], [], [], 0)[0] == [seen[0]]


def test_interrupt_also_stops_an_adopted_agent(checkout: Checkout) -> None:
    write(checkout, [{"id": "x"}])
    held = [{"ignore_term": True}, {"spawn_child": "child.pid"}, {"progress": [5, "x"]}]
    checkout.scenario({"x": [[*held, {"hang": True}]]})
    first = checkout.start()
    checkout.wait_for(lambda: "[PROGRESS:" in _log(checkout, "x"))
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    second = checkout.start()
    checkout.wait_for(lambda: read_state(checkout).get("x", {}).get("adopted") is True)
    os.kill(second.pid, signal.SIGINT)
    code, out = finish(second)
    assert code == 130, out
    assert "Traceback" not in out
    child = int((checkout.root / "a" / "child.pid").read_text())
    assert not pid_alive(checkout.records()[0]["pid"]) and not pid_alive(child)
    assert len(checkout.records()) == 1


def test_interrupt_during_verify_is_an_interrupt_not_a_failed_check(checkout: Checkout) -> None:
    write(checkout, [{"id": "x", "retries": 2, "verify": "echo $$ > verify.pid; exec sleep 60"}])
    checkout.scenario({"x": [[{"done": "claimed"}]]})
    run = checkout.start()
    pid_file = checkout.root / "a" / "verify.pid"
    checkout.wait_for(lambda: pid_file.is_file() and pid_file.read_text().strip() != "")
    os.kill(run.pid, signal.SIGTERM)
    code, out = finish(run)
    assert code == 143, out
    assert "Traceback" not in out
    assert not pid_alive(int(pid_file.read_text()))
    assert attempts(checkout, "x") == [1]
    assert "interrupted by SIGTERM" in records(checkout)["x"]["error"]
    assert checkout.stamp("x", PLAN) is None


def test_a_reused_pid_is_never_signalled() -> None:
    from orchlib.executors.local import LocalExecutor
    from orchlib.executors.process import start_time

    # What a recorded agent looks like once its pid belongs to another process: the
    # kernel start time differs. Adoption must count it as gone and never signal it.
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        ref = {"executor": "local", "pid": other.pid, "start": str(int(start_time(other.pid)) - 1)}
        stale = LocalExecutor().adopt(ref)
        assert stale is not None and stale.poll() == -1
        stale.terminate(grace=0.1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_state_and_stamps_are_replaced_atomically(checkout: Checkout) -> None:
    tasks = [{"id": f"t{n}", "project": "ab"[n % 2]} for n in range(8)]
    write(checkout, tasks, projects=("a", "b"))
    chatty = [[{"progress": [p, f"step {p}"]} for p in range(0, 100, 5)] + [{"done": "ok"}]]
    checkout.scenario({t["id"]: [chatty[0]] for t in tasks})
    torn: list[str] = []
    reads = [0]
    stop = threading.Event()

    def reader() -> None:
        folder = plan_dir(checkout)
        while not stop.is_set():
            for path in [folder / "state.json", *folder.glob("stamps/*.json")]:
                try:
                    text = path.read_text()
                except FileNotFoundError:
                    continue
                reads[0] += 1
                try:
                    json.loads(text)
                except ValueError:
                    torn.append(f"{path.name}: {text[:80]!r}")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        result = checkout.doit()
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, output(result)
    assert reads[0] > 20 and not torn
    assert not list(plan_dir(checkout).rglob("*.tmp"))
