"""End-to-end: plans run through the real `doit`, the real dispatcher and a fake agent."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Checkout


def test_seed_plan_runs_to_completion(checkout: Checkout) -> None:
    checkout.seed()
    result = checkout.doit()
    assert result.returncode == 0, result.stderr + result.stdout
    assert sorted(checkout.dispatched()) == ["t1", "t2", "t3", "t4"]
    for task in ("t1", "t2", "t3", "t4"):
        stamp = checkout.stamp(task)
        assert stamp is not None
        assert stamp["summary"] == f"did {task}"
        assert stamp["taskId"] == task
        assert set(stamp) >= {"finishedAt", "attempt", "terminalId", "specHash", "durationSeconds"}
    assert (checkout.root / "ecommerce-frontend").is_dir()
    records = {r["task"]: r for r in checkout.records()}
    assert records["t2"]["cwd"] == str((checkout.root / "ecommerce-backend").resolve())


def test_dependencies_finish_before_dependents_start(checkout: Checkout) -> None:
    checkout.seed()
    checkout.scenario({t: [[{"sleep": 0.2}, {"done": f"did {t}"}]] for t in ("t1", "t2", "t3")})
    assert checkout.doit().returncode == 0
    starts = {r["task"]: r["start"] for r in checkout.records()}
    finished = {t: _finished_epoch(checkout, t) for t in starts}
    assert starts["t3"] >= finished["t2"]
    assert starts["t4"] >= max(finished["t1"], finished["t3"])


def _finished_epoch(checkout: Checkout, task: str) -> float:
    from datetime import datetime

    stamp = checkout.stamp(task)
    assert stamp is not None
    return datetime.fromisoformat(stamp["finishedAt"].replace("Z", "+00:00")).timestamp()


def test_second_run_dispatches_nothing(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    before = len(checkout.records())
    again = checkout.doit()
    assert again.returncode == 0, again.stderr
    assert len(checkout.records()) == before


def test_lost_doit_db_reruns_nothing(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    before = len(checkout.records())
    for db in (checkout.root / ".orch").glob("doit.sqlite3*"):
        db.unlink()
    assert checkout.doit().returncode == 0
    assert len(checkout.records()) == before


def test_edited_task_reruns_with_its_dependents_only(checkout: Checkout) -> None:
    plan = checkout.seed()
    assert checkout.doit().returncode == 0
    plan["tasks"][2]["description"] = "JWT auth, now with 2FA"
    checkout.write_plan(plan)
    before = len(checkout.records())
    assert checkout.doit().returncode == 0
    assert sorted(checkout.dispatched()[before:]) == ["t3", "t4"]


def test_parallel_across_projects_serial_within_one(checkout: Checkout) -> None:
    plan = {
        "planId": "par",
        "agent": checkout.agent(),
        "projects": [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}],
        "tasks": [
            {"id": "a1", "project": "a", "title": "a1"},
            {"id": "a2", "project": "a", "title": "a2"},
            {"id": "b1", "project": "b", "title": "b1"},
        ],
    }
    checkout.write_plan(plan)
    checkout.scenario({t: [[{"sleep": 0.6}, {"done": t}]] for t in ("a1", "a2", "b1")})
    assert checkout.doit("-n", "3").returncode == 0
    spans = {r["task"]: (r["start"], _finished_epoch_plan(checkout, "par", r["task"]))
             for r in checkout.records()}  # fmt: skip
    a1, a2, b1 = spans["a1"], spans["a2"], spans["b1"]
    assert a2[0] >= a1[1] or a1[0] >= a2[1], "two tasks of one project overlapped"
    assert b1[0] < max(a1[1], a2[1]) and min(a1[0], a2[0]) < b1[1], "projects did not overlap"


def _finished_epoch_plan(checkout: Checkout, plan: str, task: str) -> float:
    from datetime import datetime

    stamp = checkout.stamp(task, plan)
    assert stamp is not None
    return datetime.fromisoformat(stamp["finishedAt"].replace("Z", "+00:00")).timestamp()


def test_waiting_for_a_project_does_not_hold_a_slot(checkout: Checkout) -> None:
    plan = {
        "planId": "slots",
        "agent": checkout.agent(),
        "projects": [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}],
        "tasks": [
            {"id": "a1", "project": "a", "title": "a1"},
            {"id": "a2", "project": "a", "title": "a2"},
            {"id": "b1", "project": "b", "title": "b1"},
        ],
    }
    checkout.write_plan(plan)
    checkout.scenario({t: [[{"sleep": 0.8}, {"done": t}]] for t in ("a1", "a2", "b1")})
    assert checkout.doit("-n", "2").returncode == 0
    starts = sorted((r["start"], r["task"]) for r in checkout.records())
    # b1 must start alongside the first task of a, not after it.
    assert starts[1][1] == "b1" or starts[0][1] == "b1"
    assert abs(starts[1][0] - starts[0][0]) < 0.6


def test_error_skips_dependents_and_rerun_resumes(checkout: Checkout) -> None:
    checkout.seed()
    checkout.scenario({"t3": [[{"error": "PostgreSQL connection refused"}]]})
    result = checkout.doit()
    assert result.returncode != 0
    assert "PostgreSQL connection refused" in result.stdout + result.stderr
    assert checkout.stamp("t3") is None and checkout.stamp("t4") is None
    assert checkout.stamp("t1") is not None and checkout.stamp("t2") is not None
    state = checkout.state()
    statuses = {t["id"]: t["status"] for t in _tasks(state)}
    assert statuses["t3"] == "ERROR" and statuses["t4"] == "SKIPPED"
    assert "t4" in result.stdout and "skipped" in result.stdout.lower()
    checkout.scenario({})
    before = len(checkout.records())
    assert checkout.doit().returncode == 0
    assert sorted(checkout.dispatched()[before:]) == ["t3", "t4"]


def _tasks(state: dict) -> list[dict]:
    tasks = state["tasks"]
    return list(tasks.values()) if isinstance(tasks, dict) else tasks


def test_failure_does_not_skip_unrelated_task_of_same_project(checkout: Checkout) -> None:
    plan = {
        "planId": "same",
        "agent": checkout.agent(),
        "projects": [{"name": "a", "path": "a"}],
        "tasks": [
            {"id": "x", "project": "a", "title": "x"},
            {"id": "y", "project": "a", "title": "y"},
        ],
    }
    checkout.write_plan(plan)
    checkout.scenario({"x": [[{"error": "nope"}]]})
    assert checkout.doit().returncode != 0
    assert checkout.stamp("y", "same") is not None


def test_a_misspelt_sandbox_or_executor_is_an_error_with_nothing_to_run(
    checkout: Checkout,
) -> None:
    task = {"id": "a", "project": "p", "title": "A", "command": "true"}
    checkout.write_plan({"planId": "w", "projects": [{"name": "p", "path": "p"}], "tasks": [task]})
    assert checkout.doit().returncode == 0
    for args, env, said in [
        (["--sandbox", "bwarp"], {}, "--sandbox 'bwarp' is not one of none, bwrap (did you mean"),
        ([], {"ORCH_SANDBOX": "box"}, "ORCH_SANDBOX 'box' is not one of none, bwrap"),
        (["--executor", "dsak"], {}, "--executor 'dsak' is not one of local, dask (did you mean"),
        ([], {"ORCH_EXECUTOR": "k8s"}, "ORCH_EXECUTOR 'k8s' is not one of local, dask"),
        (["-n", "abc"], {}, "run: -n/--process 'abc': expected a whole number (see `doit help"),
        (["--process=2.5"], {}, "run: -n/--process '2.5': expected a whole number"),
    ]:
        result = checkout.doit(*args, env=env)
        assert result.returncode == 3 and result.stderr.startswith(f"orchlib: {said}"), result


def test_a_folder_without_plans_gets_the_same_line_from_every_command(tmp_path: Path) -> None:
    """`doit` in a folder with a dodo.py but no plans/ said 'plans/ holds no plan', while
    `doit status` said there was no plans/ folder: one true line, from each entry point."""
    (tmp_path / "dodo.py").write_text("from orchlib.dodo import *  # noqa: F403\n")
    said = set()
    for argv in (["doit"], ["doit", "status"], ["doit", "draft", "x"], ["orchlib"]):
        result = subprocess.run([sys.executable, "-m", *argv], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
        assert result.returncode == 3 and result.stdout == "", result
        said.add(result.stderr)
    assert said == {f"orchlib: {tmp_path} is not a checkout (no plans/ folder): run it where "
                    "your plans/ folder is, or create one (see the README)\n"}  # fmt: skip


def test_orchlib_s_version_is_orchlib_s(tmp_path: Path) -> None:
    import doit

    import orchlib

    result = subprocess.run([sys.executable, "-m", "orchlib", "--version"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    doits = ".".join(map(str, doit.__version__))
    assert result.stdout == f"orchlib {orchlib.__version__} (doit {doits})\n", result


def test_an_empty_plans_folder_is_said_by_status_and_list_too(checkout: Checkout) -> None:
    """`doit status` printed nothing and `doit list` orchlib's own group task."""
    run = checkout.doit()
    assert run.returncode == 3 and "plans/ holds no plan with tasks" in run.stderr
    status = checkout.doit("status")
    assert status.returncode == 0 and status.stdout.startswith("plans/ holds no plan"), status
    named = checkout.doit("status", "shop")
    assert named.stderr == "orchlib: status: 'shop' names no plan or task (plans/ holds no plan)\n"
    listed = checkout.doit("list", "--all")
    assert listed.returncode == 0 and listed.stdout.startswith("plans/ holds no plan"), listed


