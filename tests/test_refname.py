"""Branch names (DESIGN §10): orchlib's pure check agrees with `git check-ref-format --branch`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchlib.errors import PlanError
from orchlib.plan.file import load_plan
from orchlib.plan.refname import branch_problem, task_branch

NAMES = [
    "orch/p/t1", "orch/p/x.lock", "orch/p/a..b", "orch/p/t.", "orch/p/.hidden", "orch/.p/t",
    "orch/p/a@{b", "orch/p/a@b", "orch/p/a b", "orch/p/a~1", "orch/p/a^", "orch/p/a:b",
    "orch/p/a?", "orch/p/a*", "orch/p/a[b", "orch/p/a\\b", "orch/p/a\tb", "orch/p/a\x7fb",
    "orch//t", "orch/p/", "/orch/p", "-x", "HEAD", "x.lock/y", "a.lock.b", "a-.b_c",
    "orch/p/lock", "orch/p/.lock", "orch/p/t...", "orch/p/a.b.c", "é/ü", "orch/p/@",
    "orch/p/a@", "a/b.locked",
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_the_check_agrees_with_git(name: str) -> None:
    real = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True)
    ours = branch_problem(name)
    assert (ours is None) == (real.returncode == 0), (name, ours)


@pytest.mark.parametrize(
    ("task_id", "says"),
    [
        ("x.lock", "may end with '.lock'"),
        ("a..b", "cannot hold '..'"),
        ("ends.", "cannot end with '.'"),
        (".dot", "may begin with '.'"),
    ],
)
def test_a_task_id_git_cannot_use_is_a_located_error_under_isolation(
    tmp_path: Path, task_id: str, says: str
) -> None:
    assert branch_problem(task_branch("p", task_id)) is not None
    plan = {"planId": "p",
            "projects": [{"name": "a", "path": "a", "isolation": "worktree"},
                         {"name": "b", "path": "b"}],
            "tasks": [{"id": "ok", "project": "a", "title": "t"},
                      {"id": task_id, "project": "a", "title": "t"},
                      {"id": f"{task_id}.lock", "project": "b", "title": "b"}]}  # fmt: skip
    (tmp_path / "plans").mkdir()
    path = tmp_path / "plans" / "p.yaml"
    path.write_text(json.dumps(plan, indent=1))
    with pytest.raises(PlanError) as caught:
        load_plan(path, tmp_path)
    (line,) = caught.value.lines()
    assert line.startswith("plans/p.yaml:") and "tasks[1].id:" in line, line
    assert f"orch/p/{task_id}" in line and says in line, line


def test_without_isolation_such_an_id_is_fine(tmp_path: Path) -> None:
    plan = {"planId": "p", "projects": [{"name": "b", "path": "b"}],
            "tasks": [{"id": "x.lock", "project": "b", "title": "t"}]}  # fmt: skip
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.json").write_text(json.dumps(plan))
    assert "x.lock" in load_plan(tmp_path / "plans" / "p.json", tmp_path).tasks


def test_a_plan_id_git_cannot_use_is_reported_once_at_plan_id(tmp_path: Path) -> None:
    plan = {"planId": "p.lock", "projects": [{"name": "a", "path": "a", "isolation": "worktree"}],
            "tasks": [{"id": t, "project": "a", "title": "t"} for t in ("t1", "t2")]}  # fmt: skip
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.json").write_text(json.dumps(plan, indent=1))
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "plans" / "p.json", tmp_path)
    (line,) = caught.value.lines()
    assert "planId:" in line and "orch/p.lock/" in line, line
