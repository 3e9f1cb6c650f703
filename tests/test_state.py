"""StateStore, answer(), orchestration.md and `doit status`: events in, real files out."""

from __future__ import annotations

import io
import json
import pickle
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

import orchlib.state.files as statefiles
import orchlib.state.store as state_mod
from orchlib.errors import ConfigError
from orchlib.events import (
    AttemptRan,
    Event,
    RunFinished,
    RunStarted,
    TaskDone,
    TaskFailed,
    TaskProgress,
    TaskSkipped,
    TaskStarted,
    TaskUpToDate,
    TaskWaiting,
)
from orchlib.fsutil import atomic_write, read_json
from orchlib.plan import Plan, Project, Task
from orchlib.state import (
    PlanState,
    PlanStatus,
    Question,
    StateStore,
    Status,
    TaskRecord,
    answer,
    forget,
    from_json,
    has_open_question,
    load,
    qa_history,
    render_status,
    stamps,
    to_json,
)
from orchlib.state.escape import md_text, mermaid_text, yaml_scalar
from orchlib.state.stamps import Stamp, StampError, shape_problem

P = "orch-abc123"
REPO = Path(__file__).resolve().parent.parent


def at(minute: int, second: int = 0) -> str:
    return f"2024-01-15T10:{minute:02d}:{second:02d}.000000Z"


def make_plan(root: Path, **changes: Any) -> Plan:
    projects = {
        "ecommerce-frontend": Project("ecommerce-frontend", "./ecommerce-frontend", root / "fe"),
        "ecommerce-backend": Project("ecommerce-backend", "./ecommerce-backend", root / "be"),
    }
    rows = [
        ("t1", "ecommerce-frontend", "Initialize React project", ()),
        ("t2", "ecommerce-backend", "Initialize backend project", ()),
        ("t3", "ecommerce-backend", "Implement authentication API", ("t2",)),
        ("t4", "ecommerce-frontend", "Build auth UI", ("t1", "t3")),
    ]
    tasks = {
        tid: Task(tid, proj, title, depends_on=deps, index=i)
        for i, (tid, proj, title, deps) in enumerate(rows)
    }
    plan = Plan(
        P,
        root / "plans" / "shop.yaml",
        "E-commerce platform with React frontend and Node.js backend",
        "2024-01-15T10:00:00Z",
        projects,
        tasks,
        (("t1", "t2"), ("t3",), ("t4",)),
    )
    return replace(plan, **changes)


def wide_plan(root: Path, count: int, prefix: str = "p") -> Plan:
    """A plan of `count` independent tasks in one project and one phase."""
    project = Project("proj", "./proj", root / "proj")
    tasks = {
        f"{prefix}{i}": Task(f"{prefix}{i}", "proj", f"task {i}", index=i) for i in range(count)
    }
    return Plan(
        P,
        root / "plans" / "wide.yaml",
        "wide",
        "2024-01-15T10:00:00Z",
        {"proj": project},
        tasks,
        (tuple(tasks),),
    )


def folder_of(root: Path) -> Path:
    return root / ".orch" / P


