"""What the screen says is true (issue 9): status, state files, answers and commands agree
with the stamps, and every command a user can reach ends in one clear line.

Every test runs the real `doit` (or `python -m orchlib`) in a tmp checkout, with the fake
agent or shell tasks as the real processes doing the work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout

P = "orch-abc123"


def shell_plan(co: Checkout, **task_extra: Any) -> None:
    """Plan `sh`: a -> b -> c, shell tasks in project `w`; a has an output, b an input."""
    done = 'echo "[DONE:$TERMINAL_ID] did {}"'
    tasks = [
        {"id": "a", "title": "A", "command": f"echo hi > a.txt; {done.format('a')}",
         "outputs": ["a.txt"]},
        {"id": "b", "title": "B", "command": done.format("b"), "inputs": ["in.txt"],
         "dependsOn": ["a"]},
        {"id": "c", "title": "C", "command": done.format("c"), "dependsOn": ["b"]},
    ]  # fmt: skip
    for task in tasks:
        task.update({"project": "w", **task_extra.get(str(task["id"]), {})})
    (co.root / "w").mkdir(exist_ok=True)
    (co.root / "w" / "in.txt").write_text("v1\n")
    co.write_plan({"planId": "sh", "projects": [{"name": "w", "path": "w"}], "tasks": tasks},
                  "sh.json")  # fmt: skip


def rows(co: Checkout, plan: str) -> tuple[str, dict[str, tuple[str, str]]]:
    """`doit status PLAN`: its head line and, per task, (STATE, LAST)."""
    out = co.doit("status", plan)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = lines[1]
    state_at, last_at, log_at = (header.index(n) for n in ("STATE", "LAST", "PROJECT"))
    found = {}
    for line in lines[2:]:
        if not line.startswith(f"{plan}:"):
            break
        found[line.split()[0].split(":", 1)[1]] = (line[state_at:log_at].strip(),
                                                   line[last_at:].strip())  # fmt: skip
    return lines[0], found


def info_reason(co: Checkout, name: str) -> str:
    out = co.doit("info", name)
    first = out.stdout.splitlines()[0]
    return first.split(": would run: ", 1)[1] if ": would run: " in first else ""


def assert_agree(co: Checkout, plan: str, task: str, reason: str) -> None:
    """status, state.json, orchestration.md and `doit info` all say `task` would run for
    `reason`, and the plan is not completed."""
    head, table = rows(co, plan)
    assert table[task] == ("PENDING", f"would run: {reason}"), table
    assert "completed" not in head
    state = co.state(plan)
    record = next(t for t in state["tasks"] if t["id"] == task)
    assert (record["status"], record["pendingReason"]) == ("PENDING", reason)
    assert state["status"] != "completed"
    md = co.md(plan)
    assert f"- **{task}** [PENDING]" in md and f"  - Would run: {reason}" in md
    assert "status: completed" not in md
    assert info_reason(co, f"{plan}:{task}") == reason


def test_status_state_and_info_follow_the_stamps_after_every_kind_of_change(
    checkout: Checkout,
) -> None:
    shell_plan(checkout)
    assert checkout.doit().returncode == 0
    w = checkout.root / "w"

    changes = [
        (lambda: checkout.doit("clean", "sh:a"), "a", "no completion stamp"),
        (lambda: checkout.doit("forget", "sh:b"), "b", "no completion stamp"),
        (lambda: (w / "a.txt").unlink(), "a", "output 'a.txt' is missing"),
        (lambda: (w / "in.txt").write_text("v2\n"), "b", "input 'in.txt' changed"),
        (lambda: checkout.doit("-a", "sh:a"), "b", "dependency a was redone after it"),
    ]
    for change, task, reason in changes:
        change()
        assert_agree(checkout, "sh", task, reason)
        assert rows(checkout, "sh")[1]["c"][0] == "PENDING"  # its dependent, Make-style
        run = checkout.doit()
        assert run.returncode == 0, run.stdout + run.stderr
        head, table = rows(checkout, "sh")
        assert head.startswith("sh: completed") and {s for s, _ in table.values()} == {"DONE"}

    plan = json.loads((checkout.root / "plans" / "sh.json").read_text())
    plan["tasks"][2]["description"] = "edited"
    checkout.write_plan(plan, "sh.json")
    assert_agree(checkout, "sh", "c", "the task's spec changed since it was done")


def test_a_no_op_run_repairs_state_left_by_a_kill_after_the_last_stamp(
    checkout: Checkout,
) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    state_file = checkout.root / ".orch" / P / "state.json"
    # What SIGKILL between the last stamp and the final state write leaves: the run never
    # ended, t4 still IN_PROGRESS; and a task the plan no longer has.
    stale = json.loads(state_file.read_text())
    stale["status"], stale["run"]["endedAt"] = "in_progress", ""
    t4 = next(t for t in stale["tasks"] if t["id"] == "t4")
    t4.update(status="IN_PROGRESS", percent=60, summary="", finishedAt="")
    stale["tasks"].append({**t4, "id": "gone", "title": "Removed from the plan"})
    state_file.write_text(json.dumps(stale))
    (checkout.root / ".orch" / P / "orchestration.md").write_text("stale\n")

    out = checkout.doit()
    assert out.returncode == 0 and "nothing to do" in out.stdout
    state = checkout.state()
    assert state["status"] == "completed" and state["run"]["endedAt"]
    assert [(t["id"], t["status"]) for t in state["tasks"]] == [
        (t, "DONE") for t in ("t1", "t2", "t3", "t4")
    ]
    assert "status: completed" in checkout.md() and "gone" not in checkout.md()
    assert "[IN_PROGRESS" not in checkout.md()
    # Agreeing files are not rewritten by the next no-op.
    before = state_file.stat().st_mtime_ns
    assert checkout.doit().returncode == 0
    assert state_file.stat().st_mtime_ns == before


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05])
def test_sigkill_right_after_the_last_stamp_then_a_no_op_run(
    checkout: Checkout, delay: float
) -> None:
    shell_plan(checkout, c={"command": 'echo "[DONE:$TERMINAL_ID] c"; sleep 0.3'})
    run = checkout.start()
    stamp = checkout.root / ".orch" / "sh" / "stamps" / "c.json"
    checkout.wait_for(stamp.exists, timeout=30)
    time.sleep(delay)
    os.killpg(run.pid, 9)
    run.communicate(timeout=10)
    out = checkout.doit()
    assert out.returncode == 0 and "nothing to do" in out.stdout
    state = checkout.state("sh")
    assert state["status"] == "completed" and state["run"]["endedAt"]
    assert {t["status"] for t in state["tasks"]} == {"DONE"}
    md = checkout.md("sh")
    assert "status: completed" in md and md.count("[DONE]") == 3


def question_plan(co: Checkout) -> None:
    co.seed()
    co.scenario({"t1": [[{"question": "Which port?"}], [{"done": "ok"}]]})


def test_answers_are_stored_exactly_replaced_until_used_and_shown(checkout: Checkout) -> None:
    question_plan(checkout)
    assert checkout.doit().returncode != 0
    info = checkout.doit("info", f"{P}:t1").stdout
    assert "waits for an answer" in info and "  stamp: none\n" in info  # no stamp path yet
    given = checkout.doit("answer", f"{P}:t1", "use port=5432")
    assert given.returncode == 0, given.stderr
    q = next(t for t in checkout.state()["tasks"] if t["id"] == "t1")["questions"][-1]
    assert q["answer"] == "use port=5432"
    for bad in (["--"], [], ["--", "--"]):
        refused = checkout.doit("answer", f"{P}:t1", *bad)
        assert refused.returncode == 3 and refused.stderr.startswith("orchlib: ")
    empty = orchlib_cli(checkout, "answer", f"{P}:t1", "")
    assert empty.returncode == 3 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    again = checkout.doit("answer", f"{P}:t1", "--", "x=1 and y=2")
    assert again.returncode == 0 and "replacing" in again.stdout
    _, table = rows(checkout, P)
    assert table["t1"] == ("ANSWERED", "answered: x=1 and y=2 — run `doit` to resume")
    assert f"{P}:t1 is answered: run `doit` to resume it" in checkout.doit("status").stdout
    md = checkout.md()  # orchestration.md's next step is doit status's (state/words.py)
    assert "  - Answer: x=1 and y=2" in md and f"Next: {P}:t1 is answered: run \\`doit\\`" in md
    assert checkout.doit().returncode == 0
    prompt = [r for r in checkout.records() if r["task"] == "t1"][-1]["prompt"]
    assert "x=1 and y=2" in prompt and "5432" not in prompt


def orchlib_cli(co: Checkout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchlib", *args], cwd=co.root,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["info", "nope"], ["forget"], ["nope"], [f"{P}:t9"], ["-n", "-1"], ["-n", "abc"],
     ["help", "nope"], ["info"], ["log", "nope"], ["status", "nope"], ["clean", "nope:x"],
     ["accept"], ["list", "nope"], ["--sandbox", "bwarp"], ["log", "x:y", "--bogus"],
     ["serve", "--port", "abc"], ["draft", "--rounds", "abc"]],
)  # fmt: skip
def test_no_traceback_one_line_non_zero(checkout: Checkout, args: list[str]) -> None:
    checkout.seed()
    out = checkout.doit(*args)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.startswith("orchlib: ") and out.stderr.count("\n") == 1, out.stderr
    assert checkout.records() == []


def test_an_unknown_option_is_named_without_doits_option_dump(checkout: Checkout) -> None:
    checkout.seed()
    out = checkout.doit("--no-such-option")
    assert out.returncode == 3, out.stderr
    assert out.stderr == (
        "orchlib: run: option --no-such-option not recognized (see `doit help run`)\n"
    )


def test_empty_arguments_through_python_m_orchlib(checkout: Checkout) -> None:
    checkout.seed()
    for args in ([""], ["answer", f"{P}:t1", ""]):
        out = orchlib_cli(checkout, *args)
        assert (
            out.returncode == 3 and out.stderr.startswith("orchlib: ") and "Trace" not in out.stderr
        )


def _long_options(command: str) -> list[str]:
    """The `--name` options orchlib's command declares itself (doit's own are not shown)."""
    from orchlib.doitedge import commandtable

    cls = commandtable.COMMANDS[command].load()
    doits = [o for base in cls.__mro__[1:] if base.__module__.startswith("doit.")
             for o in vars(base).get("cmd_options", ())]  # fmt: skip
    return [f"--{o['long']}" for o in cls.cmd_options if o.get("long") and o not in doits]


def test_help_piped_to_head_and_in_orchlibs_words(checkout: Checkout) -> None:
    checkout.seed()
    piped = subprocess.run(f"{sys.executable} -m doit help run | head -1", shell=True,
                           cwd=checkout.root, capture_output=True, text=True)  # fmt: skip
    assert piped.returncode == 0 and "Traceback" not in piped.stderr
    assert "stamp" in checkout.doit("help").stdout
    assert "agents at once" in checkout.doit("help", "run").stdout
    assert "dependents" in checkout.doit("help", "forget").stdout
    for topic in ("clean", "accept", "answer", "status", "log", "info", "list", "approve",
                  "reject", "serve", "mcp", "skill", "draft"):  # fmt: skip
        text = checkout.doit("help", topic).stdout
        assert text.startswith(f"doit {topic}") and "DB" not in text
        # every option the command takes is in its help (`doit log --review` was missing)
        assert not [o for o in _long_options(topic) if o not in text], topic
    run = checkout.doit("help", "run").stdout  # every option of the run, the new ones too
    assert all(f"--{o}" in run for o in ("sandbox", "executor", "scheduler", "no-wait-limits"))
    assert "Approve / Reject" in checkout.doit("help", "serve").stdout


def test_command_dash_dash_help_is_its_help_and_runs_nothing(checkout: Checkout) -> None:
    """`doit draft --help` started an agent with the goal "--help"; `doit serve --help` was
    an unknown option; `doit status --help` looked for a plan named so."""
    from orchlib.doitedge import commandtable
    from orchlib.doitedge.helpcmd import topic

    checkout.seed()
    for name, entry in commandtable.COMMANDS.items():
        if not entry.topic:
            continue
        for flag in ("--help", "-h"):
            result = checkout.doit(name, flag, env={"PATH": f"{Path(sys.executable).parent}"})
            assert result.returncode == 0 and result.stdout == topic(name), (name, result)
    assert not (checkout.root / ".orch" / "drafts").exists() and checkout.records() == []


def test_single_runs_the_plan_or_just_the_task(checkout: Checkout) -> None:
    checkout.seed()
    out = checkout.doit("-s", f"{P}:t3")
    assert out.returncode == 0 and checkout.dispatched() == ["t3"]
    assert checkout.doit("clean", f"{P}:t3").returncode == 0
    out = checkout.doit("-s", P)
    assert out.returncode == 0, out.stdout + out.stderr
    order = checkout.dispatched()[1:]
    assert sorted(order) == ["t1", "t2", "t3", "t4"]
    assert order.index("t2") < order.index("t3") < order.index("t4")


def test_info_of_a_plan_is_its_state(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit(f"{P}:t1").returncode == 0
    out = checkout.doit("info", P)
    assert out.returncode == 0 and out.stdout.startswith(f"{P}: in_progress, 1/4 done")
    assert "task_dep" not in out.stdout and "plans/plan.json" in out.stdout


@pytest.mark.slow
def test_writers_are_refused_during_a_run_readers_work(checkout: Checkout) -> None:
    gate = checkout.root / "go"
    checkout.seed()
    checkout.scenario({"t2": [[{"say": "working"}, {"wait_file": str(gate)}, {"done": "x"}]]})
    assert checkout.doit(f"{P}:t1").returncode == 0
    run = checkout.start(f"{P}:t2")
    try:
        checkout.wait_for(lambda: any(r["task"] == "t2" for r in checkout.records()))
        for args in (["forget", f"{P}:t1"], ["clean", f"{P}:t1"], ["accept", f"{P}:t1"]):
            out = checkout.doit(*args)
            assert out.returncode != 0 and f"pid {run.pid}" in out.stderr, out.stderr
            assert out.stderr.count("\n") == 1
        assert checkout.stamp("t1") is not None
        for args in (["status"], ["list"], ["info", f"{P}:t1"], ["log", f"{P}:t2"]):
            out = checkout.doit(*args)
            assert out.returncode == 0, (args, out.stderr)
        assert "working" in checkout.doit("log", f"{P}:t2").stdout
    finally:
        gate.touch()
    run.communicate(timeout=30)
    assert run.returncode == 0


def test_shell_tasks_follow_the_marker_protocol(checkout: Checkout) -> None:
    esc = "\\033"
    tasks = [
        ("err", 'echo "[ERROR:$TERMINAL_ID] ERROR: disk full"; exit 0'),
        ("ask", 'echo "[QUESTION:$TERMINAL_ID] which disk?"'),
        ("lie", 'echo "[DONE:$TERMINAL_ID] fine"; exit 1'),
        ("ansi", f"printf '{esc}[31mred text{esc}[0m\\n'"),
        ("prog", 'echo "[PROGRESS:$TERMINAL_ID] 100% - all copied"'),
        ("bare", 'echo "[ERROR:$TERMINAL_ID]"'),
    ]
    checkout.write_plan({
        "planId": "sm", "projects": [{"name": "w", "path": "w"}],
        "tasks": [{"id": i, "title": i, "command": c, "project": "w"} for i, c in tasks],
        "defaults": {"retries": 0},
    }, "sm.json")  # fmt: skip
    out = checkout.doit("-n", "6")
    assert out.returncode != 0
    state = {t["id"]: t for t in checkout.state("sm")["tasks"]}
    assert (state["err"]["status"], state["err"]["error"]) == ("ERROR", "disk full")
    assert state["err"]["attempt"] == 1
    assert state["ask"]["status"] == "QUESTION"
    assert state["ask"]["questions"][0]["question"] == "which disk?"
    assert state["lie"]["status"] == "ERROR" and checkout.stamp("lie", "sm") is None
    assert state["ansi"]["summary"] == "red text"
    assert checkout.stamp("ansi", "sm")["summary"] == "red text"  # type: ignore[index]
    assert state["prog"]["summary"] == "all copied"
    assert state["bare"]["error"] == "the agent gave no details"
    assert "disk full" in checkout.md("sm") and "ERROR: disk full" not in checkout.md("sm")
    text = out.stdout + checkout.md("sm") + json.dumps(checkout.state("sm"))
    assert "\x1b" not in text and "\\u001b" not in text
    assert "[PROGRESS:" not in text and "[ERROR:" not in text and "ERROR: ERROR" not in text


def test_no_plan_says_what_to_do(tmp_path: Path) -> None:
    co = Checkout(tmp_path / "c")
    out = co.doit()
    assert out.returncode == 3 and out.stderr.count("\n") == 1
    assert "docs/plans.md" in out.stderr and "doit draft" in out.stderr
    co.write_plan({"planId": "e", "projects": [{"name": "w", "path": "w"}], "tasks": []})
    out = co.doit()
    assert out.returncode == 3 and "docs/plans.md" in out.stderr
    bare = tmp_path / "not-a-checkout"
    bare.mkdir()
    out = subprocess.run([sys.executable, "-m", "orchlib"], cwd=bare, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 3 and "not a checkout" in out.stderr
    assert list(bare.iterdir()) == []


def test_dry_run_lists_what_would_run_and_runs_nothing(checkout: Checkout) -> None:
    checkout.seed()
    assert checkout.doit().returncode == 0
    assert checkout.doit("clean", f"{P}:t2").returncode == 0
    before = checkout.records()
    out = checkout.doit("--dry-run")
    assert out.returncode == 0 and checkout.records() == before
    lines = [line.split() for line in out.stdout.splitlines() if line.startswith("would run")]
    assert [words[2] for words in lines] == [f"{P}:t2", f"{P}:t3", f"{P}:t4"]
    assert out.stdout.splitlines()[0].endswith("no completion stamp")
    assert checkout.stamp("t2") is None


def test_log_prints_follows_and_decodes(checkout: Checkout) -> None:
    gate = checkout.root / "go"
    checkout.seed()
    checkout.scenario({"t1": [[{"say": "first"}, {"wait_file": str(gate)}, {"say": "second"},
                               {"done": "ok"}]]})  # fmt: skip
    run = checkout.start(f"{P}:t1")
    try:
        checkout.wait_for(lambda: (checkout.root / ".orch" / P / "logs" / "t1.1.log").exists()
                          and "first" in checkout.doit("log", f"{P}:t1").stdout)  # fmt: skip
        follow = subprocess.Popen([sys.executable, "-m", "doit", "log", "-f", f"{P}:t1"],
                                  cwd=checkout.root, stdout=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(0.5)
        assert follow.poll() is None  # still following: the attempt runs
    finally:
        gate.touch()
    out, _ = follow.communicate(timeout=30)
    assert follow.returncode == 0 and "first" in out and "second" in out and "[DONE:" in out
    run.communicate(timeout=30)
    assert run.returncode == 0
    assert checkout.doit("log", "--attempt", "1", f"{P}:t1").stdout == out
    assert checkout.doit("log", "--attempt", "7", f"{P}:t1").returncode == 3


def test_log_and_status_take_their_options_after_the_names_too(checkout: Checkout) -> None:
    shell_plan(checkout)  # the README writes `doit log PLAN:TASK [-f]`
    assert checkout.doit().returncode == 0
    first = checkout.doit("log", "--attempt", "1", "--raw", "sh:a")
    assert first.returncode == 0 and "[DONE:" in first.stdout, first.stderr
    for args in (["sh:a", "-f"], ["sh:a", "--attempt", "1", "--raw"],
                 ["-f", "sh:a", "--raw"], ["sh:a", "--raw", "--attempt=1"]):  # fmt: skip
        after = checkout.doit("log", *args)
        assert (after.returncode, after.stdout) == (0, first.stdout), (args, after.stderr)
    assert checkout.doit("log", "sh:a", "sh:b").returncode == 3  # still one task
    after = checkout.doit("status", "sh:a", "--json")  # status too: `doit status shop --json`
    assert after.returncode == 0 and json.loads(after.stdout)["plans"], after.stderr


def test_accept_takes_an_edit_as_done(checkout: Checkout) -> None:
    shell_plan(checkout)
    assert checkout.doit().returncode == 0
    plan = json.loads((checkout.root / "plans" / "sh.json").read_text())
    plan["tasks"][0]["title"] = "A, spelled right"
    checkout.write_plan(plan, "sh.json")
    assert rows(checkout, "sh")[1]["a"][0] == "PENDING"
    out = checkout.doit("accept", "sh:a")
    assert out.returncode == 0 and "accepted" in out.stdout
    assert {s for s, _ in rows(checkout, "sh")[1].values()} == {"DONE"}
    assert "nothing to do" in checkout.doit().stdout
    (checkout.root / "w" / "a.txt").unlink()
    refused = checkout.doit("accept", "sh")
    assert refused.returncode == 3 and "'a.txt' is missing" in refused.stderr
    assert checkout.doit("clean", "sh:c").returncode == 0
    refused = checkout.doit("accept", "sh:c")
    assert refused.returncode == 3 and "no stamp" in refused.stderr


def test_status_json_filter_and_wide_characters(checkout: Checkout) -> None:
    checkout.write_plan({
        "planId": "cjk", "projects": [{"name": "前端", "path": "fe"}, {"name": "be", "path": "be"}],
        "tasks": [{"id": "t1", "title": "x", "project": "前端", "command": "echo 完成了"},
                  {"id": "t2", "title": "y", "project": "be", "command": "echo ok"}],
    }, "cjk.json")  # fmt: skip
    assert checkout.doit().returncode == 0
    table = checkout.doit("status").stdout.splitlines()
    from orchlib.state.table import display_width

    starts = {display_width(line[: line.index(" 1 ")]) for line in table[2:4]}
    assert len(starts) == 1  # the ATTEMPT column lines up under wide characters
    doc = json.loads(checkout.doit("status", "--json", "cjk:t1").stdout)
    (plan,) = doc["plans"]
    assert [t["id"] for t in plan["tasks"]] == ["t1"] and plan["tasks"][0]["last"] == "完成了"
    assert plan["tasks"][0]["log"].endswith("t1.1.log") and plan["tasks"][0]["elapsedSeconds"] >= 0
    assert "totals" in doc


def test_run_takes_every_option_of_doits_run() -> None:
    """orchlib's run extends doit's through `_execute`, whose parameters name the options
    doit passes: every option of the installed doit must be among them (pins doit 0.36/0.37)."""
    import inspect

    from doit.cmd_run import Run as DoitRun

    from orchlib.doitedge.loader import PlanLoader
    from orchlib.doitedge.runcmd import Run

    ours = inspect.signature(Run(task_loader=PlanLoader(), config={}, cmds={})._execute).parameters
    names = {opt["name"] for opt in DoitRun.cmd_options} - {"continue"}  # passed as continue_
    assert names | {"continue_", "force_verbosity"} <= set(ours)
    assert "dry_run" in ours and "outfile" in ours


def test_every_error_line_has_one_form(checkout: Checkout) -> None:
    """A bad plan: one located line per problem, for every command (no doit `ERROR:`)."""
    checkout.write_plan("planId: x\nprojects: []\ntasks:\n  - id: t1\n    project: nope\n",
                        "x.yaml")  # fmt: skip
    for args in ([], ["status"], ["list"], ["answer", "x:t1", "y"], ["log", "x:t1"]):
        out = checkout.doit(*args)
        assert out.returncode == 3
        lines = out.stderr.splitlines()
        assert len(lines) == 2 and all(line.startswith("plans/x.yaml:") for line in lines), lines


def test_pre_run_checks_report_every_problem_at_once(checkout: Checkout) -> None:
    (checkout.root / "blocker").write_text("a file, not a folder\n")
    checkout.write_plan({
        "planId": "pre", "agent": {"command": ["no-such-agent-cli"]},
        "projects": [{"name": "a", "path": "blocker"}, {"name": "b", "path": "b"}],
        "tasks": [{"id": "t1", "title": "x", "project": "a", "command": "true"},
                  {"id": "t2", "title": "y", "project": "b"}],
    }, "pre.json")  # fmt: skip
    out = checkout.doit()
    assert out.returncode == 3
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and "not found on PATH" in lines[0] and "it is a file" in lines[1]


def test_elapsed_sums_the_attempts_across_runs_without_the_wait_between(
    checkout: Checkout,
) -> None:
    """DESIGN §15: asked in one run, done in the next: elapsed is the two attempts' running
    time, not the time the question waited."""
    plan = {"planId": "el", "agent": checkout.agent(), "projects": [{"name": "a", "path": "a"}],
            "tasks": [{"id": "t1", "project": "a", "title": "t1"}]}  # fmt: skip
    checkout.write_plan(plan, "el.json")
    checkout.scenario({"t1": [[{"sleep": 0.6}, {"question": "which?"}],
                              [{"sleep": 0.6}, {"done": "this one"}]]})  # fmt: skip
    assert checkout.doit().returncode != 0
    asked = next(t for t in checkout.state("el")["tasks"] if t["id"] == "t1")
    assert 0.6 <= asked["worked"] < 2.0, asked
    time.sleep(2.0)  # the question waits: not work
    assert checkout.doit("answer", "el:t1", "that").returncode == 0
    done = checkout.doit()
    assert done.returncode == 0, done.stdout + done.stderr
    stamp = checkout.stamp("t1", "el")
    assert stamp is not None and 1.2 <= stamp["durationSeconds"] < 3.2, stamp
    record = next(t for t in checkout.state("el")["tasks"] if t["id"] == "t1")
    assert record["duration"] == record["worked"] == stamp["durationSeconds"]
