"""The up-to-date rule in one place (DESIGN §4, §6): `state.uptodate`, on real files in a
tmp checkout; the no-op's cache and the one-task check doit asks agree with the rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchlib.plan import Plan
from orchlib.plan.file import load_plans
from orchlib.state import stamps, uptodate
from orchlib.state.uptodate import Specs

P = "up"
TEMPLATE = "the task template {{ task.id }}"


def write_plan(root: Path, c_description: str = "C") -> Plan:
    """Plan `up`: a -> b -> c, shell tasks in project `w`; a has an output, b an input."""
    (root / "w").mkdir(exist_ok=True)
    plan = {"planId": P, "projects": [{"name": "w", "path": "w"}], "tasks": [
        {"id": "a", "project": "w", "title": "A", "command": "true", "outputs": ["a.txt"]},
        {"id": "b", "project": "w", "title": "B", "command": "true", "inputs": ["in.txt"],
         "dependsOn": ["a"]},
        {"id": "c", "project": "w", "title": "C", "command": "true", "dependsOn": ["b"],
         "description": c_description},
    ]}  # fmt: skip
    (root / "plans").mkdir(exist_ok=True)
    (root / "plans" / "up.json").write_text(json.dumps(plan))
    (loaded,) = load_plans(root)
    return loaded


def stamp_all(orch: Path, plan: Plan, specs: Specs) -> None:
    """A stamp for every task, in dependency order, with its inputs fingerprinted."""
    from orchlib.state.fingerprints import fingerprint_inputs

    for n, task_id in enumerate(t for phase in plan.phases for t in phase):
        task = plan.tasks[task_id]
        inputs = fingerprint_inputs(plan.projects[task.project], task)
        stamps.write(stamps.stamp_path(orch, P, task_id), stamps.Stamp(
            task_id, f"2026-01-01T00:00:0{n}Z", spec_hash=specs.of(plan, task), inputs=inputs,
        ))  # fmt: skip


@pytest.fixture
def done(tmp_path: Path) -> tuple[Path, Plan, Specs]:
    """A checkout whose plan is done: every task stamped, a's output and b's input there."""
    plan = write_plan(tmp_path)
    (tmp_path / "w" / "a.txt").write_text("out\n")
    (tmp_path / "w" / "in.txt").write_text("v1\n")
    specs = Specs(TEMPLATE)
    stamp_all(tmp_path / ".orch", plan, specs)
    return tmp_path / ".orch", plan, specs


def both(orch: Path, plan: Plan, specs: Specs) -> tuple[dict[str, str | None], ...]:
    """The one-pass verdicts and, per task, the one-task check doit's `uptodate` asks."""
    each = {t: uptodate.why_not_done(orch, plan, plan.tasks[t], specs) for t in plan.tasks}
    return uptodate.verdicts(orch, plan, specs), each


def test_a_done_plan_is_up_to_date_by_both_checks(done: tuple[Path, Plan, Specs]) -> None:
    orch, plan, specs = done
    assert both(orch, plan, specs) == ({"a": None, "b": None, "c": None},) * 2


def test_each_reason_is_said_alike_by_the_pass_and_the_one_task_check(
    done: tuple[Path, Plan, Specs],
) -> None:
    orch, plan, specs = done
    w = plan.projects["w"].root
    (w / "a.txt").unlink()
    passed, each = both(orch, plan, specs)
    assert passed["a"] == each["a"] == "output 'a.txt' is missing"
    assert passed["b"] == "dependency a runs first"  # the pass knows a runs in this run
    assert each["b"] is None  # doit asks b only once a ran: then its stamp is newer
    (w / "a.txt").write_text("out\n")
    (w / "in.txt").write_text("v2\n")
    passed, each = both(orch, plan, specs)
    assert passed["b"] == each["b"] == "input 'in.txt' changed"
    assert (passed["c"], each["c"]) == ("dependency b runs first", None)


