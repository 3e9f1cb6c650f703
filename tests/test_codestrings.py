"""Plan text never becomes code (DESIGN §13): a placeholder that carries plan text inside
the code string of a shell or interpreter is a located plan error; as its own argument it
is data, proven by a real run whose task title is `$(touch PWNED)`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import Checkout

from orchlib.errors import PlanError
from orchlib.plan.codestrings import code_arguments, program
from orchlib.plan.file import load_plan

HOSTILE = "$(touch PWNED)`touch PWNED2`"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["sh", "-c", "x"], [2]),
        (["/bin/bash", "-lc", "x"], [2]),
        (["bash", "-o", "pipefail", "-c", "x"], [4]),
        (["zsh", "-e", "-c", "x", "arg0"], [3]),
        (["dash", "-c", "--", "x"], [3]),
        (["env", "A=1", "sh", "-c", "x"], [4]),
        (["timeout", "9", "bash", "-c", "x"], [4]),
        (["docker", "exec", "box", "sh", "-c", "x"], [5]),
        (["python3", "-c", "x"], [2]),
        (["python3.12", "-Bc", "x"], [2]),
        (["python", "-cx"], [1]),
        (["python", "-W", "ignore", "-c", "x"], [4]),
        (["node", "-e", "x"], [2]),
        (["node", "--eval=x"], [1]),
        (["node", "-pe", "x"], [2]),
        (["deno", "eval", "x"], [2]),
        (["perl", "-ne", "x"], [2]),
        (["ruby", "-e", "x"], [2]),
        (["php", "-r", "x"], [2]),
        (["pwsh", "-Command", "x"], [2]),
        (["awk", "-F,", "{print}", "file"], [2]),
        (["ssh", "host", "x"], [1, 2]),
        # Not code: a script file, stdin, a module, an awk file, a plain program.
        (["sh", "script.sh", "x"], []),
        (["sh", "-s", "x"], []),
        (["sh", "-c", 'tool "$1"', "sh", "x"], [2]),
        (["python", "-m", "tool", "-c", "x"], []),
        (["awk", "-f", "prog.awk", "x"], []),
        (["claude", "-p", "x"], []),
    ],
)
def test_code_arguments(argv: list[str], code: list[int]) -> None:
    assert [index for index, _ in code_arguments(argv)] == code


def test_program_names() -> None:
    names = ["/usr/bin/python3.12", "CMD.EXE", "node18", "lua5.4", "sh", "./run.sh", "pypy3"]
    assert [program(n) for n in names] == ["python", "cmd", "node", "lua", "sh", "run.sh", "pypy"]


def plan(agent: str, extra: str = "", title: str = "Build it") -> str:
    head = "planId: p\nprojects:\n  - {name: web, path: ./web}\n"
    task = f"tasks:\n  - id: t1\n    project: web\n    title: {json.dumps(title)}\n"
    return f"{head}{agent}\n{task}{extra}"


def errors(root: Path, text: str) -> list[str]:
    path = root / "plans" / "p.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(PlanError) as info:
        load_plan(path, root)
    return info.value.lines()


ADVICE = (
    'pass it as its own argument ([sh, -c, \'tool "$1"\', sh, "{prompt}"]), on stdin '
    "(prompt: stdin) or in a file ({prompt_file})"
)


def test_prompt_in_a_shell_string_is_a_located_error(tmp_path: Path) -> None:
    text = plan('agent: {command: [sh, -c, "tool --say {prompt}"], prompt: arg}')
    assert errors(tmp_path, text) == [
        "plans/p.yaml:4:27: agent.command[2]: {prompt} inside the code string of `sh -c` "
        f"would run plan text as code; {ADVICE}"
    ]


def test_every_carrier_and_every_place_is_checked(tmp_path: Path) -> None:
    text = plan(
        "agents:\n"
        "  wrap: {command: [env, A=1, bash, -lc, 'cd {project_path} && t'], prompt: stdin}\n"
        "  py: {command: [python3, -c]}\n"
        "  py2: {profile: py, args: ['print(\"{project}\")']}\n"
        "  argsh: {command: [sh, -c], prompt: arg}\n"
        "agent: wrap",
        "notify:\n  - command: [sh, -c, 'notify-send {title} {message}']\n",
    )
    lines = errors(tmp_path, text)
    assert [line.split(": ", 2)[:2] for line in lines] == [
        ["plans/p.yaml:5:41", "agents.wrap.command[4]"],
        ["plans/p.yaml:7:29", "agents.py2.args[0]"],
        ["plans/p.yaml:8:38", "agents.argsh.prompt"],  # `prompt: arg` appends it after -c
        ["plans/p.yaml:15:23", "notify[0].command[2]"],
    ]
    assert "{project_path} inside the code string of `bash -lc`" in lines[0]
    assert "{project} inside the code string of `python -c`" in lines[1]
    assert "'arg' puts the prompt after `sh -c`, as the code it runs" in lines[2]
    assert "{title}, {message} inside the code string of `sh -c`" in lines[3]
    assert """([sh, -c, 'notify-send "$1"', sh, "{title}"])""" in lines[3]


def test_safe_forms_load(tmp_path: Path) -> None:
    for agent in [
        "agent: {command: [sh, -c, 'tool \"$1\"', sh, '{prompt}'], prompt: arg}",
        "agent: {command: [sh, -c, 'tool < \"$ORCH_PROMPT_FILE\" {task_id} {prompt_file}']}",
        "agent: {command: [sh, -c, 'tool'], prompt: stdin}",
        "agent: {command: [mytool, --message, '{prompt}'], prompt: arg}",
        "agent: {profile: claude, args: [--append-system-prompt, '{project}']}",
    ]:
        path = tmp_path / "plans" / "p.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(plan(agent))
        assert load_plan(path, tmp_path).plan_id == "p"


AGENT = (
    "import os, sys\n"
    "open('got.txt', 'w').write(sys.argv[1])\n"
    "print('[DONE:' + os.environ['TERMINAL_ID'] + '] kept it as text')\n"
)


def test_a_hostile_title_is_never_run(checkout: Checkout) -> None:
    script = checkout.root / "agent.py"
    script.write_text(AGENT)
    safe = f"agent: {{command: [sh, -c, 'exec {sys.executable} {script} \"$1\"', sh, '{{prompt}}'],"
    safe += " prompt: arg}"
    checkout.write_plan(plan(safe, title=HOSTILE), "p.yaml")
    result = checkout.doit()
    assert result.returncode == 0, result.stderr
    web = checkout.root / "web"
    assert HOSTILE in (web / "got.txt").read_text()  # the prompt arrived, as text
    assert not list(checkout.root.rglob("PWNED*"))

    unsafe = f"agent: {{command: [sh, -c, '{sys.executable} {script} \"{{prompt}}\"']}}"
    checkout.write_plan(plan(unsafe, title=HOSTILE), "p.yaml")
    (web / "got.txt").unlink()
    result = checkout.doit("-a")
    assert result.returncode == 3
    assert result.stderr.startswith("plans/p.yaml:4:27: agent.command[2]: {prompt} inside")
    assert "Traceback" not in result.stderr
    assert not (web / "got.txt").exists() and not list(checkout.root.rglob("PWNED*"))
