"""`isolation: worktree` end to end (DESIGN §10): real git repositories, the real `doit`.

Every run here sees no global or system git config (GIT_CONFIG_GLOBAL=/dev/null), as on
a fresh machine: orchlib's own commits and merges must work without a configured identity.
The fake agent commits with its own `-c user.name=agent`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout, pid_alive

from orchlib.errors import PlanError
from orchlib.plan.file import load_plan

PLAN = "iso"
NO_GIT_CONFIG = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "EMAIL": ""}


def git(repo: Path, *args: str) -> str:
    """git in `repo` (as a test user: the tests' own set-up commits)."""
    ident = ["-c", "user.name=test", "-c", "user.email=test@example"]
    done = subprocess.run(["git", *ident, *args], cwd=repo, capture_output=True, text=True,
                          check=True, env={**os.environ, **NO_GIT_CONFIG})  # fmt: skip
    return done.stdout


def make_repo(repo: Path, files: dict[str, str]) -> None:
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")


def write(co: Checkout, tasks: list[dict[str, Any]], parallel: int = 3, **project: Any) -> None:
    """A plan of `tasks` in the isolated project `app` (folder `app`), run by the fake agent."""
    app = {"name": "app", "path": "app", "isolation": "worktree", "parallel": parallel, **project}
    plan = {
        "planId": PLAN,
        "agent": co.agent(),
        "projects": [app],
        "tasks": [{"project": "app", "title": f"do {t['id']}", **t} for t in tasks],
    }
    co.write_plan(plan, f"{PLAN}.json")


def run(
    co: Checkout, *args: str, timeout: float = 90, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return co.doit(*args, timeout=timeout, env={**NO_GIT_CONFIG, **(env or {})})


def out(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def merges(repo: Path) -> list[str]:
    """Subjects of the merge commits on the project's branch, oldest first."""
    return git(repo, "log", "--merges", "--reverse", "--format=%s").splitlines()


def worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")]  # fmt: skip


def assert_clean(repo: Path) -> None:
    """Only the main work tree, no orch/ branch left, nothing uncommitted, no merge going on."""
    assert worktrees(repo) == [f"worktree {repo.resolve()}"]
    assert git(repo, "branch", "--list", "orch/*") == ""
    assert git(repo, "status", "--porcelain") == ""
    assert not (repo / ".git" / "MERGE_HEAD").exists()


def stamp(co: Checkout, task: str) -> dict[str, Any]:
    found = co.stamp(task, PLAN)
    assert found is not None, f"{task} has no stamp"
    return found


def tree(co: Checkout, task: str) -> Path:
    return co.root / ".orch" / "worktrees" / PLAN / task


def test_three_independent_tasks_run_at_once_and_land_as_merges(checkout: Checkout) -> None:
    make_repo(checkout.root / "app", {"README": "app\n"})
    ids = ("t1", "t2", "t3")
    started = checkout.root / "started"
    # Each agent waits until all three have started: only a parallel run gets past that
    # (a serial one times out).
    steps = {t: [[{"write": [f"{t}.txt", f"{t}\n"]}, {"write": [str(started / t), "x"]},
                  *({"wait_file": str(started / o)} for o in ids), {"done": f"{t} written"}]]
             for t in ids}  # fmt: skip
    started.mkdir()
    checkout.scenario(steps)
    write(checkout, [{"id": t, "timeout": 30, "retries": 0} for t in ids])
    result = run(checkout)
    assert result.returncode == 0, out(result)
    repo = checkout.root / "app"
    for t in ids:
        assert (repo / f"{t}.txt").read_text() == f"{t}\n"
        assert stamp(checkout, t)["merge"]["branch"] == f"orch/{PLAN}/{t}"
    assert sorted(merges(repo)) == [f"Merge branch 'orch/{PLAN}/{t}'" for t in ids]
    records = {r["task"]: r for r in checkout.records()}
    for t in ids:
        assert records[t]["cwd"] == str(tree(checkout, t))
        assert f"Work only inside the project folder: {tree(checkout, t)}" in records[t]["prompt"]
    authors = git(repo, "log", "--format=%an <%ae>", "-n", "4").splitlines()
    assert set(authors) == {"orchlib <orchlib@localhost>"}, "no git identity: orchlib's own"
    assert_clean(repo)


def test_parallel_caps_the_tasks_at_once(checkout: Checkout) -> None:
    make_repo(checkout.root / "app", {"README": "app\n"})
    ids = ("t1", "t2", "t3")
    checkout.scenario({t: [[{"sleep": 0.6}, {"write": [f"{t}.txt", t]}, {"done": t}]] for t in ids})
    write(checkout, [{"id": t} for t in ids], parallel=2)
    result = run(checkout, "-n", "8")
    assert result.returncode == 0, out(result)
    spans = [(r["start"], _epoch(stamp(checkout, r["task"])["finishedAt"]))
             for r in checkout.records()]  # fmt: skip
    at_once = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert at_once == 2
    assert len(merges(checkout.root / "app")) == 3


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_a_conflicting_merge_is_aborted_and_retried_from_the_new_head(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"shared.txt": "base\n"})
    t1_stamp = checkout.root / ".orch" / PLAN / "stamps" / "t1.json"
    checkout.scenario({
        "t1": [[{"write": ["shared.txt", "one\n"]}, {"done": "shared is one"}]],
        # t2 edits the same line from the same base, and reports DONE after t1 merged.
        "t2": [[{"write": ["shared.txt", "two\n"]}, {"wait_file": str(t1_stamp)},
                {"done": "shared is two"}],
               [{"write": ["shared.txt", "one\ntwo\n"]}, {"done": "shared has both"}]],
    })  # fmt: skip
    write(checkout, [{"id": "t1"}, {"id": "t2"}], parallel=2)
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert [r["attempt"] for r in checkout.records() if r["task"] == "t2"] == [1, 2]
    assert "conflicted in: shared.txt" in out(result)
    retry = next(r["prompt"] for r in checkout.records() if r["task"] == "t2" and r["attempt"] == 2)
    assert "conflicted in: shared.txt" in retry and "current HEAD" in retry
    assert (repo / "shared.txt").read_text() == "one\ntwo\n"
    # The retry's branch grew from the HEAD that already held t1's merge.
    t1_merge = stamp(checkout, "t1")["merge"]["commit"]
    t2_tip = git(repo, "rev-parse", stamp(checkout, "t2")["merge"]["commit"] + "^2").strip()
    git(repo, "merge-base", "--is-ancestor", t1_merge, t2_tip)
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1'", f"Merge branch 'orch/{PLAN}/t2'"]
    assert_clean(repo)


def test_an_agent_that_commits_and_one_that_does_not_both_land(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({
        "own": [[{"write": ["own.txt", "own\n"]}, {"git": ["add", "own.txt"]},
                 {"git": ["commit", "-qm", "the agent's own commit"]}, {"done": "own.txt"}]],
        "left": [[{"write": ["left.txt", "left\n"]}, {"done": "left.txt (not committed)"}]],
        "none": [[{"done": "nothing to change"}]],

        "moved": [[{"git": ["checkout", "-qb", "elsewhere"]}, {"write": ["moved.txt", "m\n"]},
                   {"done": "moved.txt, on another branch"}]],
    })  # fmt: skip
    write(checkout, [{"id": t} for t in ("own", "left", "none", "moved")], parallel=4)
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert (repo / "own.txt").read_text() == "own\n"
    assert (repo / "left.txt").read_text() == "left\n"
    assert (repo / "moved.txt").read_text() == "m\n", "the worktree's HEAD lands, whatever branch"
    subjects = git(repo, "log", "--format=%s|%an").splitlines()
    assert "the agent's own commit|agent" in subjects
    assert "do left|orchlib" in subjects  # orchlib committed what the agent left
    assert not any(s.startswith("do own|") for s in subjects), "nothing was left to commit"
    body = git(repo, "log", "--format=%B", "-n", "1", "--grep=^do left")
    assert f"{PLAN}:left (attempt 1): left.txt (not committed)" in body
    assert len(merges(repo)) == 3  # `none` had nothing to merge
    assert stamp(checkout, "none")["summary"] == "nothing to change"
    assert_clean(repo)


def test_a_failed_attempts_worktree_is_kept_until_the_next_attempt(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [[{"write": ["half.txt", "half\n"]}, {"done": "half"}]]})
    write(checkout, [{"id": "t1", "retries": 0, "verify": "test -f whole.txt"}])
    result = run(checkout)
    assert result.returncode != 0
    assert f"(its worktree is kept: .orch/worktrees/{PLAN}/t1)" in out(result)
    kept = tree(checkout, "t1")
    assert (kept / "half.txt").read_text() == "half\n"  # there to inspect
    assert len(worktrees(repo)) == 2 and merges(repo) == []
    assert not (repo / "half.txt").exists(), "a failed attempt never reaches the project"
    checkout.scenario({"t1": [[{"write": ["whole.txt", "whole\n"]}, {"done": "whole"}]]})
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert not (repo / "half.txt").exists(), "the next attempt started from HEAD, not the kept tree"
    assert (repo / "whole.txt").is_file() and not kept.exists()
    assert_clean(repo)


def test_outputs_are_checked_in_the_worktree_and_committed_even_if_ignored(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {".gitignore": "dist/\n"})
    checkout.scenario({"build": [[{"write": ["dist/app.js", "js"]}, {"done": "dist/app.js"}]]})
    write(checkout, [{"id": "build", "outputs": ["dist/*.js"]}])
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert (repo / "dist" / "app.js").read_text() == "js"
    again = run(checkout)  # the output is in the project folder: up to date
    assert again.returncode == 0 and "up to date" in again.stdout, out(again)
    assert len(checkout.records()) == 1


CRASH = {
    "a": [[{"write": ["a.txt", "a\n"]}, {"done": "a done"}]],
    "b": [[{"write": ["b.txt", "b\n"]}, {"done": "b done"}, {"wait_file": "GO"}]],
    "c": [[{"write": ["c.txt", "c\n"]}, {"progress": [50, "half"]}, {"wait_file": "GO"},
           {"done": "c done"}]],
    "d": [[{"progress": [10, "begun"]}, {"hang": True}], [{"write": ["d.txt", "d\n"]},
                                                         {"done": "d done"}]],
}  # fmt: skip


def _log(co: Checkout, task: str) -> str:
    path = co.root / ".orch" / PLAN / "logs" / f"{task}.1.log"
    return path.read_text() if path.is_file() else ""


def test_killed_run_merges_finished_work_once_and_redispatches_the_rest(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    go = checkout.root / "GO"
    checkout.scenario(json.loads(json.dumps(CRASH).replace('"GO"', json.dumps(str(go)))))
    write(checkout, [{"id": t} for t in "abcd"], parallel=4)
    first = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(lambda: checkout.stamp("a", PLAN) is not None
                      and "[DONE:" in _log(checkout, "b")
                      and all("[PROGRESS:" in _log(checkout, t) for t in "cd"))  # fmt: skip
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    pids = {r["task"]: r["pid"] for r in checkout.records()}
    os.killpg(pids["d"], signal.SIGKILL)  # d's agent dies with the orchestrator: no marker
    go.touch()  # b and c finish while no orchestrator runs
    for t in "bcd":
        checkout.wait_for(lambda t=t: not pid_alive(pids[t]))
    left = worktrees(repo)  # b, c and d are still to land (a's too, if killed before removal)
    assert all(f"worktree {tree(checkout, t)}" in left for t in "bcd")
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert "Traceback" not in out(result)
    assert Counter(checkout.dispatched()) == {"a": 1, "b": 1, "c": 1, "d": 2}
    subjects = merges(repo)
    assert Counter(subjects) == {f"Merge branch 'orch/{PLAN}/{t}'": 1 for t in "abcd"}
    for t in "abcd":
        assert (repo / f"{t}.txt").read_text() == f"{t}\n"
        assert stamp(checkout, t)["summary"] == f"{t} done"
    assert_clean(repo)


def test_a_stamped_tasks_leftover_worktree_is_removed_by_the_next_run(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    write(checkout, [{"id": "t1"}])
    assert run(checkout).returncode == 0
    # As if the run was killed between writing t1's stamp and removing its worktree.
    git(repo, "worktree", "add", "-q", "-b", f"orch/{PLAN}/t1", str(tree(checkout, "t1")))
    result = run(checkout)
    assert result.returncode == 0 and "nothing to do" in result.stdout, out(result)
    assert_clean(repo)
    assert not (checkout.root / ".orch" / "worktrees").exists(), "no empty folder left either"


def test_a_missing_or_empty_folder_is_made_a_repository(checkout: Checkout) -> None:
    (checkout.root / "empty").mkdir()
    plan = {
        "planId": PLAN,
        "agent": checkout.agent(),
        "projects": [{"name": p, "path": p, "isolation": "worktree"} for p in ("new", "empty")],
        "tasks": [{"id": f"{p}1", "project": p, "title": p} for p in ("new", "empty")],
    }
    checkout.write_plan(plan, f"{PLAN}.json")
    checkout.scenario({f"{p}1": [[{"write": ["x.txt", p]}, {"done": p}]] for p in ("new", "empty")})
    result = run(checkout)
    assert result.returncode == 0, out(result)
    for name in ("new", "empty"):
        repo = checkout.root / name
        assert (repo / "x.txt").read_text() == name
        assert len(git(repo, "log", "--format=%s").splitlines()) == 3  # start, work, merge
        assert_clean(repo)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("plain", "is not a git repository, and isolation: worktree needs one: run `git init`"),
        ("no commit", "is a git repository without a commit yet; commit its files first"),
        ("sub-folder", "is inside the git repository"),
    ],
)
def test_a_folder_with_files_that_is_no_usable_repository_is_refused(
    checkout: Checkout, setup: str, message: str
) -> None:
    folder = checkout.root / "app"
    if setup == "sub-folder":
        make_repo(checkout.root / "mono", {"README": "mono\n"})
        folder = checkout.root / "mono" / "app"
    folder.mkdir()
    (folder / "main.c").write_text("int main;\n")
    if setup == "no commit":
        git(folder, "init", "-q")
    write(checkout, [{"id": "t1"}], path=str(folder.relative_to(checkout.root)))
    result = run(checkout)
    assert result.returncode == 3, out(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out(result)
    assert lines[0].startswith(f"plans/{PLAN}.json:") and "projects[0].path:" in lines[0]
    assert message in lines[0]
    assert checkout.dispatched() == []
    assert (folder / ".git").exists() == (setup == "no commit"), "the user's files are untouched"


def test_without_isolation_orchlib_never_commits(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [[{"write": ["new.txt", "new"]}, {"done": "new.txt"}]]})
    plan = {"planId": PLAN, "agent": checkout.agent(), "projects": [{"name": "app", "path": "app"}],
            "tasks": [{"id": "t1", "project": "app", "title": "t1"}]}  # fmt: skip
    checkout.write_plan(plan, f"{PLAN}.json")
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert git(repo, "log", "--format=%s").splitlines() == ["base"]
    assert git(repo, "status", "--porcelain") == "?? new.txt\n"
    assert not (checkout.root / ".orch" / "worktrees").exists()


@pytest.mark.parametrize(
    ("project", "message"),
    [
        ({"parallel": 2}, "projects[0].parallel: 'parallel' needs 'isolation: worktree'"),
        ({"isolation": "worktree", "parallel": 0}, "projects[0].parallel: must be >= 1, got 0"),
        ({"isolation": "worktrees"}, "is not one of worktree (did you mean 'worktree'?)"),
        ({"isolation": "worktree", "parallel": "3"}, "parallel: expected a whole number"),
    ],
)
def test_isolation_and_parallel_are_validated(
    tmp_path: Path, project: dict[str, Any], message: str
) -> None:
    plan = {"planId": "p", "projects": [{"name": "a", "path": "a", **project}],
            "tasks": [{"id": "t", "project": "a", "title": "t"}]}  # fmt: skip
    (tmp_path / "plans").mkdir()
    path = tmp_path / "plans" / "p.yaml"
    path.write_text(json.dumps(plan, indent=1))
    with pytest.raises(PlanError) as caught:
        load_plan(path, tmp_path)
    (line,) = caught.value.lines()
    assert line.startswith("plans/p.yaml:") and message in line


def test_plans_sharing_a_folder_share_its_smallest_limit(tmp_path: Path) -> None:
    from orchlib.checkout import Checkout as Loaded
    from orchlib.run.ready import project_capacity

    (tmp_path / "plans").mkdir()
    for plan_id, project in (("p1", {"isolation": "worktree", "parallel": 3}), ("p2", {})):
        plan = {"planId": plan_id, "projects": [{"name": "a", "path": "shared", **project},
                                                {"name": "b", "path": f"own-{plan_id}", **project}],
                "tasks": [{"id": "t", "project": "a", "title": "t"}]}  # fmt: skip
        (tmp_path / "plans" / f"{plan_id}.json").write_text(json.dumps(plan))
    capacity = project_capacity(Loaded.load(tmp_path))
    root = tmp_path.resolve()
    assert capacity == {str(root / "shared"): 1, str(root / "own-p1"): 3, str(root / "own-p2"): 1}


def test_isolation_defaults_to_two_tasks_at_once(tmp_path: Path) -> None:
    plan = {"planId": "p", "projects": [{"name": "a", "path": "a", "isolation": "worktree"},
                                        {"name": "b", "path": "b"}],
            "tasks": [{"id": "t", "project": "a", "title": "t"}]}  # fmt: skip
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.json").write_text(json.dumps(plan))
    loaded = load_plan(tmp_path / "plans" / "p.json", tmp_path)
    assert (loaded.projects["a"].isolation, loaded.projects["a"].parallel) == ("worktree", 2)
    assert (loaded.projects["b"].isolation, loaded.projects["b"].parallel) == ("", 1)


def test_an_adopted_attempt_whose_worktree_was_deleted_runs_again(checkout: Checkout) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    go = checkout.root / "GO"
    held = [{"write": ["t1.txt", "1\n"]}, {"done": "t1"}, {"wait_file": str(go)}]
    checkout.scenario({"t1": [held, [{"write": ["t1.txt", "2\n"]}, {"done": "t1 again"}]]})
    write(checkout, [{"id": "t1"}])
    first = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(lambda: "[DONE:" in _log(checkout, "t1"))
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    subprocess.run(["rm", "-rf", str(tree(checkout, "t1"))], check=True)
    go.touch()
    pid = checkout.records()[0]["pid"]
    checkout.wait_for(lambda: not pid_alive(pid))
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert "worktree" in out(result) and "is gone" in out(result)
    assert [r["attempt"] for r in checkout.records()] == [1, 2]
    assert (repo / "t1.txt").read_text() == "2\n"
    assert_clean(repo)


def test_an_interrupted_run_keeps_the_worktrees_and_the_next_run_continues_in_them(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    hang = [{"write": ["half.txt", "half\n"]}, {"progress": [5, "begun"]}, {"hang": True}]
    checkout.scenario({t: [hang, [{"write": [f"{t}.txt", t]}, {"done": t}]] for t in ("t1", "t2")})
    write(checkout, [{"id": "t1"}, {"id": "t2"}], parallel=2)
    first = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(lambda: all("[PROGRESS:" in _log(checkout, t) for t in ("t1", "t2")))
    os.kill(first.pid, signal.SIGINT)
    first.communicate(timeout=30)
    assert first.returncode == 130
    assert len(worktrees(repo)) == 3 and merges(repo) == []
    assert (tree(checkout, "t1") / "half.txt").is_file()
    kept = {t["id"]: t["continuesIn"] for t in checkout.state(PLAN)["tasks"]}
    assert kept == {t: f".orch/worktrees/{PLAN}/{t}" for t in ("t1", "t2")}
    result = run(checkout)
    assert result.returncode == 0, out(result)
    records = [r for r in checkout.records() if r["attempt"] == 2]
    assert {r["cwd"] for r in records} == {str(tree(checkout, t)) for t in ("t1", "t2")}
    # The half done work of the interrupted attempts landed with the second attempts' work.
    assert (repo / "half.txt").read_text() == "half\n"
    assert (repo / "t1.txt").is_file() and (repo / "t2.txt").is_file()
    assert all(not t["continuesIn"] for t in checkout.state(PLAN)["tasks"])
    assert_clean(repo)


def test_a_question_keeps_the_worktree_and_the_answered_task_continues_in_it(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    checkout.scenario({"t1": [
        [{"write": ["draft.txt", "before asking\n"]}, {"git": ["add", "draft.txt"]},
         {"git": ["commit", "-qm", "the agent's commit before asking"]},
         {"write": ["notes.txt", "uncommitted\n"]}, {"question": "Postgres or SQLite?"}],
        [{"write": ["db.txt", "sqlite\n"]}, {"done": "db.txt"}],
    ]})  # fmt: skip
    write(checkout, [{"id": "t1"}])
    asked = run(checkout)
    assert asked.returncode != 0 and "Postgres or SQLite?" in out(asked)
    assert (tree(checkout, "t1") / "notes.txt").is_file()
    answered = checkout.doit("answer", f"{PLAN}:t1", "SQLite", env=NO_GIT_CONFIG)
    assert answered.returncode == 0, out(answered)
    result = run(checkout)
    assert result.returncode == 0, out(result)
    second = checkout.records()[-1]
    assert second["attempt"] == 2 and second["cwd"] == str(tree(checkout, "t1"))
    assert "SQLite" in second["prompt"]
    for name, text in (("draft.txt", "before asking\n"), ("notes.txt", "uncommitted\n"),
                       ("db.txt", "sqlite\n")):  # fmt: skip
        assert (repo / name).read_text() == text, name
    assert "the agent's commit before asking" in git(repo, "log", "--format=%s")
    assert merges(repo) == [f"Merge branch 'orch/{PLAN}/t1'"]
    assert_clean(repo)


def test_a_usage_limit_keeps_the_worktree_and_the_resumed_attempt_continues_in_it(
    checkout: Checkout,
) -> None:
    from test_profiles import STANDINS

    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    until = time.time() + 4  # the agent must start before it ends, on a loaded machine too
    agent = {"profile": "claude", "env": {"STANDIN_LIMIT_UNTIL": f"{until:.3f}",
                                          "STANDIN_TOUCH": "work"}}  # fmt: skip
    plan = {"planId": PLAN, "agent": agent, "defaults": {"retries": 0},
            "projects": [{"name": "app", "path": "app", "isolation": "worktree"}],
            "tasks": [{"id": "t1", "project": "app", "title": "t1"}]}  # fmt: skip
    checkout.write_plan(plan, f"{PLAN}.json")
    path = f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}"
    result = run(checkout, env={"PATH": path})
    assert result.returncode == 0, out(result)
    assert "usage limit" in out(result)
    # Attempt 1 wrote work.1 and hit the limit; attempt 2 (after the reset) continued in the
    # same worktree: both land.
    assert (repo / "work.1").read_text() == "attempt 1\n"
    assert (repo / "work.2").read_text() == "attempt 2\n"
    assert stamp(checkout, "t1")["attempt"] == 2
    assert_clean(repo)


def test_ctrl_c_while_verify_runs_keeps_the_done_work_for_the_next_attempt(
    checkout: Checkout,
) -> None:
    repo = checkout.root / "app"
    make_repo(repo, {"README": "app\n"})
    began, go = checkout.root / "verify-began", checkout.root / "GO"
    checkout.scenario({"t1": [[{"write": ["done.txt", "done\n"]}, {"done": "done.txt"}],
                              [{"done": "still done"}]]})  # fmt: skip
    write(checkout, [{"id": "t1", "verify": f"touch {began}; test -f {go} || sleep 60"}])
    first = checkout.start(env=NO_GIT_CONFIG)
    checkout.wait_for(began.exists, timeout=30)
    os.kill(first.pid, signal.SIGINT)
    first.communicate(timeout=30)
    assert first.returncode == 130
    go.touch()
    result = run(checkout)
    assert result.returncode == 0, out(result)
    assert checkout.records()[-1]["cwd"] == str(tree(checkout, "t1"))
    assert (repo / "done.txt").read_text() == "done\n", "the interrupted DONE's work landed"
    assert_clean(repo)
