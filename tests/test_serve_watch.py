"""The dashboard's readers in-process: the watcher's events, confinement, the log follower."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import SEED_PLAN

from orchlib.checkout import Checkout
from orchlib.web.files import Source, is_ident, summary
from orchlib.web.sse import follow_log
from orchlib.web.watch import Watcher

P = "orch-abc123"


@pytest.fixture
def source(tmp_path: Path) -> Source:
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "plan.json").write_text(json.dumps(SEED_PLAN))
    return Source(Checkout.load(tmp_path))


def write_state(source: Source, **statuses: str) -> None:
    """A state.json as the run writes it (new file, renamed over the old one)."""
    tasks = [{"id": t, "status": statuses.get(t, "PENDING"), "percent": 0} for t in statuses]
    folder = source.orch / P
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".state.json.tmp"
    tmp.write_text(json.dumps({"planId": P, "status": "in_progress", "tasks": tasks}))
    tmp.replace(folder / "state.json")


def decoded(texts: list[str]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for text in texts:
        name = "message"
        for line in text.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                found.append((name, json.loads(line[6:])))
    return found


def test_one_event_per_status_change_and_none_for_the_baseline(source: Source) -> None:
    write_state(source, t1="DONE", t2="IN_PROGRESS")
    watcher = Watcher(source)
    assert watcher.poll() == []  # what was there at start is no news
    write_state(source, t1="DONE", t2="DONE")
    events = decoded(watcher.poll())
    assert ("message", {"planId": P, "taskId": "t2", "status": "DONE"}) in events
    assert [e for e in events if e[0] == "message"] == [
        ("message", {"planId": P, "taskId": "t2", "status": "DONE"})
    ]
    assert any(name == "plan" and data["counts"]["DONE"] == 2 for name, data in events)
    assert watcher.poll() == []  # unchanged file: nothing


def test_a_change_other_than_status_is_an_update_only(source: Source) -> None:
    write_state(source, t1="IN_PROGRESS")
    watcher = Watcher(source)
    folder = source.orch / P
    data = json.loads((folder / "state.json").read_text())
    data["tasks"][0]["percent"] = 55
    (folder / "state.json").write_text(json.dumps(data))
    events = decoded(watcher.poll())
    assert [name for name, _ in events] == ["update"]
    assert events[0][1]["task"]["percent"] == 55


def test_paths_stay_inside_orch(source: Source, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "state.json").write_text("{}")
    source.orch.mkdir(parents=True, exist_ok=True)
    (source.orch / "evil").symlink_to(outside)
    assert source.state("evil") is None and "evil" not in source.plan_ids()
    assert source.inside(source.orch / ".." / "plans" / "plan.json") is None
    assert [is_ident(n) for n in ("t1", "a.b-c_d", ".", "..", "a/b", "", "a%2F")] == [
        True, True, False, False, False, False, False,
    ]  # fmt: skip


def test_a_plan_that_never_ran_has_a_pending_line(source: Source) -> None:
    data = source.state(P)
    assert data is not None
    line = summary(P, data)
    assert (line["status"], line["total"], line["counts"]["PENDING"]) == ("pending", 4, 4)


def test_a_plan_without_state_shows_done_only_for_up_to_date_stamps(source: Source) -> None:
    from orchlib.state import stamps

    plan = source.checkout.plans[P]
    for task_id, spec in (("t1", source.checkout.specs.of(plan, plan.tasks["t1"])),
                          ("t2", "the spec of an older t2")):  # fmt: skip
        stamp = stamps.Stamp(task_id, "2026-01-01T00:00:00Z", "did it", spec_hash=spec)
        stamps.write(stamps.stamp_path(source.orch, P, task_id), stamp)
    data = source.state(P)
    assert data is not None
    assert [(t["id"], t["status"]) for t in data["tasks"]] == [
        ("t1", "DONE"), ("t2", "PENDING"), ("t3", "PENDING"), ("t4", "PENDING")
    ]  # fmt: skip
    assert sorted(os.listdir(source.orch / P)) == ["stamps"]  # the dashboard writes nothing


def test_the_log_follower_reads_on_until_the_attempt_is_over(tmp_path: Path) -> None:
    log = tmp_path / "t1.1.log"
    log.write_bytes("héllo\n".encode()[:2])  # a character split across two reads
    done = {"over": False}

    async def read() -> list[str]:
        texts = []
        async for text in follow_log(log.open("rb"), 0, lambda: done["over"], lambda: False):
            texts.append(text)
            if len(texts) == 2:  # retry line + the first bytes
                with log.open("ab") as handle:
                    handle.write("héllo\n".encode()[2:])
                done["over"] = True
        return texts

    events = decoded(asyncio.run(asyncio.wait_for(read(), 10)))
    text = "".join(d["text"] for name, d in events if name == "log")
    assert text == "héllo\n"
    assert events[-1] == ("end", {"offset": len("héllo\n".encode())})