def test_a_changed_spec_and_a_redone_dependency(done: tuple[Path, Plan, Specs]) -> None:
    orch, _, specs = done
    edited = write_plan(orch.parent, c_description="C, now with more")
    passed, each = both(orch, edited, specs)
    assert (
        passed == each == {"a": None, "b": None, "c": "the task's spec changed since it was done"}
    )
    stamp = stamps.read(stamps.stamp_path(orch, P, "a"), "a")
    assert stamp is not None
    time.sleep(0.01)  # a new folder mtime whatever the file system's clock tick
    stamps.write(stamps.stamp_path(orch, P, "a"), stamps.Stamp(
        "a", "2026-02-01T00:00:00Z", spec_hash=stamp.spec_hash))  # fmt: skip
    passed, each = both(orch, edited, specs)
    assert passed["b"] == each["b"] == "dependency a was redone after it"


def test_a_damaged_stamp_is_named_by_both(done: tuple[Path, Plan, Specs]) -> None:
    orch, plan, specs = done
    stamps.stamp_path(orch, P, "b").write_text(json.dumps({"taskId": "zz", "finishedAt": "x"}))
    passed, each = both(orch, plan, specs)
    said = "its stamp is damaged (taskId is 'zz', not 'b'); the task runs again"
    assert passed["b"] == each["b"] == said
    assert passed["c"] == "dependency b runs first"
    assert each["c"] == "dependency b is not done"


def test_no_stamp_at_all(tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    passed, each = both(tmp_path / ".orch", plan, Specs(TEMPLATE))
    assert passed == {"a": "no completion stamp", "b": "no completion stamp",
                      "c": "no completion stamp"}  # fmt: skip
    assert each["a"] == each["b"] == "no completion stamp"


def test_the_cache_is_json_and_trusted_only_once_the_stamps_are_old(
    done: tuple[Path, Plan, Specs],
) -> None:
    orch, plan, specs = done
    cache = orch / P / uptodate.CACHE_FILE
    uptodate.verdicts(orch, plan, specs)
    saved = json.loads(cache.read_bytes())
    assert saved["version"] == uptodate.CACHE_VERSION
    assert saved["stampsMtime"] == -2  # stamps written less than RACY_SECONDS ago
    folder = stamps.stamps_dir(orch, P)
    old = time.time_ns() - int(uptodate.RACY_SECONDS * 3e9)
    os.utime(folder, ns=(old, old))
    uptodate.verdicts(orch, plan, specs)
    saved = json.loads(cache.read_bytes())
    assert saved["stampsMtime"] == old and saved["verdicts"] == {"a": None, "b": None, "c": None}
    # A stamp replaced (by rename, as every stamp is written) changes the folder's mtime.
    stamps.remove(stamps.stamp_path(orch, P, "c"))
    assert uptodate.verdicts(orch, plan, specs)["c"] == "no completion stamp"


@pytest.mark.parametrize(
    "content",
    [b"\x80\x04 a pickle", b"[]", b'{"version": 4, "specKey": 1, "specs": {}, '
     b'"stampsMtime": 0, "entries": {}}', b'{"version": 4}', b"{" * 10000],
)  # fmt: skip
def test_a_foreign_cache_is_only_a_miss(done: tuple[Path, Plan, Specs], content: bytes) -> None:
    orch, plan, specs = done
    (orch / P / uptodate.CACHE_FILE).write_bytes(content)
    assert uptodate.verdicts(orch, plan, specs) == {"a": None, "b": None, "c": None}
    assert json.loads((orch / P / uptodate.CACHE_FILE).read_bytes())["version"] == 4


def test_a_reader_that_writes_nothing(tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    found = uptodate.verdicts(tmp_path / ".orch", plan, Specs(TEMPLATE), save=False)
    assert set(found) == {"a", "b", "c"} and not (tmp_path / ".orch" / P).exists()


def test_one_spec_hash_per_task_object(tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    specs = Specs(TEMPLATE)
    task = plan.tasks["c"]
    assert specs.of(plan, task) == stamps.spec_hash(plan, task, TEMPLATE)
    assert specs.of(plan, task) != Specs("another template").of(plan, task)
    edited = write_plan(tmp_path, c_description="C, edited")  # a reload: new Task objects
    assert specs.of(edited, edited.tasks["c"]) != specs.of(plan, task)
    assert specs.key(plan) != specs.key(edited) != ""


def test_the_rule_sits_below_the_checkout_and_the_run() -> None:
    code = ("import sys, orchlib.state.uptodate, orchlib.state.statesync; "
            "print(sorted(m for m in sys.modules if m == 'orchlib.checkout' "
            "or m.startswith(('orchlib.run', 'orchlib.doitedge'))))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
