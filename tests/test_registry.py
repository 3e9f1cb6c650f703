"""The agent profile registry (STYLE.md): one module and one line per CLI, read by the rest.

A profile's name appears in no module outside orchlib/agents/; a new profile module plus
its registry line is accepted by the plan schema, listed by `doit help` and `doit draft
--help`, and run by the real dispatcher's argv building, with nothing else edited.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import orchlib
from orchlib import agents, executorregistry
from orchlib.doitedge import commandtable

ROOT = Path(orchlib.__file__).parent
# Text about Claude Code as the user's AI assistant (MCP set-up, its Agent Skills folder
# `.claude/skills/`), not about an agent profile: the assistant is whatever the user runs.
ASSISTANT_TEXT = {"doitedge/commandtable.py", "assistant/skill.py", "doitedge/assistantcmd.py"}


def _strings(tree: ast.AST) -> list[ast.Constant]:
    """The string literals of a module, docstrings left out (prose may give examples)."""
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docs.add(id(body[0].value))
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_no_module_outside_the_agents_package_names_a_profile() -> None:
    names = re.compile(r"\b(" + "|".join(map(re.escape, agents.PROFILES)) + r")\b", re.I)
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("agents/") or rel in ASSISTANT_TEXT:
            continue
        for node in _strings(ast.parse(path.read_text("utf-8"))):
            if names.search(node.value):
                found.append(f"{rel}:{node.lineno}: {node.value[:60]!r}")
    assert found == []


def test_the_registry_is_one_entry_per_module() -> None:
    modules = {p.stem for p in (ROOT / "agents").glob("*.py")} - {
        "__init__",
        "base",
        "streams",
        "limits",
    }
    assert set(agents.PROFILES) == modules
    assert (*agents.PROFILES, agents.SHELL) == agents.BUILTIN


MINE = '''
"""A test CLI: `mine-cli run`, the prompt on stdin, plain text out."""

from orchlib.agents.base import Profile
from orchlib.agents.streams import PlainText

PROFILE = Profile(name="mine", program="mine-cli", base=("run",), prompt={"stdin": ()},
                  adapter=PlainText, login=("MINE_TOKEN",), state=("~/.mine/",))
'''

PROBE = """
import sys
from pathlib import Path

import orchlib
from orchlib import agents, executorregistry
from orchlib.doitedge import commandtable
from orchlib.plan.file import load_plan

assert Path(orchlib.__file__).parent == Path(sys.argv[1]), orchlib.__file__
plan = load_plan(Path("plans/p.yaml"), Path("."))
spec = plan.tasks["t1"].agent
print(spec.profile, agents.executable(spec), agents.state_paths(spec))
print(agents.logins(spec).own, "MINE_TOKEN" in agents.all_logins())
"""

PLAN = """
planId: p
agent: mine
projects: [{name: web, path: web}]
tasks:
  - {id: t1, project: web, title: a, description: b}
"""


def test_a_new_profile_is_one_module_and_one_registry_line(tmp_path: Path) -> None:
    copy = tmp_path / "site" / "orchlib"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "agents" / "mine.py").write_text(MINE)
    registry = copy / "agents" / "__init__.py"
    lines = registry.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip() == "opencode.PROFILE,")
    lines.insert(at + 1, "        mine.PROFILE,\n")
    text = "".join(lines).replace("import aider,", "import aider, mine,")  # and its import
    assert text.count("mine") == 2
    registry.write_text(text)
    checkout = tmp_path / "co"
    (checkout / "plans").mkdir(parents=True)
    (checkout / "web").mkdir()
    (checkout / "plans" / "p.yaml").write_text(textwrap.dedent(PLAN))
    env = {"PYTHONPATH": str(copy.parent), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*argv: str) -> str:
        done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    probe = run(sys.executable, "-c", PROBE, str(copy)).splitlines()
    assert probe == ["mine mine-cli ('~/.mine/',)", "('MINE_TOKEN',) True"]
    helped = run(sys.executable, "-m", "orchlib", "help")
    assert "claude, codex, gemini, aider, opencode, mine, shell" in helped
    drafted = run(sys.executable, "-m", "orchlib", "help", "draft")
    assert "opencode, mine, a command" in " ".join(drafted.split())


# --- executors: one entry in orchlib/executorregistry.py per executor --------------------------


def test_no_module_outside_the_executors_names_an_executor() -> None:
    names = re.compile(r"\b(" + "|".join(map(re.escape, executorregistry.EXECUTORS)) + r")\b")
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("executors/") or rel == "executorregistry.py":
            continue
        for node in _strings(ast.parse(path.read_text("utf-8"))):
            if names.search(node.value.replace("~/.local/", "")):  # opencode's state folders
                found.append(f"{rel}:{node.lineno}: {node.value[:60]!r}")
    assert found == []


MINE_EXECUTOR = '''
"""A test executor: the local one, which writes down the option it was given."""

from pathlib import Path

from orchlib.executors.local import LocalExecutor


class MineExecutor(LocalExecutor):
    name = "mine"

    def __init__(self, flavour: str, **run):
        super().__init__(**run)
        Path("flavour.txt").write_text(flavour)
'''
MINE_LINE = (
    '        Entry("mine", "orchlib.executors.mine:MineExecutor", "here, with a flavour", '
    'options=(Option("flavour", "ORCH_MINE_FLAVOUR", "F", "the flavour"),)),\n'
)
MINE_PLAN = """
planId: p
defaults: {executor: mine}
projects: [{name: web, path: web}]
tasks:
  - {id: t1, project: web, title: a, command: "echo hi > out.txt"}
