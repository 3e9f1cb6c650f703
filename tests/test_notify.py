"""Notifier: real command targets (a small script), apprise over real HTTP, broken notifiers."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from orchlib.events import (
    Event,
    RunFinished,
    RunStarted,
    TaskDone,
    TaskFailed,
    TaskSkipped,
    TaskUpToDate,
    TaskWaiting,
)
from orchlib.output.notify import APPRISE_MISSING, Notification, Notifier, close_all, command_argv
from orchlib.plan import NotifyTarget, Plan, Project, Task

P = "shop"
SINK = """\
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as out:
    out.write(json.dumps(sys.argv[2:]) + "\\n")
"""


def make_plan(root: Path, targets: tuple[NotifyTarget, ...], summary: str = "Shop") -> Plan:
    project = Project("app", "./app", root / "app")
    rows = [("t1", ()), ("t2", ()), ("t3", ("t1",)), ("t4", ("t3",))]
    tasks = {
        tid: Task(tid, "app", f"Task {tid}", depends_on=deps, index=i)
        for i, (tid, deps) in enumerate(rows)
    }
    return Plan(
        P,
        root / "plans" / "shop.yaml",
        summary,
        "",
        {"app": project},
        tasks,
        (("t1", "t2"), ("t3",), ("t4",)),
        notify=targets,
    )


def sink_target(root: Path, *events: str) -> tuple[NotifyTarget, Path]:
    script, out = root / "sink.py", root / "received.jsonl"
    script.write_text(SINK)
    argv = (sys.executable, str(script), str(out), "{event}", "{title}", "{message}")
    return NotifyTarget(command=argv, events=events), out


def received(out: Path) -> list[list[str]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def run(notifier: Notifier, *events: Event) -> None:
    for event in events:
        notifier.handle(event)
    notifier.close(timeout=30)


def done(task: str) -> TaskDone:
    return TaskDone(P, task, f"{task} ok", 1, "term", 1.0)


def test_each_event_reaches_the_command_once(tmp_path: Path) -> None:
    target, out = sink_target(tmp_path)
    notifier = Notifier(make_plan(tmp_path, (target,)), tmp_path / ".orch" / P)
    run(
        notifier,
        RunStarted(P, ("t1", "t2", "t3", "t4")),
        done("t1"),
        done("t2"),
        TaskFailed(P, "t3", "flaky", 1, final=False),
        TaskFailed(P, "t3", "tests fail", 2, final=True),
        TaskSkipped(P, "t4", ("t3",)),
        RunFinished(P),
    )
    assert received(out) == [
        [
            "phase_completed",
            "shop: phase 1 done",
            "Orchestration 'Shop': Phase 1 completed (2/4 tasks done)",
        ],
        [
            "task_error",
            "shop: task failed",
            "Orchestration error in task 'Task t3' (shop:t3): tests fail",
        ],
        [
            "plan_failed",
            "shop: failed",
            "Orchestration 'Shop' failed: 1 failed, 1 skipped (2/4 tasks done): t3, t4",
        ],
    ]
    assert notifier.errors == []


def test_plan_completed_and_questions(tmp_path: Path) -> None:
    target, out = sink_target(tmp_path)
    notifier = Notifier(make_plan(tmp_path, (target,)), tmp_path / ".orch" / P)
    run(
        notifier,
        RunStarted(P, ("t1", "t2", "t3", "t4")),
        TaskUpToDate(P, "t1"),
        TaskUpToDate(P, "t2"),
        TaskWaiting(P, "t3", "JWT or cookies?", 1, "term"),
        TaskWaiting(P, "t3", "JWT or cookies?", 1, "term", still=True),
        done("t3"),
        done("t4"),
        RunFinished(P),
    )
    events = [row[0] for row in received(out)]
    assert events == ["task_question", "phase_completed", "phase_completed", "plan_completed"]
    rows = received(out)
    assert rows[0][2] == (
        "Orchestration 'Shop': task 'Task t3' (shop:t3) asks: JWT or cookies?"
        ' — answer with: doit answer shop:t3 "..."'
    )
    assert rows[1][2] == "Orchestration 'Shop': Phase 2 completed (3/4 tasks done)"
    assert rows[3][2] == "Orchestration 'Shop' completed successfully! All 4 tasks done."


def test_nothing_new_done_and_interrupted_runs_stay_quiet(tmp_path: Path) -> None:
    target, out = sink_target(tmp_path)
    notifier = Notifier(make_plan(tmp_path, (target,)), tmp_path / ".orch" / P)
    up_to_date = [TaskUpToDate(P, t) for t in ("t1", "t2", "t3", "t4")]
    failed = TaskFailed(P, "t1", "SIGINT", 1, final=True, interrupted=True)
    run(
        notifier,
        RunStarted(P, ()),
        *up_to_date,
        RunFinished(P),
        RunStarted(P, ("t1",)),
        failed,
        RunFinished(P, interrupted="SIGINT"),
        TaskDone("other-plan", "t1", "x", 1, "t", 1.0),
    )
    assert [row[0] for row in received(out)] == ["task_error"]


def test_target_event_filter(tmp_path: Path) -> None:
    target, out = sink_target(tmp_path, "plan_completed")
    notifier = Notifier(make_plan(tmp_path, (target,)), tmp_path / ".orch" / P)
    run(notifier, RunStarted(P, ()), *(done(t) for t in ("t1", "t2", "t3", "t4")), RunFinished(P))
    assert [row[0] for row in received(out)] == ["plan_completed"]


def test_skips_behind_an_open_question_are_no_plan_failure(tmp_path: Path) -> None:
    target, out = sink_target(tmp_path)
    notifier = Notifier(make_plan(tmp_path, (target,)), tmp_path / ".orch" / P)
    run(
        notifier,
        RunStarted(P, ("t1", "t2", "t3", "t4")),
        TaskUpToDate(P, "t1"),
        TaskUpToDate(P, "t2"),
        TaskWaiting(P, "t3", "JWT or cookies?", 1, "term", still=True),
        TaskSkipped(P, "t4", ("t3",)),
        RunFinished(P),
        # Next run: the question is answered but t3 fails; t4's skip is a failure now.
        RunStarted(P, ("t1", "t2", "t3", "t4")),
        TaskUpToDate(P, "t1"),
        TaskUpToDate(P, "t2"),
        TaskFailed(P, "t3", "no JWT library", 2, final=True),
        TaskSkipped(P, "t4", ("t3",)),
        RunFinished(P),
    )
    rows = received(out)
    assert [row[0] for row in rows] == ["task_error", "plan_failed"]
    assert rows[0][2] == "Orchestration error in task 'Task t3' (shop:t3): no JWT library"
    assert rows[1][2] == "Orchestration 'Shop' failed: 1 failed, 1 skipped (2/4 tasks done): t3, t4"


def test_a_hanging_target_does_not_hold_up_another(tmp_path: Path) -> None:
    target, out = sink_target(tmp_path)
    hanging = NotifyTarget(command=(sys.executable, "-c", "import time; time.sleep(60)"))
    notifier = Notifier(make_plan(tmp_path, (hanging, target)), tmp_path / ".orch" / P)
    for task in ("t1", "t2", "t3"):
        notifier.handle(TaskFailed(P, task, "bad", 1, final=True))
    deadline = time.monotonic() + 20
    while len(received(out)) < 3:
        assert time.monotonic() < deadline, "the sink waited behind the hanging target"
        time.sleep(0.02)
    begin = time.monotonic()
    notifier.close(timeout=0.5)
    assert time.monotonic() - begin < 5
    log = (tmp_path / ".orch" / P / "notify.log").read_text(encoding="utf-8").splitlines()
    assert len(log) == 3, log  # the killed delivery and the two never sent, all logged
    assert sum("was still running when the run ended, and was killed" in x for x in log) == 1
    assert sum("not sent, the run ended first" in line for line in log) == 2


def test_plan_text_is_never_run_by_a_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = "$(touch pwned) `touch pwned2`; touch pwned3 {message} {title} 'q\" \\"
    target, out = sink_target(tmp_path)
    plan = make_plan(tmp_path, (target,), summary=evil)
    plan = replace(plan, tasks={**plan.tasks, "t1": replace(plan.tasks["t1"], title=evil)})
    run(Notifier(plan, tmp_path / ".orch" / P), TaskFailed(P, "t1", evil, 1, final=True))
    [[_, _, message]] = received(out)
    assert message == f"Orchestration error in task '{evil}' (shop:t1): {evil}"
    assert not list(tmp_path.glob("pwned*"))


def test_command_argv_substitutes_in_one_pass() -> None:
    note = Notification("task_error", "{message}", "{title} $(x)")
    argv = command_argv(["notify", "--t={title}", "{message}", "{event}{event}", "{other}"], note)
    assert argv == ["notify", "--t={message}", "{title} $(x)", "task_errortask_error", "{other}"]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (
            (sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(1)"),
            "exited 1: boom",
        ),
        (("orchlib-no-such-notifier", "{message}"), "cannot run 'orchlib-no-such-notifier'"),
        ((sys.executable, "-c", "import time; time.sleep(60)"), "timed out after 0.5s"),
    ],
)
def test_broken_notifiers_never_slow_or_fail_the_run(
    tmp_path: Path, argv: tuple[str, ...], problem: str
) -> None:
    folder = tmp_path / ".orch" / P
    notifier = Notifier(
        make_plan(tmp_path, (NotifyTarget(command=argv),)), folder, command_timeout=0.5
    )
    begin = time.monotonic()
    for attempt in range(1, 4):
        notifier.handle(TaskFailed(P, f"t{attempt}", "bad", 1, final=True))
    assert time.monotonic() - begin < 0.5
    notifier.close(timeout=30)
    assert time.monotonic() - begin < 10
    assert len(notifier.errors) == 3 and all(problem in e for e in notifier.errors)
    log = (folder / "notify.log").read_text(encoding="utf-8").splitlines()
    assert len(log) == 3 and all(" task_error: " in line and problem in line for line in log)


def test_close_is_bounded_even_with_a_slow_notifier(tmp_path: Path) -> None:
    argv = (sys.executable, "-c", "import time; time.sleep(60)")
    notifier = Notifier(make_plan(tmp_path, (NotifyTarget(command=argv),)), tmp_path / "o")
    for attempt in range(1, 4):
        notifier.handle(TaskFailed(P, f"t{attempt}", "bad", 1, final=True))
    begin = time.monotonic()
    notifier.close(timeout=0.5)
    assert time.monotonic() - begin < 3
    deadline = time.monotonic() + 5
    while len(notifier.errors) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the killed command and the two dropped ones are logged
    assert any("not sent, the run ended first" in e for e in notifier.errors)
    assert len(notifier.errors) == 3


def test_close_all_shares_one_deadline_across_plans(tmp_path: Path) -> None:
    argv = (sys.executable, "-c", "import time; time.sleep(60)")
    notifiers = [
        Notifier(make_plan(tmp_path, (NotifyTarget(command=argv),)), tmp_path / f"o{i}")
        for i in range(3)
    ]
    for notifier in notifiers:
        notifier.handle(TaskFailed(P, "t1", "bad", 1, final=True))
    begin = time.monotonic()
    close_all(notifiers, timeout=1.0)
    assert time.monotonic() - begin < 2.5  # one deadline (+ grace), not three
    for notifier in notifiers:
        assert notifier.errors == [
            f"task_error: {argv[0]!r} was still running when the run ended, and was killed"
        ]


def test_missing_apprise_is_logged_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise -> ImportError
    notifier = Notifier(make_plan(tmp_path, (NotifyTarget(url="ntfy://topic"),)), tmp_path / "o")
    run(notifier, *(TaskFailed(P, t, "bad", 1, final=True) for t in ("t1", "t2", "t3")))
    assert notifier.errors == [f"task_error: {APPRISE_MISSING}"]


class _Catcher(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_apprise_url_target_posts_the_message(tmp_path: Path) -> None:
    pytest.importorskip("apprise")
    server = HTTPServer(("127.0.0.1", 0), _Catcher)
    _Catcher.bodies = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"json://127.0.0.1:{server.server_port}/hook"
        notifier = Notifier(make_plan(tmp_path, (NotifyTarget(url=url),)), tmp_path / "o")
        run(notifier, TaskFailed(P, "t2", "disk full", 1, final=True))
    finally:
        server.shutdown()
        server.server_close()
    assert [(b["title"], b["message"]) for b in _Catcher.bodies] == [
        ("shop: task failed", "Orchestration error in task 'Task t2' (shop:t2): disk full")
    ]
    assert notifier.errors == []


def test_failed_apprise_delivery_is_logged_without_the_token(tmp_path: Path) -> None:
    pytest.importorskip("apprise")
    url = "json://127.0.0.1:9/secret-token?cto=0.5&rto=0.5"  # nothing listens on port 9
    notifier = Notifier(make_plan(tmp_path, (NotifyTarget(url=url),)), tmp_path / "o")
    run(notifier, TaskFailed(P, "t2", "disk full", 1, final=True))
    assert notifier.errors == ["task_error: apprise: delivery to json://… failed"]