def test_a_failed_task_exits_1_not_the_usage_limit_code(checkout: Checkout) -> None:
    checkout.seed()  # t3 fails, t4 is skipped: 1, as `doit help run` says (2 is a usage limit)
    checkout.scenario({"t3": [[{"error": "nope"}]]})
    result = checkout.doit()
    assert result.returncode == 1, result.stdout + result.stderr


def test_spoofed_markers_are_ignored(checkout: Checkout) -> None:
    checkout.seed()
    checkout.scenario({"t1": [[
        {"say": "[DONE:term-someone-else] not me"},
        {"say": "[DONE:] empty id"},
        {"say": "[ERROR:other] wrong id"},
        {"say": "[DONE:{tid}x] almost"},
        {"done": "the real one"},
    ]]})  # fmt: skip
    assert checkout.doit().returncode == 0
    assert checkout.stamp("t1")["summary"] == "the real one"  # type: ignore[index]


def test_ansi_and_json_escaped_markers(checkout: Checkout) -> None:
    checkout.seed()
    checkout.scenario({
        "t1": [[{"say": "\x1b[32m[DONE:{tid}]\x1b[0m coloured \x1b[1mdone\x1b[0m"}]],
        "t2": [[{"say": '{"type":"text","text":"ok [DONE:{tid}] json \\"quoted\\" '
                         'caf\\u00e9\\nmore"}'}]],
        "t3": [[{"echo_done": "quoted summary"}]],
    })  # fmt: skip
    assert checkout.doit().returncode == 0
    assert checkout.stamp("t1")["summary"] == "coloured done"  # type: ignore[index]
    assert checkout.stamp("t2")["summary"] == 'json "quoted" café'  # type: ignore[index]
    assert checkout.stamp("t3")["summary"] == "quoted summary"  # type: ignore[index]