"""


def test_a_new_executor_is_one_module_and_one_registry_line(tmp_path: Path) -> None:
    copy = tmp_path / "site" / "orchlib"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "executors" / "mine.py").write_text(MINE_EXECUTOR)
    registry = copy / "executorregistry.py"
    lines = registry.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip() == "DASK,")
    lines.insert(at + 1, MINE_LINE)
    registry.write_text("".join(lines))
    checkout = tmp_path / "co"
    (checkout / "plans").mkdir(parents=True)
    (checkout / "web").mkdir()
    (checkout / "plans" / "p.yaml").write_text(textwrap.dedent(MINE_PLAN))
    env = {"PYTHONPATH": str(copy.parent), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*argv: str) -> str:
        done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    helped = " ".join(run(sys.executable, "-m", "orchlib", "help", "run").split())
    assert "`mine`: here, with a flavour" in helped
    assert "--flavour F the flavour (also ORCH_MINE_FLAVOUR)" in helped
    run(sys.executable, "-m", "orchlib", "--flavour", "sweet")  # `executor: mine` in the plan
    assert (checkout / "flavour.txt").read_text() == "sweet"
    assert (checkout / "web" / "out.txt").read_text() == "hi\n"


# --- commands: one entry in orchlib/doitedge/commandtable.py per command -----------------------


def _listed_names(tree: ast.AST, names: set[str]) -> list[tuple[int, list[str]]]:
    """Literal collections (and dict keys) holding three or more command names."""
    found = []
    for node in ast.walk(tree):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if not isinstance(node, ast.Set | ast.List | ast.Tuple | ast.Dict) or items is None:
            continue
        held = [i.value for i in items if isinstance(i, ast.Constant) and i.value in names]
        if len(held) >= 3:
            found.append((node.lineno, held))
    return found


def test_no_module_but_the_command_table_lists_the_commands() -> None:
    names = set(commandtable.COMMANDS)
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel != "doitedge/commandtable.py":
            tree = ast.parse(path.read_text("utf-8"))
            found += [f"{rel}:{line}: {held}" for line, held in _listed_names(tree, names)]
    assert found == []
    pyproject = (ROOT.parent / "pyproject.toml").read_text("utf-8")
    section = pyproject.split('[project.entry-points."doit.COMMAND"]\n', 1)[1].split("\n[", 1)[0]
    entry_points = dict(re.findall(r'^(\w+) = "([\w.:]+)"$', section, re.M))
    assert entry_points == {e.name: e.target for e in commandtable.COMMANDS.values()}


def test_every_command_of_the_table_is_reachable_and_has_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchlib.doitedge.cli import OrchMain, main

    built = {cmd.get_name(): cmd for cmd in OrchMain.DOIT_CMDS}
    (tmp_path / "plans").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["help"]) == 0
    overview = capsys.readouterr().out
    for entry in commandtable.COMMANDS.values():
        assert built[entry.name] is entry.load(), entry.name  # `python -m orchlib NAME`
        assert all(usage in overview for usage, _ in entry.overview), entry.name
        assert main(["help", entry.name]) == 0, entry.name
        helped = capsys.readouterr().out
        assert helped.strip(), entry.name
        if entry.topic:
            assert helped.startswith(entry.topic.split("\n", 1)[0]), entry.name