def started(task: str, attempt: int = 1, term: str = "", minute: int = 1, **kw: Any) -> TaskStarted:
    log = kw.pop("log", f"/nowhere/{task}.{attempt}.log")
    return TaskStarted(
        P,
        task,
        attempt,
        term or f"term-{task}",
        {"executor": "local", "pid": 4242, "pgid": 4242, "start": "12345"},
        "local",
        log,
        f"/nowhere/{task}.md",
        at=at(minute),
        **kw,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(make_plan(tmp_path), folder_of(tmp_path), [tmp_path / "templates"])
    yield s
    s.close()


def feed(s: StateStore, *events: Event) -> None:
    for event in events:
        s.handle(event)
    s.flush()


def markdown(root: Path) -> str:
    return (folder_of(root) / "orchestration.md").read_text(encoding="utf-8")


def task_json(root: Path, task_id: str) -> dict[str, Any]:
    """The task's record on disk, as readers see it: state.json with its journal folded in."""
    data = read_json(folder_of(root) / "state.json")
    assert data is not None
    state = load(folder_of(root))
    assert state is not None
    found: dict[str, Any] = to_json(state)["tasks"]  # type: ignore[assignment]
    return next(t for t in found if t["id"] == task_id)


def seed_events(root: Path) -> list[Event]:
    log = str(folder_of(root) / "logs" / "t3.1.log")
    return [
        RunStarted(P, task_ids=("t1", "t2", "t3", "t4"), pid=99, at=at(0)),
        started("t1", term="terminal-aaa", minute=1),
        started("t2", term="terminal-bbb", minute=1),
        TaskDone(
            P,
            "t1",
            "Vite + React + TypeScript configured, TailwindCSS installed",
            1,
            "terminal-aaa",
            240.0,
            at=at(5),
        ),
        TaskDone(
            P,
            "t2",
            "Express + TypeScript + PostgreSQL configured",
            1,
            "terminal-bbb",
            300.0,
            at=at(6),
        ),
        started("t3", term="terminal-bbb", minute=7, log=log),
        TaskProgress(P, "t3", 30, "Database schema created", at=at(8)),
        TaskProgress(P, "t3", 65, "Implementing JWT refresh token logic", at=at(9)),
    ]


SEED_MARKDOWN = """\
---
type: orchestration-state
planId: orch-abc123
created: 2024-01-15T10:00:00Z
status: in_progress
---

## Plan Summary
E-commerce platform with React frontend and Node.js backend

## Projects
| Name | Path | Terminal ID | Status |
|------|------|-------------|--------|
| ecommerce-frontend | ./ecommerce-frontend | terminal-aaa | idle |
| ecommerce-backend | ./ecommerce-backend | terminal-bbb | active |

## Execution State

### Phase 1 (completed)
- **t1** [DONE]: Initialize React project — terminal-aaa
  - Completed: 2024-01-15T10:05:00Z
  - Output: Vite + React + TypeScript configured, TailwindCSS installed
- **t2** [DONE]: Initialize backend project — terminal-bbb
  - Completed: 2024-01-15T10:06:00Z
  - Output: Express + TypeScript + PostgreSQL configured

### Phase 2 (in_progress)
- **t3** [IN_PROGRESS 65%]: Implement authentication API — terminal-bbb
  - Started: 2024-01-15T10:07:00Z
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


# --- orchestration.md layout -------------------------------------------------------------


def test_seed_run_renders_the_reference_layout(store: StateStore, tmp_path: Path) -> None:
    feed(store, *seed_events(tmp_path))
    assert markdown(tmp_path) == SEED_MARKDOWN


def test_fresh_store_writes_every_task_pending(store: StateStore, tmp_path: Path) -> None:
    store.flush()
    text = markdown(tmp_path)
    assert "status: pending" in text
    assert "- **t1** [PENDING]: Initialize React project\n" in text
    assert "- **t4** [PENDING]: Build auth UI\n  - Blocked by: t1, t3\n" in text
    assert "| ecommerce-frontend | ./ecommerce-frontend | — | idle |" in text


def test_front_matter_parses_back_to_the_plan_values(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, created_at="yes: no # not a comment", plan_id=P)
    with StateStore(plan, folder_of(tmp_path), []) as s:
        s.flush()
    front = markdown(tmp_path).split("---\n")[1]
    data = YAML(typ="safe").load(front)
    assert data == {
        "type": "orchestration-state",
        "planId": P,
        "created": "yes: no # not a comment",
        "status": "pending",
    }


def test_error_question_answer_and_skip_bullets(store: StateStore, tmp_path: Path) -> None:
    feed(
        store,
        RunStarted(P, task_ids=("t1", "t2", "t3", "t4"), at=at(0)),
        started("t1", minute=1),
        TaskFailed(P, "t1", "npm ci failed", 1, final=False, at=at(2)),
        started("t1", attempt=2, minute=3),
        TaskFailed(P, "t1", "npm ci failed again", 2, final=True, at=at(4)),
        started("t2", minute=1),
        TaskWaiting(P, "t2", "Postgres or MySQL?", 1, "term-t2", at=at(5)),
        TaskSkipped(P, "t4", ("t1",), at=at(6)),
    )
    text = markdown(tmp_path)
    assert (
        "- **t1** [ERROR]: Initialize React project — term-t1\n"
        "  - Started: 2024-01-15T10:03:00Z\n  - Error: npm ci failed again\n"
        "  - Attempt: 2\n  - Log: /nowhere/t1.2.log\n"
    ) in text
    assert (
        "- **t2** [QUESTION]: Initialize backend project — term-t2\n"
        "  - Started: 2024-01-15T10:01:00Z\n  - Question: Postgres or MySQL?\n"
    ) in text
    assert "- **t4** [SKIPPED]: Build auth UI\n  - Skipped because: t1 failed\n" in text
    assert "### Phase 1 (failed)" in text
    assert 'n0["t1: Initialize React project"]:::error' in text
    assert 'n1["t2: Initialize backend project"]:::question' in text
    assert 'n3["t4: Build auth UI"]:::skipped' in text
    answer(folder_of(tmp_path), make_plan(tmp_path), "t2", "Postgres", [])
    assert "  - Question: Postgres or MySQL?\n  - Answer: Postgres\n" in markdown(tmp_path)


def test_retrying_attempt_stays_in_progress(store: StateStore, tmp_path: Path) -> None:
    feed(store, started("t1"), TaskFailed(P, "t1", "terminal closed", 1, final=False, at=at(2)))
    assert "[IN_PROGRESS 0%]" in markdown(tmp_path)
    assert "  - Last update: attempt 1 failed: terminal closed, retrying\n" in markdown(tmp_path)
    assert task_json(tmp_path, "t1")["status"] == "IN_PROGRESS"


def test_interrupted_task_says_how_to_resume(store: StateStore, tmp_path: Path) -> None:
    feed(
        store,
        started("t1", minute=1),
        AttemptRan(P, "t1", 1, 120.0),  # its process ran 2 minutes
        TaskFailed(P, "t1", "SIGINT", 1, final=True, interrupted=True, at=at(3)),
        started("t2", attempt=3, minute=1),
        TaskFailed(P, "t2", "still running", 3, final=False, at=at(2)),
        TaskFailed(P, "t2", "interrupted before it started", 0, final=True, interrupted=True),
    )
    t1, t2 = task_json(tmp_path, "t1"), task_json(tmp_path, "t2")
    assert (t1["error"], t1["duration"]) == ("interrupted (SIGINT); re-run doit to resume", 120.0)
    assert t2["error"] == "interrupted before it started; re-run doit to resume"
    assert (t2["attempt"], t2["duration"]) == (3, None)


def test_plan_text_cannot_break_markdown_or_mermaid(tmp_path: Path) -> None:
    evil = 'x\n## Injected | cell [link](http://e) <b>"q"</b> `code` ```'
    plan = make_plan(tmp_path, summary=evil)
    tasks = dict(plan.tasks)
    tasks["t1"] = replace(tasks["t1"], title=evil)
    with StateStore(replace(plan, tasks=tasks), folder_of(tmp_path), []) as s:
        feed(s, started("t1"), TaskProgress(P, "t1", 5, evil))
    text = markdown(tmp_path)
    assert "\n## Injected" not in text and "<b>" not in text and "```\n" not in text[:-4]
    assert text.count("```") == 2
    assert "x ## Injected \\| cell \\[link\\](http://e) &lt;b>" in text
    label = (
        "x #35;#35; Injected | cell [link](http://e) #lt;b#gt;#quot;q#quot;#lt;/b#gt; #96;code#96;"
    )
    assert f'  n0["t1: {label} #96;#96;#96;"]:::in_progress\n' in text
    assert text.splitlines()[0] == "---"


# --- state.json -------------------------------------------------------------------------


def test_state_json_records_every_field(store: StateStore, tmp_path: Path) -> None:
    feed(store, *seed_events(tmp_path))
    data = read_json(folder_of(tmp_path) / "state.json")
    assert data is not None
    assert [t["id"] for t in data["tasks"]] == ["t1", "t2", "t3", "t4"]
    assert (data["planId"], data["status"], data["run"]["pid"]) == (P, "in_progress", 99)
    assert data["phases"] == [["t1", "t2"], ["t3"], ["t4"]]
    t3 = task_json(tmp_path, "t3")
    assert t3 | {"log": ""} == {
        "id": "t3",
        "title": "Implement authentication API",
        "project": "ecommerce-backend",
        "phase": 2,
        "dependsOn": ["t2"],
        "status": "IN_PROGRESS",
        "percent": 65,
        "lastUpdate": "Implementing JWT refresh token logic",
        "startedAt": at(7),
        "finishedAt": "",
        "duration": None,
        "worked": 0.0,
        "summary": "",
        "error": "",
        "skippedBecause": [],
        "attempt": 1,
        "terminalId": "terminal-bbb",
        "pid": 4242,
        "pgid": 4242,
        "pidStart": "12345",
        "host": "local",
        "ref": {"executor": "local", "pid": 4242, "pgid": 4242, "start": "12345"},
        "log": "",
        "promptFile": "/nowhere/t3.md",
        "adopted": False,
        "questions": [],
        "pausedUntil": "",
        "denied": [],
        "continuesIn": "",
        "rejected": "",
        "pendingReason": "",
        "agent": "",
        "spend": {},
        "budget": {},
        "held": False,
        "interrupted": False,
    }
    assert data["projects"][1] == {
        "name": "ecommerce-backend",
        "path": "./ecommerce-backend",
        "terminalId": "terminal-bbb",
        "status": "active",
        "spend": {},
        "budget": {},
    }


def test_task_started_is_on_disk_when_sync_returns(
    store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.flush()
    monkeypatch.setattr(state_mod, "COALESCE_SECONDS", 3600.0)  # the writer thread waits
    store.handle(TaskUpToDate(P, "t2", summary="old"))
    assert task_json(tmp_path, "t2")["status"] == "PENDING"  # not written yet: coalesced
    store.handle(started("t1", term="term-x"))
    store.sync()
    record = task_json(tmp_path, "t1")
    assert (record["status"], record["pid"], record["terminalId"]) == (
        "IN_PROGRESS",
        4242,
        "term-x",
    )


def test_changes_reach_disk_without_flush(store: StateStore, tmp_path: Path) -> None:
    store.handle(TaskUpToDate(P, "t1", summary="from an earlier run"))
    deadline = time.monotonic() + 5
    while "Output: from an earlier run" not in _read_or_empty(tmp_path):
        assert time.monotonic() < deadline, "the background writer never wrote"
        time.sleep(0.01)


def _read_or_empty(root: Path) -> str:
    try:
        return markdown(root)
    except FileNotFoundError:
        return ""


def test_ten_thousand_progress_lines_are_cheap_and_coalesced(
    store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed(store, started("t1"))
    writes: list[Path] = []
    real = statefiles.atomic_write

    def counting(p: Path, d: bytes, **kw: bool) -> None:
        writes.append(p)
        real(p, d, **kw)

    monkeypatch.setattr(statefiles, "atomic_write", counting)
    begin = time.perf_counter()
    for i in range(10_000):
        store.handle(TaskProgress(P, "t1", i % 100, f"step {i}"))
    took = time.perf_counter() - begin
    assert took < 5.0  # ~0.2 s alone; generous for loaded CI (a write per event takes minutes)
    allowed = 2 * (int(took / state_mod.PROGRESS_INTERVAL) + 2)  # state.json + orchestration.md
    assert len(writes) <= allowed
    store.flush()
    assert task_json(tmp_path, "t1")["lastUpdate"] == "step 9999"


def test_rendering_happens_per_write_not_per_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = wide_plan(tmp_path, 1000)
    with StateStore(plan, folder_of(tmp_path), []) as s:
        renders: list[int] = []
        real = s._renderer.render
        monkeypatch.setattr(s._renderer, "render", lambda st: (renders.append(1), real(st))[1])
        for tid in plan.tasks:
            s.handle(TaskUpToDate(P, tid, summary=f"done {tid}"))
        assert len(renders) <= 5
    assert markdown(tmp_path).count("[DONE]") == 1000


def test_reload_keeps_known_tasks_drops_gone_ones_adds_new(tmp_path: Path) -> None:
    with StateStore(make_plan(tmp_path), folder_of(tmp_path), []) as s:
        feed(s, TaskDone(P, "t1", "built", 1, "term-a", 5.0), started("t3"))
    plan = make_plan(tmp_path)
    tasks = {k: v for k, v in plan.tasks.items() if k != "t4"}
    tasks["t1"] = replace(tasks["t1"], title="Initialize Vite project")
    tasks["t5"] = Task("t5", "ecommerce-backend", "Add rate limiting", index=4)
    with StateStore(
        replace(plan, tasks=tasks, phases=(("t1", "t2"), ("t3", "t5"))), folder_of(tmp_path), []
    ) as s:
        snap = s.snapshot()
    assert list(snap.tasks) == ["t1", "t2", "t3", "t5"]
    assert (snap.tasks["t1"].status, snap.tasks["t1"].title) == (
        Status.DONE,
        "Initialize Vite project",
    )
    assert snap.tasks["t3"].pid == 4242 and snap.tasks["t5"].status is Status.PENDING
    assert snap.tasks["t5"].phase == 2


def test_run_started_resets_only_what_may_be_dispatched(store: StateStore) -> None:
    store.handle(TaskDone(P, "t1", "ok", 1, "term", 1.0))
    store.handle(started("t2"))
    store.handle(TaskFailed(P, "t3", "boom", 1, final=True))
    store.handle(TaskWaiting(P, "t4", "which?", 1, "term"))
    store.handle(RunStarted(P, task_ids=("t1", "t2", "t3", "t4"), pid=7))
    snap = store.snapshot()
    statuses = [t.status for t in snap.tasks.values()]
    assert statuses == [Status.DONE, Status.IN_PROGRESS, Status.PENDING, Status.QUESTION]
    assert snap.tasks["t2"].pid == 4242 and snap.tasks["t3"].error == ""
    assert (snap.status, snap.run.pid) == (PlanStatus.IN_PROGRESS, 7)


def test_adopted_attempt_keeps_its_progress(store: StateStore) -> None:
    store.handle(started("t1", minute=1))
    store.handle(TaskProgress(P, "t1", 40, "half way"))
    store.handle(started("t1", minute=9, adopted=True))
    t1 = store.snapshot().tasks["t1"]
    assert (t1.percent, t1.last_update, t1.started_at, t1.adopted) == (40, "half way", at(1), True)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([TaskUpToDate(P, t) for t in ("t1", "t2", "t3", "t4")], "completed"),
        ([TaskDone(P, "t1", "", 1, "x", 1.0), TaskWaiting(P, "t2", "?", 1, "x")], "waiting"),
        ([TaskWaiting(P, "t2", "?", 1, "x"), TaskFailed(P, "t1", "e", 1, final=True)], "failed"),
        ([TaskSkipped(P, "t4", ("t3",))], "failed"),
        ([TaskWaiting(P, "t3", "?", 1, "x"), TaskSkipped(P, "t4", ("t3",))], "waiting"),
        ([TaskDone(P, "t1", "", 1, "x", 1.0)], "in_progress"),
        ([], "pending"),
    ],
)
def test_run_finished_computes_plan_status(
    store: StateStore, tmp_path: Path, events: list[Event], expected: str
) -> None:
    for event in [RunStarted(P, task_ids=("t1", "t2", "t3", "t4")), *events]:
        store.handle(event)
    store.flush()
    assert "status: in_progress\n" in markdown(tmp_path)
    store.handle(RunFinished(P))
    assert f"status: {expected}\n" in markdown(tmp_path)
    assert read_json(folder_of(tmp_path) / "state.json")["status"] == expected  # type: ignore[index]


def test_events_of_other_plans_are_ignored(store: StateStore) -> None:
    store.handle(TaskDone("other-plan", "t1", "x", 1, "t", 1.0))
    assert store.snapshot().tasks["t1"].status is Status.PENDING


# --- answers ----------------------------------------------------------------------------


def test_answer_records_and_feeds_the_next_prompt(store: StateStore, tmp_path: Path) -> None:
    feed(store, TaskWaiting(P, "t3", "JWT or cookies?", 1, "term-3"))
    plan = make_plan(tmp_path)
    message = answer(folder_of(tmp_path), plan, f"{P}:t3", "JWT", [])
    assert "JWT or cookies?" in message
    loaded = load(folder_of(tmp_path))
    assert loaded is not None
    assert qa_history(loaded, "t3") == [("JWT or cookies?", "JWT")]
    assert not has_open_question(loaded, "t3")
    assert loaded.tasks["t3"].questions[0]["answer"] == "JWT"  # dict-style read works too


@pytest.mark.parametrize(
    ("task", "text", "message"),
    [
        ("t1", "yes", "has no open question (it is PENDING)"),
        ("t9", "yes", "unknown task"),
        ("t3", "  ", "the answer is empty"),
    ],
)
def test_answer_refuses_with_one_clear_line(
    store: StateStore, tmp_path: Path, task: str, text: str, message: str
) -> None:
    feed(store, TaskWaiting(P, "t3", "?", 1, "term"))
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        answer(folder_of(tmp_path), make_plan(tmp_path), task, text, [])
    assert "\n" not in str(info.value)


def test_answer_before_any_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has not run yet"):
        answer(folder_of(tmp_path), make_plan(tmp_path), "t1", "x", [])


def test_running_store_keeps_an_answer_written_meanwhile(store: StateStore, tmp_path: Path) -> None:
    feed(store, started("t1"), TaskWaiting(P, "t3", "JWT or cookies?", 1, "term-3"))
    answer(folder_of(tmp_path), make_plan(tmp_path), "t3", "cookies", [])
    feed(store, TaskProgress(P, "t1", 50, "half"))  # the store writes again
    assert task_json(tmp_path, "t3")["questions"][0]["answer"] == "cookies"
    assert store.snapshot().tasks["t3"].questions[0].answer == "cookies"
    assert "  - Answer: cookies\n" in markdown(tmp_path)


def test_forget_drops_the_open_question_and_resets(store: StateStore, tmp_path: Path) -> None:
    feed(store, started("t3"), TaskWaiting(P, "t3", "old?", 1, "x"))
    answer(folder_of(tmp_path), make_plan(tmp_path), "t3", "yes", [])
    feed(store, started("t3", attempt=2), TaskWaiting(P, "t3", "new?", 2, "x"))
    forget(folder_of(tmp_path), make_plan(tmp_path), [f"{P}:t3"], [])
    loaded = load(folder_of(tmp_path))
    assert loaded is not None and not has_open_question(loaded, "t3")
    t3 = loaded.tasks["t3"]
    assert (t3.status, t3.attempt, t3.pid, qa_history(loaded, "t3")) == (
        Status.PENDING,
        2,
        None,
        [("old?", "yes")],
    )
    assert "- **t3** [PENDING]: Implement authentication API\n" in markdown(tmp_path)
    with pytest.raises(ConfigError, match="unknown task 'orch-abc123:t9'"):
        forget(folder_of(tmp_path), make_plan(tmp_path), ["t9"], [])


ANSWER_SCRIPT = """
import pickle, sys
from pathlib import Path
from orchlib.state import answer
plan = pickle.loads(Path(sys.argv[1]).read_bytes())
for i in range(int(sys.argv[3])):
    answer(Path(sys.argv[2]), plan, f"q{i}", f"answer {i}", [])
"""


def test_concurrent_answers_from_another_process_are_never_lost(tmp_path: Path) -> None:
    count = 15
    plan = wide_plan(tmp_path, count, "q")
    plan = replace(
        plan,
        tasks={**plan.tasks, **wide_plan(tmp_path, 5, "p").tasks},
        phases=(tuple(plan.tasks), tuple(f"p{i}" for i in range(5))),
    )
    (tmp_path / "plan.pkl").write_bytes(pickle.dumps(plan))
    folder = folder_of(tmp_path)
    with StateStore(plan, folder, []) as s:
        feed(s, *(TaskWaiting(P, f"q{i}", f"question {i}?", 1, "t") for i in range(count)))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                ANSWER_SCRIPT,
                str(tmp_path / "plan.pkl"),
                str(folder),
                str(count),
            ],
            cwd=REPO,
        )
        stop = threading.Event()
        pump = threading.Thread(target=_pump_events, args=(s, stop))
        pump.start()
        while proc.poll() is None:
            _assert_files_whole(folder)
        stop.set()
        pump.join()
        assert proc.returncode == 0
    final = load(folder)
    assert final is not None
    assert [qa_history(final, f"q{i}") for i in range(count)] == [
        [(f"question {i}?", f"answer {i}")] for i in range(count)
    ]
    assert all(f"  - Answer: answer {i}\n" in markdown(tmp_path) for i in range(count))


def _pump_events(s: StateStore, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        s.handle(TaskProgress(P, f"p{n % 5}", n % 100, f"line {n}"))
        if n % 50 == 0:
            s.handle(started(f"p{n % 5}", attempt=n))
        time.sleep(0.0005)


def _assert_files_whole(folder: Path) -> None:
    if (folder / "state.json").exists():
        assert read_json(folder / "state.json") is not None
    text = (folder / "orchestration.md").read_text(encoding="utf-8")
    assert text.startswith("---\ntype: orchestration-state\n") and text.endswith("```\n")


# --- templates --------------------------------------------------------------------------


def test_checkout_template_overrides_the_packaged_one(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "orchestration.md.j2").write_text(
        "custom {{ plan_id }}: {% for p in phases %}{{ p.status }} {% endfor %}"
        "{{ state.tasks['t1'].title | md }}\n"
    )
    with StateStore(make_plan(tmp_path), folder_of(tmp_path), [tmp_path / "templates"]) as s:
        s.flush()
    assert (
        markdown(tmp_path)
        == "custom orch-abc123: pending pending pending Initialize React project\n"
    )


def test_broken_checkout_template_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "orchestration.md.j2").write_text("ok\n{% for x in %}\n")
    with pytest.raises(ConfigError, match=r"orchestration\.md\.j2:2: "):
        StateStore(make_plan(tmp_path), folder_of(tmp_path), [tmp_path / "templates"])


# --- doit status ------------------------------------------------------------------------


def test_render_status_rows_and_next_steps(store: StateStore, tmp_path: Path) -> None:
    store.handle(started("t2", minute=1))
    store.handle(TaskProgress(P, "t2", 45, "Implementing auth middleware"))
    store.handle(TaskFailed(P, "t3", "PostgreSQL connection refused\nretry later", 2, final=True))
    store.handle(TaskWaiting(P, "t4", "Next.js or Vite+React?", 1, "term-4"))
    stamp = {
        "taskId": "t1",
        "summary": "Vite app",
        "finishedAt": at(5),
        "attempt": 1,
        "terminalId": "term-1",
        "durationSeconds": 302.0,
    }
    out = render_status(
        make_plan(tmp_path), store.snapshot(), {"t1": Stamp.from_json(stamp)}, width=140
    )
    lines = out.splitlines()
    assert lines[0].startswith(f"{P}: in_progress, 1/4 done — E-commerce")
    assert lines[1].split() == ["TASK", "STATE", "PROJECT", "ATTEMPT", "DURATION", "LOG", "LAST"]
    assert lines[2].split()[:6] == [f"{P}:t1", "DONE", "ecommerce-frontend", "1", "5m02s", "Vite"]
    assert lines[3].split()[:3] == [f"{P}:t2", "IN_PROGRESS", "45%"]
    assert lines[3].endswith("Implementing auth middleware")
    assert lines[4].endswith("PostgreSQL connection refused retry later")
    assert lines[5].endswith("? Next.js or Vite+React?")
    assert lines[6:] == [
        "",
        "next steps:",
        f"  {P}:t3 failed: fix the cause and re-run `doit` (`doit forget {P}:t3` resets it)",
        f'  {P}:t4 waits for an answer: doit answer {P}:t4 "<your answer>"',
    ]
    assert len({line.index("ecommerce") for line in lines[2:6]}) == 1  # aligned columns


def test_render_status_without_state_and_with_skips(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    out = render_status(plan, None, {}, width=80)
    assert f"{P}:t4  PENDING" in out and "blocked by t1, t3" in out and "next steps" not in out
    state = PlanState(
        P,
        tasks={
            "t3": TaskRecord("t3", status=Status.ERROR, error="x" * 500),
            "t4": TaskRecord("t4", status=Status.SKIPPED, skipped_because=("t3",)),
        },
    )
    out = render_status(plan, state, {}, width=100)
    assert all(len(line) <= 100 for line in out.splitlines())
    assert "skipped: t3 failed" in out and "x…" in out
    assert f"  {P}:t4 skipped: t3 failed\n" in out


def test_stamp_older_than_a_failed_rerun_does_not_hide_the_error(tmp_path: Path) -> None:
    record = TaskRecord("t1", status=Status.ERROR, error="bad", started_at=at(30))
    stamp = Stamp("t1", at(5), summary="old")
    out = render_status(make_plan(tmp_path), PlanState(P, tasks={"t1": record}), {"t1": stamp})
    assert f"{P}:t1  ERROR" in out


# --- files and records ------------------------------------------------------------------


def test_atomic_write_and_read_json(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.json"
    atomic_write(target, '{"k": 1}')
    atomic_write(target, b'{"k": 2}')
    assert read_json(target) == {"k": 2}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]  # no temp file left
    for bad in ('{"k": ', "[1, 2]", "\xff\xfe"):
        target.write_text(bad, encoding="latin-1")
        assert read_json(target) is None
    assert read_json(tmp_path / "missing.json") is None


def test_load_of_torn_or_odd_state(tmp_path: Path) -> None:
    folder = folder_of(tmp_path)
    assert load(folder) is None
    atomic_write(folder / "state.json", '{"planId": "orch-abc123", "tasks": [{"id": "t1", "status')
    assert load(folder) is None
    odd = {
        "planId": P,
        "status": 3,
        "tasks": [
            {
                "id": "t1",
                "status": "WEIRD",
                "percent": True,
                "questions": [{"question": "q", "answer": None}],
            },
            "junk",
        ],
    }
    atomic_write(folder / "state.json", json.dumps(odd))
    loaded = load(folder)
    assert loaded is not None and loaded.status is PlanStatus.PENDING
    assert loaded.tasks["t1"] == TaskRecord("t1", questions=(Question("q"),))


records = st.builds(
    TaskRecord,
    id=st.from_regex(r"[A-Za-z0-9_.-]{1,8}", fullmatch=True),
    title=st.text(),
    status=st.sampled_from(Status),
    percent=st.integers(0, 100),
    duration=st.none() | st.floats(0, 1e6),
    skipped_because=st.lists(st.text(max_size=5)).map(tuple),
    pid=st.none() | st.integers(1, 2**22),
    questions=st.lists(st.builds(Question, st.text(), answer=st.none() | st.text())).map(tuple),
)


@given(st.lists(records, max_size=5))
def test_state_json_round_trips(tasks: list[TaskRecord]) -> None:
    state = PlanState(P, "sum", tasks={t.id: t for t in tasks})
    assert from_json(json.loads(json.dumps(to_json(state)))) == state


@given(st.text())
def test_escaped_text_stays_on_one_line(text: str) -> None:
    for escaped in (md_text(text), mermaid_text(text)):
        assert "\n" not in escaped and "\r" not in escaped
    assert "|" not in md_text(text).replace("\\|", "")
    assert '"' not in mermaid_text(text) and "`" not in mermaid_text(text)
    loaded = YAML(typ="safe").load(io.StringIO(f"k: {yaml_scalar(text)}\n"))
    assert loaded == {"k": text}


def test_render_status_colours_the_state_only_when_asked(tmp_path: Path) -> None:
    record = TaskRecord("t1", status=Status.ERROR, error="bad")
    state = PlanState(P, tasks={"t1": record})
    coloured = render_status(make_plan(tmp_path), state, {}, width=120, color=True)
    assert "\x1b[31mERROR" in coloured
    assert "\x1b[" not in render_status(make_plan(tmp_path), state, {}, width=120)


# --- the journal of starts --------------------------------------------------------------------


def test_a_start_is_one_journal_line_not_a_rewrite_of_state_json(
    store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.flush()
    folder = folder_of(tmp_path)
    before = (folder / "state.json").stat()
    monkeypatch.setattr(state_mod, "COALESCE_SECONDS", 3600.0)  # the writer thread waits
    monkeypatch.setattr(state_mod, "REWRITE_BUDGET", -1.0)  # as on a plan too big to rewrite
    store.handle(started("t1", term="term-x"))
    store.handle(started("t2", term="term-y"))
    store.sync()
    after = (folder / "state.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    lines = (folder / "state.journal").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == ["t1", "t2"]
    store.sync()  # nothing new started: nothing appended
    assert len((folder / "state.journal").read_text().splitlines()) == 2
    assert task_json(tmp_path, "t1")["status"] == "IN_PROGRESS"
    assert task_json(tmp_path, "t2")["ref"]["pid"] == 4242
    store.flush()  # state.json now holds them: the journal goes
    assert not (folder / "state.journal").exists()
    assert read_json(folder / "state.json")["tasks"][0]["status"] == "IN_PROGRESS"  # type: ignore[index]


def test_a_start_on_a_plan_cheap_to_rewrite_is_in_state_json_itself(
    store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.flush()
    folder = folder_of(tmp_path)
    monkeypatch.setattr(state_mod, "COALESCE_SECONDS", 3600.0)  # the writer thread waits
    store.handle(started("t1", term="term-x"))
    store.sync()
    assert not (folder / "state.journal").exists()
    rows = read_json(folder / "state.json")["tasks"]  # type: ignore[index]
    t1 = next(row for row in rows if row["id"] == "t1")
    assert t1["status"] == "IN_PROGRESS" and t1["terminalId"] == "term-x"


def test_the_journal_is_folded_in_skipping_a_cut_line_and_keeping_answers(
    store: StateStore, tmp_path: Path
) -> None:
    store.close()
    folder = folder_of(tmp_path)
    answered = replace(
        load(folder).tasks["t2"],  # type: ignore[union-attr]
        questions=(Question("which db?", answer="postgres", answered_at=at(3)),),
    )
    from orchlib.state.files import append_journal, write_state

    write_state(folder, replace(load(folder), tasks={**load(folder).tasks, "t2": answered}), None)  # type: ignore[union-attr, arg-type]
    unanswered = (Question("which db?"),)  # the run's record, from before the answer came
    record = replace(answered, status=Status.IN_PROGRESS, questions=unanswered)
    append_journal(folder, [record])
    with (folder / "state.journal").open("a") as journal:
        journal.write('{"id": "t1", "status": "DO')  # a crash cut the last append
    state = load(folder)
    assert state is not None
    assert state.tasks["t2"].status is Status.IN_PROGRESS
    assert state.tasks["t2"].questions[0].answer == "postgres"
    assert state.tasks["t1"].status is Status.PENDING


# --- the completion stamp record: one JSON form -------------------------------------------

WRITTEN = {  # what Finishing writes, key order included
    "taskId": "t1",
    "planId": P,
    "project": "ecommerce-frontend",
    "title": "Vite app",
    "summary": "Vite app — done",
    "finishedAt": "2026-01-01T00:00:05.000Z",
    "attempt": 2,
    "terminalId": "term-1",
    "specHash": "ab" * 16,
    "durationSeconds": 302.125,
    "agent": "claude",
    "inputs": {"src/a.py": [12, 1700000000000000000, "cd" * 32]},
    "verify": {"exitCode": 0},
    "merge": {"branch": "orch/t1", "commit": "0" * 40},
    "sessionId": "s-1",
    "usage": {"cost_usd": 0.5, "input_tokens": 10},
}


def test_stamp_json_round_trips_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "t1.json"
    text = json.dumps(WRITTEN, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    stamp = stamps.read(path, "t1")
    assert stamp is not None and stamp.attempt == 2 and stamp.usage == WRITTEN["usage"]
    stamps.write(path, stamp)
    assert path.read_text(encoding="utf-8") == text


def test_stamp_keeps_unknown_keys_and_leaves_absent_ones_out() -> None:
    data = {"taskId": "t1", "finishedAt": "x", "fromTheFuture": [1, 2], "planId": 7}
    stamp = Stamp.from_json(data)
    assert stamp.extra == {"fromTheFuture": [1, 2], "planId": 7} and stamp.plan_id is None
    assert stamp.attempt is None and stamp.attempt_number == 0
    again = replace(stamp, spec_hash="new").to_json()
    assert again["fromTheFuture"] == [1, 2] and again["planId"] == 7
    assert "attempt" not in again and "durationSeconds" not in again and "usage" not in again


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([1], "not a JSON object"),
        ({"taskId": "t1"}, "finishedAt is not a time"),
        ({"taskId": "t1", "finishedAt": "x", "summary": 3}, "summary is not text"),
        ({"taskId": "t1", "finishedAt": "x", "attempt": True}, "attempt is not a whole number"),
        ({"taskId": "t1", "finishedAt": "x", "inputs": {"a": [1]}}, "inputs is not a map"),
    ],
)
def test_stamp_of_the_wrong_shape_is_one_clear_error(data: Any, problem: str) -> None:
    with pytest.raises(StampError, match=re.escape(problem)):
        Stamp.from_json(data)
    assert shape_problem(data, "t1") is not None
    assert shape_problem({**WRITTEN, "taskId": "t2"}, "t1") == "taskId is 't2', not 't1'"


def test_elapsed_sums_the_attempts_running_time(store: StateStore, tmp_path: Path) -> None:
    """DESIGN §15: a task's elapsed is its attempts' running time, summed; not wall time."""
    feed(
        store,
        started("t1", minute=1),
        AttemptRan(P, "t1", 1, 30.0),
        TaskFailed(P, "t1", "terminal closed", 1, final=False, at=at(2)),
        started("t1", attempt=2, minute=9),  # queued or not: only its running time counts
        AttemptRan(P, "t1", 2, 45.5),
        TaskFailed(P, "t1", "no", 2, final=True, at=at(10)),
    )
    t1 = task_json(tmp_path, "t1")
    assert (t1["worked"], t1["duration"]) == (75.5, 75.5)
