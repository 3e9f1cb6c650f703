"""End-to-end visibility of real runs: orchestration.md and state.json while a run is going,
concurrent writers, `doit status`, notifications to real commands, and the live console.

Everything here is a real process: `python -m doit` in a tmp checkout, the fake agent
(tests/fake_agent.py), `doit answer` / `doit status` run beside it, notifier commands.
Runs that must be caught mid-way are held by a gate file the fake agent waits for
(`wait_file`, `progress_until`), so no assertion depends on how fast anything is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conftest import Checkout
from ruamel.yaml import YAML

from orchlib.state.table import format_duration

PLAN = "orch-abc123"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
FRONT = re.compile(r"\A---\n(type: orchestration-state\n.*?)---\n\n## Plan Summary\n", re.S)
PLAN_STATUSES = {"pending", "in_progress", "completed", "failed", "waiting"}
TASK_STATUSES = {"PENDING", "IN_PROGRESS", "DONE", "ERROR", "QUESTION", "SKIPPED"}
CONSOLE = re.compile(r"^(\d\d:\d\d:\d\d) (\S+) +(.*)$")


# --- helpers ------------------------------------------------------------------------------


def orch(co: Checkout, plan: str) -> Path:
    return co.root / ".orch" / plan


def read_md(co: Checkout, plan: str) -> str:
    try:
        return (orch(co, plan) / "orchestration.md").read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def task_map(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in state["tasks"]}


def checked_state(co: Checkout, plan: str, task_ids: list[str]) -> dict[str, Any] | None:
    """state.json parsed and checked against docs/state.md; None before it first exists."""
    try:
        text = (orch(co, plan) / "state.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    state = json.loads(text)  # a torn file would raise here
    assert state["version"] == 1 and state["planId"] == plan
    assert state["status"] in PLAN_STATUSES
    assert [t["id"] for t in state["tasks"]] == task_ids
    assert all(t["status"] in TASK_STATUSES for t in state["tasks"])
    assert ISO.fullmatch(state["updatedAt"])
    return state


def checked_md(co: Checkout, plan: str) -> dict[str, Any] | None:
    """orchestration.md's front matter, checked to be whole, valid YAML; None before it exists."""
    text = read_md(co, plan)
    if not text:
        return None
    match = FRONT.match(text)
    assert match, text[:300]
    front: dict[str, Any] = YAML(typ="safe").load(match.group(1))
    assert front["type"] == "orchestration-state" and front["planId"] == plan
    assert front["status"] in PLAN_STATUSES
    assert text.endswith("```\n"), "orchestration.md is cut short"
    return front


def normalized(text: str, records: list[dict[str, Any]]) -> str:
    """Terminal ids as <tid:TASK>, times as <time>."""
    for rec in records:
        text = text.replace(rec["terminal_id"], f"<tid:{rec['task']}>")
    return ISO.sub("<time>", text)


def status_rows(text: str, plan: str) -> tuple[str, dict[str, dict[str, str]], list[str]]:
    """`doit status` for one plan: its head line, rows by task id, its next-step lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{plan}: "))
    head, header = lines[start], lines[start + 1]
    names = ("TASK", "STATE", "PROJECT", "ATTEMPT", "DURATION", "LOG", "LAST")
    cols = [header.index(name) for name in names]
    rows: dict[str, dict[str, str]] = {}
    i = start + 2
    while i < len(lines) and lines[i].startswith(f"{plan}:"):
        line = lines[i]
        cells = [line[a:b].strip() for a, b in zip(cols, [*cols[1:], None], strict=True)]
        rows[cells[0].split(":", 1)[1]] = dict(zip(names, cells, strict=True))
        i += 1
    steps: list[str] = []
    if i + 1 < len(lines) and lines[i] == "" and lines[i + 1] == "next steps:":
        i += 2
        while i < len(lines) and lines[i].startswith("  "):
            steps.append(lines[i].strip())
            i += 1
    return head, rows, steps


def wait_until(predicate: Callable[[], bool], proc: subprocess.Popen[str], what: str,
               timeout: float = 30.0) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended before {what}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def console_lines(out: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The event lines as (label, text), and the summary lines after them."""
    lines = out.splitlines()
    cut = next(i for i, line in enumerate(lines) if line.startswith("orchlib: "))
    events, width = [], max(len(CONSOLE.match(x).group(2)) for x in lines[:cut])  # type: ignore[union-attr]
    for line in lines[:cut]:
        match = CONSOLE.match(line)
        assert match, f"not an event line: {line!r}"
        label = match.group(2)
        # Readable in parallel: every text starts in the same column, after plan:task.
        assert line[9 : 9 + width + 2] == label.ljust(width) + "  ", line
        events.append((label, line[9 + width + 2 :]))
    return events, lines[cut:]