def test_forget_reruns_task_and_its_dependents(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    forget = checkout.doit("forget", "orch-abc123:t3")
    assert forget.returncode == 0, forget.stderr
    assert checkout.stamp("t3") is None
    before = len(checkout.records())
    assert checkout.doit().returncode == 0
    assert sorted(checkout.dispatched()[before:]) == ["t3", "t4"]


def test_clean_removes_the_stamp(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    dry = checkout.doit("clean", "--dry-run", "orch-abc123:t1")
    assert dry.stdout == "orch-abc123:t1: would be cleaned\n", dry  # not doit's
    assert checkout.stamp("t1") is not None  # "executing 'Python: function _clean_stamp'"
    cleaned = checkout.doit("clean", "orch-abc123:t1")
    said = "orch-abc123:t1: cleaned, the next `doit` runs it\n"
    assert cleaned.returncode == 0 and cleaned.stdout == said
    assert checkout.stamp("t1") is None and checkout.stamp("t2") is not None


def test_info_says_why_a_task_would_run(checkout: Checkout) -> None:
    plan = checkout.seed()
    assert checkout.doit().returncode == 0
    plan["tasks"][0]["title"] = "Initialize Vite project"
    checkout.write_plan(plan)
    info = checkout.doit("info", "orch-abc123:t1")
    assert "spec changed" in info.stdout
    listing = checkout.doit("list", "--all")
    assert "orch-abc123:t4" in listing.stdout


def test_list_of_a_plan_lists_its_tasks(checkout: Checkout) -> None:
    checkout.seed()
    names = [line.split()[0] for line in checkout.doit("list", "orch-abc123").stdout.splitlines()]
    assert names == ["orch-abc123", *(f"orch-abc123:t{n}" for n in range(1, 5))], names
    listed = checkout.doit("list", "orch-abc123:t2").stdout.split()
    assert listed[0] == "orch-abc123:t2" and "orch-abc123:t1" not in listed


def test_python_m_orchlib_without_dodo(checkout: Checkout) -> None:
    checkout.seed()
    (checkout.root / "dodo.py").unlink()
    result = subprocess.run([sys.executable, "-m", "orchlib"], cwd=checkout.root,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert checkout.stamp("t4") is not None
    status = subprocess.run([sys.executable, "-m", "orchlib", "status"], cwd=checkout.root,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert status.returncode == 0 and "orch-abc123:t4" in status.stdout


def test_unicode_descriptions_and_summaries(checkout: Checkout) -> None:
    plan = checkout.seed()
    plan["tasks"][0]["description"] = "Créer l'app — 日本語 ✓ 🚀"
    checkout.write_plan(plan)
    checkout.scenario({"t1": [[{"done": "fait ✓ 完成 🚀"}]]})
    assert checkout.doit().returncode == 0
    assert checkout.stamp("t1")["summary"] == "fait ✓ 完成 🚀"  # type: ignore[index]
    prompt = next(r["prompt"] for r in checkout.records() if r["task"] == "t1")
    assert "Créer l'app — 日本語 ✓ 🚀" in prompt


def test_plan_text_reaches_no_shell_and_no_template(checkout: Checkout) -> None:
    plan = checkout.seed()
    evil = "$(touch pwned1) `touch pwned2` {{ 7*7 }} {% if true %}x{% endif %}"
    plan["tasks"][0]["description"] = evil
    plan["tasks"][0]["title"] = "{{ terminal_id }}"
    checkout.write_plan(plan)
    assert checkout.doit().returncode == 0
    prompt = next(r["prompt"] for r in checkout.records() if r["task"] == "t1")
    assert evil in prompt and "{{ terminal_id }}" in prompt
    assert not list(checkout.root.rglob("pwned*"))


def test_prompt_carries_task_dependencies_and_protocol(checkout: Checkout) -> None:
    checkout.seed(context="All APIs speak JSON.")
    checkout.scenario({"t2": [[{"done": "Express on :3000"}]]})
    assert checkout.doit().returncode == 0
    rec = next(r for r in checkout.records() if r["task"] == "t3")
    prompt, tid = rec["prompt"], rec["terminal_id"]
    for needle in ("t3", "Implement authentication API", "ecommerce-backend",
                   "Node.js + Express + PostgreSQL", "JWT auth with login", "Express on :3000",
                   "All APIs speak JSON.", f"[DONE:{tid}]", f"[PROGRESS:{tid}]",
                   f"[ERROR:{tid}]", f"[QUESTION:{tid}]"):  # fmt: skip
        assert needle in prompt, needle
    prompt_file = checkout.root / ".orch" / "orch-abc123" / "prompts" / f"t3.{rec['attempt']}.md"
    assert prompt_file.read_text() == prompt


def test_invalid_plan_exits_3_with_located_lines(checkout: Checkout) -> None:
    plan = checkout.seed()
    plan["tasks"][2]["dependsOn"] = ["t9"]
    checkout.write_plan(plan)
    result = checkout.doit()
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "plans/plan.json:" in result.stderr and "unknown task 't9'" in result.stderr


def test_missing_agent_is_a_clear_early_error(checkout: Checkout) -> None:
    plan = checkout.seed()
    plan["agent"] = "claude"
    checkout.write_plan(plan)
    result = checkout.doit(env={"PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "agent 'claude' not found on PATH (tasks t1, t2, t3, t4)" in result.stderr
    assert not checkout.records()


def test_shell_tasks_with_verify_and_outputs(checkout: Checkout) -> None:
    plan = {
        "planId": "sh",
        "projects": [{"name": "p", "path": "p"}],
        "tasks": [
            {"id": "make", "project": "p", "title": "make",
             "command": "echo hi > out.txt; echo built",
             "outputs": ["out.txt"], "verify": ["grep", "-q", "hi", "out.txt"]},
            {"id": "bad", "project": "p", "title": "bad", "command": ["sh", "-c", "exit 4"]},
        ],
    }  # fmt: skip
    checkout.write_plan(plan)
    result = checkout.doit()
    assert result.returncode != 0
    assert checkout.stamp("make", "sh")["summary"] == "built"  # type: ignore[index]
    assert checkout.stamp("bad", "sh") is None
    assert "exited with code 4" in result.stdout


def test_shipped_demo_plan_runs(tmp_path: Path) -> None:
    repo = Path(__file__).parent.parent
    co = tmp_path / "repo"
    co.mkdir()
    shutil.copy(repo / "dodo.py", co / "dodo.py")
    shutil.copytree(repo / "plans", co / "plans")
    first = subprocess.run([sys.executable, "-m", "doit"], cwd=co, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Hello, Grace!" in (co / "demo-workspace/greeter-app/RELEASE.md").read_text()
    second = subprocess.run([sys.executable, "-m", "doit"], cwd=co, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert second.returncode == 0
    stamps = json.loads((co / ".orch/demo/stamps/release.json").read_text())
    assert stamps["summary"] == "RELEASE.md written"


def test_within_a_phase_the_critical_path_goes_first(checkout: Checkout) -> None:
    plan = {
        "planId": "crit",
        "agent": checkout.agent(),
        "projects": [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}],
        "tasks": [
            {"id": "light", "project": "a", "title": "light", "estimatedMinutes": 1},
            {"id": "head", "project": "a", "title": "head", "estimatedMinutes": 1},
            {"id": "long", "project": "b", "title": "long", "estimatedMinutes": 60,
             "dependsOn": ["head"]},
            {"id": "later", "project": "a", "title": "later", "dependsOn": ["light"]},
        ],
    }  # fmt: skip
    checkout.write_plan(plan)
    assert checkout.doit().returncode == 0
    order = [r["task"] for r in sorted(checkout.records(), key=lambda r: r["start"])]
    assert order.index("head") < order.index("light"), order  # same phase: longest path first
    assert order.index("light") < order.index("later"), order  # phases stay in order


def test_a_task_that_holds_up_its_projects_long_task_goes_first(checkout: Checkout) -> None:
    """The critical path counts project order: `gate` must run before project a's `long`."""
    plan = {
        "planId": "gate",
        "agent": checkout.agent(),
        "projects": [{"name": n, "path": n} for n in ("a", "b", "z")],
        "tasks": [
            {"id": "side", "project": "b", "title": "side", "estimatedMinutes": 2},
            {"id": "gate", "project": "a", "title": "gate", "estimatedMinutes": 1},
            {"id": "feed", "project": "z", "title": "feed", "estimatedMinutes": 1},
            {"id": "long", "project": "a", "title": "long", "estimatedMinutes": 5,
             "dependsOn": ["feed"]},
        ],
    }  # fmt: skip
    checkout.write_plan(plan)
    slow = [[{"sleep": 0.5}, {"done": "ok"}]]  # the first two surely start before a third
    checkout.scenario({"gate": slow, "feed": slow})
    assert checkout.doit("-n", "2").returncode == 0
    order = [r["task"] for r in sorted(checkout.records(), key=lambda r: r["start"])]
    # By dependencies alone `side` (2) outranks `gate` (1); but `long` (5) waits for `gate`,
    # its project's earlier-phase task, so `gate` is on the longest path.
    assert set(order[:2]) == {"gate", "feed"}, order


@pytest.mark.parametrize(
    "argv",
    [
        ["doit", "list", "--all"],
        ["doit", "info", "big:t0"],
        ["doit", "status"],
        ["python", "-m", "orchlib", "list", "--all"],
        ["python", "-m", "orchlib", "forget", "big:t1"],
        ["python", "-m", "orchlib", "clean", "big:t1"],
        ["python", "-m", "orchlib", "ignore", "big:t1"],
    ],
)
def test_commands_end_cleanly_when_the_reader_goes_away(
    checkout: Checkout, argv: list[str]
) -> None:
    """`doit list | head`: no traceback; doit's forget/clean/ignore exit 0 via python -m orchlib."""
    description = "a task with a long description to fill the pipe " * 4
    checkout.write_plan({
        "planId": "big",
        "projects": [{"name": "p", "path": "p"}],
        "tasks": [{"id": f"t{i}", "project": "p", "title": description, "command": "true",
                   "description": description} for i in range(1500)],
    })  # fmt: skip
    cmd = [sys.executable if a == "python" else a for a in argv]
    if cmd[0] == "doit":
        cmd = [sys.executable, "-m", "doit", *cmd[1:]]
    with subprocess.Popen(
        cmd, cwd=checkout.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert code in (0, 1), (code, err)


def test_a_project_path_that_is_a_file_is_a_located_error(checkout: Checkout) -> None:
    (checkout.root / "notes").write_text("not a folder")
    checkout.write_plan(
        "planId: p\n"
        "projects:\n"
        "  - {name: a, path: ./notes}\n"
        "  - {name: b, path: ./ok}\n"
        "tasks:\n"
        "  - {id: t1, project: a, title: x, command: 'true'}\n"
        "  - {id: t2, project: b, title: y, command: 'true'}\n",
        name="p.yaml",
    )
    result = checkout.doit()
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "plans/p.yaml:3:21: projects[0].path: cannot use './notes' as the project folder: "
        "it is a file"
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert checkout.stamp("t2", "p") is None  # nothing was dispatched
    assert (checkout.root / "notes").read_text() == "not a folder"