def texts(events: list[tuple[str, str]], label: str) -> list[str]:
    return [text for lab, text in events if lab == label]


def first(events: list[tuple[str, str]], label: str, prefix: str) -> int:
    """The index of the first line of `label` whose text starts with `prefix`."""
    return next(i for i, (lab, text) in enumerate(events)
                if lab == label and text.startswith(prefix))  # fmt: skip


def project_plan(co: Checkout, plan_id: str, tasks: list[dict[str, Any]], **extra: Any
                 ) -> dict[str, Any]:  # fmt: skip
    """A plan whose tasks each have their own project (so they may all run at once)."""
    projects = sorted({t.get("project", t["id"]) for t in tasks})
    plan: dict[str, Any] = {
        "planId": plan_id,
        "summary": f"{plan_id} plan",
        "agent": co.agent(),
        "projects": [{"name": p, "path": p} for p in projects],
        "tasks": [{"project": t["id"], "title": f"Task {t['id']}", **t} for t in tasks],
        **extra,
    }
    co.write_plan(plan, f"{plan_id}.json")
    return plan


# --- orchestration.md and state.json ------------------------------------------------------

DURING = """\
---
type: orchestration-state
planId: orch-abc123
created: <time>
status: in_progress
---

## Plan Summary
E-commerce platform with React frontend and Node.js backend

## Projects
| Name | Path | Terminal ID | Status |
|------|------|-------------|--------|
| ecommerce-frontend | ./ecommerce-frontend | <tid:t1> | idle |
| ecommerce-backend | ./ecommerce-backend | <tid:t3> | active |

## Execution State

### Phase 1 (completed)
- **t1** [DONE]: Initialize React project — <tid:t1>
  - Completed: <time>
  - Output: did t1
- **t2** [DONE]: Initialize backend project — <tid:t2>
  - Completed: <time>
  - Output: Express + TypeScript + PostgreSQL configured

### Phase 2 (in_progress)
- **t3** [IN_PROGRESS 65%]: Implement authentication API — <tid:t3>
  - Started: <time>
  - Last update: Implementing JWT refresh token logic
  - Log: .orch/orch-abc123/logs/t3.1.log

### Phase 3 (pending)
- **t4** [PENDING]: Build auth UI
  - Blocked by: t3

## Graph

```mermaid
flowchart LR
  n0["t1: Initialize React project"]:::done
  n1["t2: Initialize backend project"]:::done
  n2["t3: Implement authentication API"]:::in_progress
  n3["t4: Build auth UI"]:::pending
  n1 --> n2
  n0 --> n3
  n2 --> n3
  classDef pending fill:#f2f2f2,stroke:#999999,color:#333333
  classDef in_progress fill:#cfe2ff,stroke:#0d6efd,color:#052c65
  classDef done fill:#d1e7dd,stroke:#198754,color:#0a3622
  classDef error fill:#f8d7da,stroke:#dc3545,color:#58151c
  classDef question fill:#fff3cd,stroke:#ffc107,color:#664d03
  classDef skipped fill:#e2e3e5,stroke:#6c757d,color:#41464b,stroke-dasharray:4 2
```
"""

FINAL_STATE = """\
### Phase 1 (completed)
- **t1** [DONE]: Initialize React project — <tid:t1>
  - Completed: <time>
  - Output: did t1
- **t2** [DONE]: Initialize backend project — <tid:t2>
  - Completed: <time>
  - Output: Express + TypeScript + PostgreSQL configured

### Phase 2 (completed)
- **t3** [DONE]: Implement authentication API — <tid:t3>
  - Completed: <time>
  - Output: JWT auth with refresh tokens

### Phase 3 (completed)
- **t4** [DONE]: Build auth UI — <tid:t4>
  - Completed: <time>
  - Output: did t4
"""


def test_orchestration_md_during_and_after_a_run(checkout: Checkout) -> None:
    checkout.seed()
    gate = checkout.root / "release-t3"
    checkout.scenario({
        "t2": [[{"done": "Express + TypeScript + PostgreSQL configured"}]],
        "t3": [[{"progress": [65, "Implementing JWT refresh token logic"]},
                {"wait_file": str(gate)}, {"done": "JWT auth with refresh tokens"}]],
    })  # fmt: skip
    run = checkout.start()
    ids = ["t1", "t2", "t3", "t4"]

    def snapshot_ready() -> bool:
        md = read_md(checkout, PLAN)
        return "[IN_PROGRESS 65%]" in md and "**t1** [DONE]" in md

    wait_until(snapshot_ready, run, "t3 reported 65%")
    md, state = read_md(checkout, PLAN), checked_state(checkout, PLAN, ids)
    assert state is not None
    assert normalized(md, checkout.records()) == DURING
    assert checked_md(checkout, PLAN) == {  # YAML reads the plain timestamp as a time
        "type": "orchestration-state", "planId": PLAN, "status": "in_progress",
        "created": datetime(2024, 1, 15, 10, 0, tzinfo=timezone.utc),
    }  # fmt: skip

    # state.json says the same, with the fields docs/state.md documents.
    rec = {r["task"]: r for r in checkout.records()}
    assert state["status"] == "in_progress" and state["created"] == "2024-01-15T10:00:00Z"
    assert state["run"]["pid"] == run.pid and state["run"]["endedAt"] == ""
    assert ISO.fullmatch(state["run"]["startedAt"]) and state["run"]["interrupted"] == ""
    assert state["phases"] == [["t1", "t2"], ["t3"], ["t4"]]
    assert [(p["name"], p["terminalId"], p["status"]) for p in state["projects"]] == [
        ("ecommerce-frontend", rec["t1"]["terminal_id"], "idle"),
        ("ecommerce-backend", rec["t3"]["terminal_id"], "active"),
    ]
    tasks = task_map(state)
    t3 = tasks["t3"]
    assert (t3["status"], t3["percent"], t3["lastUpdate"]) == (
        "IN_PROGRESS", 65, "Implementing JWT refresh token logic")  # fmt: skip
    assert (t3["attempt"], t3["terminalId"], t3["pid"]) == (1, rec["t3"]["terminal_id"],
                                                            rec["t3"]["pid"])  # fmt: skip
    assert t3["pgid"] == rec["t3"]["pid"] and t3["pidStart"] and t3["adopted"] is False
    assert Path(t3["log"]).resolve() == (orch(checkout, PLAN) / "logs/t3.1.log").resolve()
    assert Path(t3["promptFile"]).read_text() == rec["t3"]["prompt"]
    assert ISO.fullmatch(t3["startedAt"]) and t3["finishedAt"] == "" and t3["duration"] is None
    t4 = tasks["t4"]
    assert (t4["status"], t4["phase"], t4["dependsOn"], t4["attempt"], t4["terminalId"]) == (
        "PENDING", 3, ["t1", "t3"], 0, "")  # fmt: skip
    t2 = tasks["t2"]
    assert (t2["status"], t2["percent"], t2["summary"]) == (
        "DONE", 100, "Express + TypeScript + PostgreSQL configured")  # fmt: skip

    gate.touch()
    code, out, err = finish(run)
    assert code == 0, out + err
    md, final = read_md(checkout, PLAN), checked_state(checkout, PLAN, ids)
    assert final is not None
    assert checked_md(checkout, PLAN)["status"] == "completed"  # type: ignore[index]
    text = normalized(md, checkout.records())
    assert FINAL_STATE in text and "Last update" not in text and "Blocked by" not in text
    assert text.count(":::done") == 4 and "| ecommerce-frontend | ./ecommerce-frontend " \
        "| <tid:t4> | done |" in text  # fmt: skip
    assert final["status"] == "completed" and final["run"]["endedAt"] >= final["run"]["startedAt"]
    for task in final["tasks"]:
        stamp = checkout.stamp(task["id"])
        assert stamp is not None
        assert (task["status"], task["percent"]) == ("DONE", 100)
        assert (task["summary"], task["attempt"], task["terminalId"], task["duration"]) == (
            stamp["summary"],
            stamp["attempt"],
            stamp["terminalId"],
            stamp["durationSeconds"],
        )


# --- concurrent writers -------------------------------------------------------------------


class StatusLoop(threading.Thread):
    """Runs `doit status` again and again until stopped; keeps every result."""

    def __init__(self, co: Checkout) -> None:
        super().__init__(daemon=True)
        self.co = co
        self.results: list[subprocess.CompletedProcess[str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.results.append(self.co.doit("status"))


def test_concurrent_run_answers_and_status_keep_the_files_valid(checkout: Checkout) -> None:
    gate = str(checkout.root / "stop-chatting")
    chat_ids, other_ids = ["c1", "c2", "c3", "q1", "q2"], ["w1"]
    project_plan(checkout, "chat", [{"id": t} for t in chat_ids])
    project_plan(checkout, "other", [{"id": "w1"}])
    chatty = [{"progress_until": [gate, 0.01]}, {"done": "chatted"}]
    checkout.scenario({
        "c1": [chatty], "c2": [chatty], "c3": [chatty],
        "q1": [[{"question": "Which database for orders?"}]],
        "q2": [[{"question": "REST or GraphQL?"}]],
        "w1": [[{"question": "Which region?"}]],
    })  # fmt: skip
    answers = {("chat", "q1"): "PostgreSQL 16", ("chat", "q2"): "REST, JSON:API style",
               ("other", "w1"): "eu-west-1 «Dublin»"}  # fmt: skip
    seen_answered: set[tuple[str, str]] = set()
    reads = {"chat": 0, "other": 0}

    def check_files() -> dict[str, dict[str, Any] | None]:
        """Read both plans' files; once an answer is on disk it must stay there."""
        states = {"chat": checked_state(checkout, "chat", chat_ids),
                  "other": checked_state(checkout, "other", other_ids)}  # fmt: skip
        for plan, state in states.items():
            checked_md(checkout, plan)
            if state is None:
                continue
            reads[plan] += 1
            for (p, t), text in answers.items():
                if p != plan:
                    continue
                given = [q["answer"] for q in task_map(state)[t]["questions"] if q["answer"]]
                if (p, t) in seen_answered:
                    assert given == [text], f"answer to {p}:{t} lost: {given}"
                elif given:
                    assert given == [text]
                    seen_answered.add((p, t))
        return states

    def asked(plan: str, task: str) -> bool:
        state = check_files()[plan]
        return state is not None and task_map(state)[task]["status"] == "QUESTION"

    run = checkout.start()
    status = StatusLoop(checkout)
    try:
        for plan, task in answers:
            wait_until(lambda p=plan, t=task: asked(p, t), run, f"{plan}:{task} asked")
        status.start()
        for (plan, task), text in answers.items():
            check_files()
            given = checkout.doit("answer", f"{plan}:{task}", text)
            assert given.returncode == 0, given.stderr
            assert f"{plan}:{task}: answered" in given.stdout
        again = checkout.doit("answer", "chat:q1", "MySQL")
        assert again.returncode == 0 and "replacing the earlier answer" in again.stdout
        answers[("chat", "q1")] = "MySQL"  # an answer not yet used is replaced, never lost
        # Let the run write many more times (progress, 4 a second) over the answered files.
        after: set[str] = set()

        def run_rewrote() -> bool:
            state = check_files()["chat"]
            assert state is not None
            after.add(state["updatedAt"])
            return len(after) >= 6 and len(status.results) >= 3

        wait_until(run_rewrote, run, "more writes and status calls")
        assert seen_answered == set(answers)
    finally:
        Path(gate).touch()
    while run.poll() is None:
        check_files()
        time.sleep(0.01)
    status.stop.set()
    status.join(timeout=60)
    code, out, err = finish(run)
    check_files()
    assert seen_answered == set(answers)
    assert reads["chat"] > 20 and reads["other"] > 20

    for result in status.results:
        assert result.returncode == 0, result.stderr
        for plan, ids in (("chat", chat_ids), ("other", other_ids)):
            head, rows, _ = status_rows(result.stdout, plan)
            assert head.startswith(f"{plan}: ") and list(rows) == ids
    final = {p: checked_state(checkout, p, ids) for p, ids in
             (("chat", chat_ids), ("other", other_ids))}  # fmt: skip
    for (plan, task), text in answers.items():
        state = final[plan]
        assert state is not None
        (question,) = task_map(state)[task]["questions"]
        assert question["answer"] == text and ISO.fullmatch(question["answeredAt"])
        assert f"  - Answer: {text}" in read_md(checkout, plan)
    chat = final["chat"]
    assert chat is not None
    for task in ("c1", "c2", "c3"):
        record = task_map(chat)[task]
        assert (record["status"], record["summary"]) == ("DONE", "chatted"), out + err
    log = (orch(checkout, "chat") / "logs" / "c1.1.log").read_text()
    assert log.count("[PROGRESS:") > 50  # the run really was chatty while all this happened
    assert code != 0  # two tasks of this run wait for their next run


# --- doit status --------------------------------------------------------------------------


def test_status_during_and_after_a_run_agrees_with_state_and_stamps(checkout: Checkout) -> None:
    gate = str(checkout.root / "release-slow")
    ids = ["ok", "ask", "bad", "dep", "flaky", "slow", "after"]
    project_plan(checkout, "st", [
        {"id": "ok"}, {"id": "ask"}, {"id": "bad"}, {"id": "dep", "dependsOn": ["bad"]},
        {"id": "flaky"}, {"id": "slow"}, {"id": "after", "project": "slow", "dependsOn": ["slow"]},
    ])  # fmt: skip
    checkout.scenario({
        "ok": [[{"done": "all good"}]],
        "ask": [[{"question": "Which database?"}]],
        "bad": [[{"error": "disk full"}]],
        "flaky": [[{"exit": 3}], [{"progress": [80, "again"]}, {"done": "second time lucky"}]],
        "slow": [[{"progress": [40, "halfway there"]}, {"wait_file": gate},
                  {"done": "slow is done"}]],
    })  # fmt: skip
    run = checkout.start()

    def settled() -> bool:
        state = checked_state(checkout, "st", ids)
        if state is None:
            return False
        got = {t: r["status"] for t, r in task_map(state).items()}
        return got == {"ok": "DONE", "ask": "QUESTION", "bad": "ERROR", "dep": "SKIPPED",
                       "flaky": "DONE", "slow": "IN_PROGRESS", "after": "PENDING"} and \
            task_map(state)["slow"]["percent"] == 40  # fmt: skip

    try:
        wait_until(settled, run, "every task but `slow` settled")
        during = checkout.doit("status")
        state = checked_state(checkout, "st", ids)  # nothing moves while `slow` is held
    finally:
        Path(gate).touch()
    assert during.returncode == 0, during.stderr
    assert state is not None
    head, rows, steps = status_rows(during.stdout, "st")
    assert head == "st: in_progress, 2/7 done — st plan"
    expected_last = {
        "ok": "all good", "ask": "? Which database?", "bad": "disk full",
        "dep": "skipped: bad failed", "flaky": "second time lucky", "slow": "halfway there",
        "after": "blocked by slow",
    }  # fmt: skip
    assert_rows_agree(checkout, rows, state, expected_last)
    assert rows["slow"]["STATE"] == "IN_PROGRESS 40%" and rows["flaky"]["ATTEMPT"] == "2"
    assert steps == [
        'st:ask waits for an answer: doit answer st:ask "<your answer>"',
        "st:bad failed: fix the cause and re-run `doit` (`doit forget st:bad` resets it)",
        "st:dep skipped: bad failed",
    ]

    code, _, _ = finish(run)
    assert code != 0
    after = checkout.doit("status", "st")
    state = checked_state(checkout, "st", ids)
    assert after.returncode == 0 and state is not None
    head, rows, steps = status_rows(after.stdout, "st")
    assert head == "st: failed, 4/7 done — st plan"
    expected_last.update(slow="slow is done", after="did after")
    assert_rows_agree(checkout, rows, state, expected_last)
    assert len(steps) == 3 and "doit answer st:ask" in steps[0] and "doit forget st:bad" in steps[1]

    # The step status suggests: forget resets the failed task, in state.json and in status.
    assert checkout.doit("forget", "st:bad").returncode == 0
    state = checked_state(checkout, "st", ids)
    assert state is not None and task_map(state)["bad"]["status"] == "PENDING"
    head, rows, steps = status_rows(checkout.doit("status", "st").stdout, "st")
    assert head == "st: waiting, 4/7 done — st plan"
    assert (rows["bad"]["STATE"], rows["bad"]["LAST"]) == (
        "PENDING", "would run: no completion stamp")  # fmt: skip
    assert steps == [
        'st:ask waits for an answer: doit answer st:ask "<your answer>"',
        "st:bad would run again (no completion stamp): run `doit`",
        "st:dep skipped: bad did not finish",
    ]

    # Without state.json, the stamps alone say what is done.
    (orch(checkout, "st") / "state.json").unlink()
    bare = checkout.doit("status", "st")
    head, rows, steps = status_rows(bare.stdout, "st")
    assert head == "st: in_progress, 4/7 done — st plan" and steps == []
    for task in ("ok", "flaky", "slow", "after"):
        stamp = checkout.stamp(task, "st")
        assert stamp is not None
        assert (rows[task]["STATE"], rows[task]["ATTEMPT"], rows[task]["LAST"]) == (
            "DONE", str(stamp["attempt"]), stamp["summary"])  # fmt: skip
    assert {rows[t]["STATE"] for t in ("ask", "bad", "dep")} == {"PENDING"}


def assert_rows_agree(co: Checkout, rows: dict[str, dict[str, str]], state: dict[str, Any],
                      last: dict[str, str]) -> None:  # fmt: skip
    """Every status row matches state.json (state, percent, attempt, last line) and the stamp."""
    assert list(rows) == [t["id"] for t in state["tasks"]]
    for task_id, record in task_map(state).items():
        row = rows[task_id]
        label = record["status"]
        if label == "IN_PROGRESS":
            label += f" {record['percent']}%"
        assert row["STATE"] == label, (task_id, row)
        assert row["ATTEMPT"] == (str(record["attempt"]) if record["attempt"] else "")
        assert row["PROJECT"] == record["project"]
        assert row["LAST"] == last[task_id], (task_id, row)
        if record["status"] in ("DONE", "ERROR"):
            assert row["DURATION"] == format_duration(record["duration"])
        stamp = co.stamp(task_id, "st")
        assert (stamp is not None) == (record["status"] == "DONE"), task_id
        if stamp is not None:
            assert (row["LAST"], row["ATTEMPT"], row["DURATION"]) == (
                stamp["summary"], str(stamp["attempt"]),
                format_duration(stamp["durationSeconds"]))  # fmt: skip


# --- notifications ------------------------------------------------------------------------

SINK = """\
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as out:
    out.write(json.dumps(sys.argv[2:]) + "\\n")
"""


def sink(co: Checkout) -> tuple[dict[str, Any], Path]:
    script, received = co.root / "sink.py", co.root / "received.jsonl"
    script.write_text(SINK)
    argv = [sys.executable, str(script), str(received), "{event}", "{title}", "{message}"]
    return {"command": argv}, received


def received(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


FAILING = {"command": [sys.executable, "-c", "import sys; sys.exit('notifier broke')", "{event}"]}
MISSING = {"command": ["orchlib-no-such-notifier", "{message}"]}


def test_each_notification_reaches_a_real_command_once(checkout: Checkout) -> None:
    target, inbox = sink(checkout)
    project_plan(checkout, "n", [
        {"id": "a", "title": "Set up the app"}, {"id": "e", "title": "Migrate the DB"},
        {"id": "q", "title": "Pick a cache"}, {"id": "z", "dependsOn": ["q"]},
    ], executionOrder=[["a"], ["e", "q"], ["z"]], notify=[target, FAILING, MISSING])  # fmt: skip
    checkout.scenario({
        "e": [[{"error": "disk full"}], [{"done": "migrated"}]],
        "q": [[{"question": "Redis or Memcached?"}], [{"done": "Redis it is"}]],
    })  # fmt: skip

    first = checkout.doit()
    assert first.returncode != 0
    got = received(inbox)
    assert sorted(n[0] for n in got) == ["phase_completed", "plan_failed", "task_error",
                                         "task_question"]  # fmt: skip
    by_event = {n[0]: n for n in got}
    assert all(len(n) == 3 and "{" not in "".join(n) for n in got), got  # all substituted
    assert by_event["phase_completed"][1:] == [
        "n: phase 1 done",
        "Orchestration 'n plan': Phase 1 completed (1/4 tasks done)",
    ]
    assert by_event["task_error"][1:] == [
        "n: task failed",
        "Orchestration error in task 'Migrate the DB' (n:e): disk full",
    ]
    assert by_event["task_question"][1] == "n: question"
    assert "Redis or Memcached?" in by_event["task_question"][2]
    assert 'doit answer n:q "..."' in by_event["task_question"][2]
    # z, skipped behind the question, is no failure: only e is.
    assert by_event["plan_failed"][1:] == [
        "n: failed",
        "Orchestration 'n plan' failed: 1 failed, 0 skipped (1/4 tasks done): e",
    ]

    # e is fixed, the question is still open: nothing to tell (it was told), the console
    # says the task still waits, and z skipped behind it is no plan_failed either.
    second = checkout.doit()
    assert checkout.stamp("e", "n") is not None
    assert received(inbox)[4:] == []
    assert 'n:q  still waiting for an answer: Redis or Memcached? — doit answer n:q "..."' \
        in second.stdout  # fmt: skip
    assert "n:z  skipped because q waits for an answer" in second.stdout

    assert checkout.doit("answer", "n:q", "Redis").returncode == 0
    third = checkout.doit()
    assert third.returncode == 0, third.stdout + third.stderr
    new = received(inbox)[4:]
    assert [n[:2] for n in new] == [["phase_completed", "n: phase 2 done"],
                                    ["phase_completed", "n: phase 3 done"],
                                    ["plan_completed", "n: completed"]]  # fmt: skip
    assert new[2][2] == "Orchestration 'n plan' completed successfully! All 4 tasks done."

    # The broken targets got the same seven events; each failure is one line in notify.log.
    log = (orch(checkout, "n") / "notify.log").read_text(encoding="utf-8").splitlines()
    assert len(log) == 14, log
    assert sum("exited 1: notifier broke" in line for line in log) == 7
    assert sum("cannot run 'orchlib-no-such-notifier'" in line for line in log) == 7


def test_broken_and_hanging_notifiers_leave_the_run_green_and_fast(checkout: Checkout) -> None:
    target, inbox = sink(checkout)
    marker = f"hang-{os.getpid()}-{checkout.root.name}"
    hanging = {"command": [sys.executable, "-c", "import time; time.sleep(60)", marker]}
    project_plan(checkout, "h", [{"id": "a"}, {"id": "b", "dependsOn": ["a"]}],
                 notify=[hanging, FAILING, MISSING, target])  # fmt: skip
    begin = time.monotonic()
    result = checkout.doit()
    took = time.monotonic() - begin
    assert result.returncode == 0, result.stdout + result.stderr
    assert took < 25, f"the run took {took:.1f}s"
    # The hanging target did not hold up the others: every event reached the sink.
    assert [n[0] for n in received(inbox)] == ["phase_completed", "phase_completed",
                                               "plan_completed"]  # fmt: skip
    log = (orch(checkout, "h") / "notify.log").read_text(encoding="utf-8")
    assert log.count("exited 1: notifier broke") == 3
    assert log.count("cannot run 'orchlib-no-such-notifier'") == 3
    hung = [line for line in log.splitlines() if f"{sys.executable!r}" in line
            and ("killed" in line or "not sent" in line)]  # fmt: skip
    assert hung, log
    assert not [p for p in Path("/proc").glob("[0-9]*") if _cmdline_has(p, marker)]


def _cmdline_has(proc: Path, marker: str) -> bool:
    try:
        return marker.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False


# --- the live console ---------------------------------------------------------------------


def test_console_prints_one_readable_line_per_event(checkout: Checkout) -> None:
    g1, g2 = str(checkout.root / "gate1"), str(checkout.root / "gate2")
    project_plan(checkout, "con", [
        {"id": "one"}, {"id": "two"}, {"id": "bad"}, {"id": "ask"},
        {"id": "dep", "dependsOn": ["bad"]},
    ])  # fmt: skip
    checkout.scenario({
        # one and two wait on each other: both are certainly running at the same time.
        "one": [[{"progress": [10, "one: step 1"]}, {"write": [g1, "x"]}, {"wait_file": g2},
                 {"progress": [90, "one: step 2"]}, {"done": "one finished"}]],
        "two": [[{"wait_file": g1}, {"progress": [30, "two: step 1"]}, {"write": [g2, "x"]},
                 {"sleep": 1.1}, {"done": "two finished"}]],
        "bad": [[{"error": "disk full"}]],
        "ask": [[{"question": "Which database?"}]],
    })  # fmt: skip
    result = checkout.doit()
    assert result.returncode != 0
    assert result.stderr == ""
    events, summary = console_lines(result.stdout)
    rec = {r["task"]: r for r in checkout.records()}
    for task in ("one", "two", "bad", "ask"):
        started = [t for t in texts(events, f"con:{task}") if t.startswith("started")]
        assert started == [f"started attempt 1 — {rec[task]['terminal_id']} "
                           f"(pid {rec[task]['pid']})"]  # fmt: skip
    one = [t.strip() for t in texts(events, "con:one")[1:]]
    assert one[:2] == ["10% one: step 1", "90% one: step 2"] and len(one) == 3
    assert re.fullmatch(r"DONE in \d+s: one finished", one[2])
    two = [t.strip() for t in texts(events, "con:two")[1:]]
    assert two[0] == "30% two: step 1" and len(two) == 2
    assert re.fullmatch(r"DONE in [1-9]\d*s: two finished", two[1])  # it slept 1.1 s
    assert texts(events, "con:bad")[1:] == ["ERROR (attempt 1): disk full"]
    assert texts(events, "con:ask")[1:] == ['QUESTION: Which database? — doit answer con:ask "..."']
    assert texts(events, "con:dep") == ["skipped because bad failed"]
    assert texts(events, "con") == ["run started: 5 tasks", "run finished"]
    # Both in flight at once, each line still whole and labelled.
    start = {t: first(events, f"con:{t}", "started") for t in ("one", "two")}
    done = {t: first(events, f"con:{t}", "DONE") for t in ("one", "two")}
    assert start["one"] < done["two"] and start["two"] < done["one"]
    assert re.fullmatch(r"orchlib: 2 done, 1 failed, 1 waiting, 1 skipped in \d+s", summary[0])
    assert summary[1:] == [
        "  con:bad failed: disk full — fix the cause and re-run `doit`",
        '  con:ask asks: Which database? — doit answer con:ask "..."',
        "  con:dep skipped: bad failed — it runs once that is resolved",
    ]
