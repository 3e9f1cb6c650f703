"""plan/file.py: loading plans, every validation error located as `file:line:col: path: message`."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import pickle
import re
import shutil
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from orchlib.errors import PlanError
from orchlib.plan import AgentSpec, Limits, NotifyTarget, Plan
from orchlib.plan.file import load_plan, load_plans, locate, parse_duration
from orchlib.plan.yamlload import load_yaml, positions

SEED = Path(__file__).parent / "plans" / "seed.json"

SEED_YAML = """\
planId: orch-abc123
summary: E-commerce platform with React frontend and Node.js backend
createdAt: 2024-01-15T10:00:00Z
projects:
  - name: ecommerce-frontend
    path: ./ecommerce-frontend
    techStack: React + TypeScript + TailwindCSS
    description: Customer-facing web application
  - name: ecommerce-backend
    path: ./ecommerce-backend
    techStack: Node.js + Express + PostgreSQL
    description: REST API server
tasks:
  - id: t1
    project: ecommerce-frontend
    title: Initialize React project
    description: Create React app with TypeScript, configure routing and TailwindCSS
    dependsOn: []
    complexity: low
    estimatedMinutes: 10
  - id: t2
    project: ecommerce-backend
    title: Initialize backend project
    description: Set up Express server with TypeScript, configure PostgreSQL connection
    dependsOn: []
    complexity: low
    estimatedMinutes: 10
  - id: t3
    project: ecommerce-backend
    title: Implement authentication API
    description: JWT auth with login, register, refresh endpoints
    dependsOn: [t2]
    complexity: medium
    estimatedMinutes: 30
  - id: t4
    project: ecommerce-frontend
    title: Build auth UI
    description: Login/register pages, auth context, token management
    dependsOn: [t1, t3]
    complexity: medium
    estimatedMinutes: 25
"""


def write(root: Path, text: str, name: str = "shop.yaml") -> Path:
    """A plan file in `root/plans`, dedented so the fixture's first line is line 1."""
    path = root / "plans" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(root: Path, text: str, name: str = "shop.yaml") -> Plan:
    return load_plan(write(root, text, name), root)


def errors(root: Path, text: str, name: str = "shop.yaml") -> list[str]:
    """The PlanError lines of a plan that must not load."""
    with pytest.raises(PlanError) as info:
        load(root, text, name)
    return info.value.lines()


def one_task(extra: str = "", project: str = "", head: str = "") -> str:
    """A small valid plan; `extra` lines go into task t1 (line 8 on), `project` into web."""
    return (
        "planId: shop\n"
        + head
        + "projects:\n"
        + "  - name: web\n"
        + "    path: web\n"
        + project
        + "tasks:\n"
        + "  - id: t1\n"
        + "    project: web\n"
        + "    title: One\n"
        + extra
    )


# -- the seed format -------------------------------------------------------------------------


def test_seed_json_loads_verbatim_with_its_execution_order(tmp_path: Path) -> None:
    shutil.copytree(SEED.parent, tmp_path / "plans")
    plan = load_plan(tmp_path / "plans" / "seed.json", tmp_path)
    assert plan.plan_id == "orch-abc123"
    assert plan.summary == "E-commerce platform with React frontend and Node.js backend"
    assert plan.created_at == "2024-01-15T10:00:00Z"
    assert plan.phases == (("t1", "t2"), ("t3",), ("t4",))
    assert list(plan.tasks) == ["t1", "t2", "t3", "t4"]
    assert [t.index for t in plan.tasks.values()] == [0, 1, 2, 3]
    t4 = plan.tasks["t4"]
    assert (t4.project, t4.title, t4.depends_on) == (
        "ecommerce-frontend",
        "Build auth UI",
        ("t1", "t3"),
    )
    assert (t4.complexity, t4.estimated_minutes) == ("medium", 25)
    assert t4.agent == AgentSpec(name="claude", profile="claude")
    assert t4.limits == Limits() and t4.command is None and t4.verify is None
    front = plan.projects["ecommerce-frontend"]
    assert front.root == (tmp_path / "ecommerce-frontend").resolve()
    assert front.path == "./ecommerce-frontend"
    assert front.tech_stack == "React + TypeScript + TailwindCSS"
    assert (
        plan.schedule == "dag" and plan.notify == () and plan.source == tmp_path / "plans/seed.json"
    )
    assert not front.root.exists(), "loading creates no folder"


def test_seed_without_execution_order_gets_the_same_computed_phases(tmp_path: Path) -> None:
    data = json.loads(SEED.read_text())
    del data["executionOrder"]
    plan = load(tmp_path, json.dumps(data), "seed.json")
    assert plan.phases == (("t1", "t2"), ("t3",), ("t4",))


def test_seed_as_yaml_gives_the_same_plan_as_json(tmp_path: Path) -> None:
    from_json = load(tmp_path, SEED.read_text(), "seed.json")
    from_yaml = load(tmp_path, SEED_YAML, "seed.yaml")
    assert dataclasses.replace(from_yaml, source=from_json.source) == from_json


def test_yaml_dates_are_kept_as_iso_text(tmp_path: Path) -> None:
    assert load(tmp_path, one_task(head="createdAt: 2024-01-15\n")).created_at == "2024-01-15"
    head = "createdAt: 2024-01-15 10:00:00\n"
    assert load(tmp_path, one_task(head=head)).created_at == "2024-01-15T10:00:00"


def test_defaults_of_optional_keys(tmp_path: Path) -> None:
    plan = load(tmp_path, one_task())
    task = plan.tasks["t1"]
    assert (task.description, task.depends_on, task.outputs, task.inputs) == ("", (), (), ())
    assert (plan.summary, plan.created_at, plan.context, plan.allow_outside_paths) == (
        "",
        "",
        "",
        False,
    )
    assert plan.phases == (("t1",),)


# -- syntax and shape ------------------------------------------------------------------------


def test_yaml_syntax_error_is_one_located_line(tmp_path: Path) -> None:
    text = "planId: shop\nprojects: [a, b\ntasks: []\n"
    [line] = errors(tmp_path, text)
    assert line.startswith("plans/shop.yaml:3:6: invalid YAML: ")


def test_yaml_bad_indentation_is_located(tmp_path: Path) -> None:
    [line] = errors(tmp_path, "planId: shop\n  tasks: x\n")
    assert line == "plans/shop.yaml:2:8: invalid YAML: mapping values are not allowed here"


def test_json_syntax_error_is_one_located_line(tmp_path: Path) -> None:
    [line] = errors(tmp_path, '{"planId": "shop",\n "tasks": [1 2]}', "shop.json")
    assert line == "plans/shop.json:2:14: invalid JSON: Expecting ',' delimiter"


def test_duplicate_keys_are_located_in_yaml_and_json(tmp_path: Path) -> None:
    [line] = errors(tmp_path, "planId: a\nplanId: b\n")
    assert line.startswith("plans/shop.yaml:2:1: invalid YAML: found duplicate key")
    [line] = errors(tmp_path, '{"planId": "a",\n "planId": "b"}', "shop.json")
    assert line.startswith("plans/shop.json:2:2: invalid YAML: found duplicate key")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "1:1: a plan must be a mapping with planId, projects and tasks; the plan file is empty",
        ),
        (
            "# nothing\n",
            "1:1: a plan must be a mapping with planId, projects and tasks; the plan file is empty",
        ),
        ("- a\n- b\n", "1:1: a plan must be a mapping with planId, projects and tasks; got a list"),
        (
            "# c\n\njust text\n",
            "3:1: a plan must be a mapping with planId, projects and tasks; got a string",
        ),
    ],
)
def test_a_plan_must_be_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    assert errors(tmp_path, text) == [f"plans/shop.yaml:{message}"]


def test_binary_junk_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "plans" / "junk.yaml"
    path.parent.mkdir()
    path.write_bytes(b"planId: x\nsummary: \xff\xfe\x00\x01")
    with pytest.raises(PlanError) as info:
        load_plan(path, tmp_path)
    assert info.value.lines() == ["plans/junk.yaml:2:10: not UTF-8 text: invalid start byte"]


def test_control_characters_are_a_located_error(tmp_path: Path) -> None:
    [line] = errors(tmp_path, "planId: x\nsummary: a\x01b\n")
    assert line.startswith("plans/shop.yaml:2:11: invalid YAML: unacceptable character #x0001")


def test_unreadable_values_are_located(tmp_path: Path) -> None:
    [line] = errors(tmp_path, "planId: x\ncreatedAt: 2024-13-45\n")
    assert line == (
        "plans/shop.yaml:2:12: invalid YAML: cannot read '2024-13-45': month must be in 1..12"
    )


def test_unusable_project_path_is_an_error(tmp_path: Path) -> None:
    lines = errors(tmp_path, one_task().replace("path: web", 'path: "a\\0b"'))
    assert lines == [
        "plans/shop.yaml:4:11: projects[0].path: contains a NUL character (\\0); remove it"
    ]


def test_unreadable_file_is_a_plan_error(tmp_path: Path) -> None:
    (tmp_path / "plans" / "gone.yaml").mkdir(parents=True)
    with pytest.raises(PlanError, match=r"^plans/gone.yaml:1:1: cannot read the plan"):
        load_plan(tmp_path / "plans" / "gone.yaml", tmp_path)


# -- required keys, unknown keys, types --------------------------------------------------------


def test_missing_required_keys_point_at_their_mapping(tmp_path: Path) -> None:
    text = """
        summary: no id
        projects:
          - path: web
        tasks:
          - id: t1
            project: web
    """
    assert errors(tmp_path, text) == [
        "plans/shop.yaml:1:1: missing required key 'planId'",
        "plans/shop.yaml:3:5: projects[0]: missing required key 'name'",
        "plans/shop.yaml:5:5: tasks[0]: missing required key 'title'",
        "plans/shop.yaml:6:14: tasks[0].project: unknown project 'web' (known: none)",
    ]


def test_unknown_keys_point_at_the_key_with_did_you_mean(tmp_path: Path) -> None:
    text = """
        planId: shop
        sumary: typo
        projects:
          - name: web
            path: web
            techstack: x
        tasks:
          - id: t1
            project: web
            title: One
            dependOn: []
            colour: red
        defaults: {retrys: 2}
        notify:
          - {url: "ntfy://x", event: [plan_completed]}
    """
    assert errors(tmp_path, text) == [
        "plans/shop.yaml:2:1: sumary: unknown key 'sumary' (did you mean 'summary'?)",
        "plans/shop.yaml:6:5: projects[0].techstack: unknown key 'techstack' "
        "(did you mean 'techStack'?)",
        "plans/shop.yaml:11:5: tasks[0].dependOn: unknown key 'dependOn' (did "
        "you mean 'dependsOn'?)",
        "plans/shop.yaml:12:5: tasks[0].colour: unknown key 'colour'",
        "plans/shop.yaml:13:12: defaults.retrys: unknown key 'retrys' (did you mean 'retries'?)",
        "plans/shop.yaml:15:23: notify[0].event: unknown key 'event' (did you mean 'events'?)",
    ]


def test_unknown_key_in_an_agent_mapping(tmp_path: Path) -> None:
    lines = errors(tmp_path, one_task("    agent: {profile: claude, arg: [-v]}\n"))
    assert lines == [
        "plans/shop.yaml:9:30: tasks[0].agent.arg: unknown key 'arg' (did you mean 'args'?)"
    ]


def test_wrong_types_everywhere_are_reported(tmp_path: Path) -> None:
    text = """
        planId: 12
        summary: [a]
        schedule: eager
        allowOutsidePaths: "yes"
        context: {a: 1}
        projects:
          - name: web
            path: web
            techStack: 3.11
          - just a string
        tasks:
          - id: t1
            project: web
            title: 5
            dependsOn: t0
            estimatedMinutes: soon
            complexity: null
          - 42
    """
    assert errors(tmp_path, text) == [
        "plans/shop.yaml:1:9: planId: expected a string, got a number",
        "plans/shop.yaml:2:10: summary: expected a string, got a list",
        "plans/shop.yaml:3:11: schedule: 'eager' is not one of dag, phases",
        "plans/shop.yaml:4:20: allowOutsidePaths: expected true or false, got a string",
        "plans/shop.yaml:5:10: context: expected a string, got a mapping",
        "plans/shop.yaml:9:16: projects[0].techStack: expected a string, got a number",
        "plans/shop.yaml:10:5: projects[1]: expected a mapping, got a string",
        "plans/shop.yaml:14:12: tasks[0].title: expected a string, got a number",
        "plans/shop.yaml:15:16: tasks[0].dependsOn: expected a list of task ids, got a string",
        "plans/shop.yaml:16:23: tasks[0].estimatedMinutes: expected a number, got a string",
        "plans/shop.yaml:17:17: tasks[0].complexity: expected a string, got null",
        "plans/shop.yaml:18:5: tasks[1]: expected a mapping, got a number",
    ]


def test_top_level_lists_must_be_lists(tmp_path: Path) -> None:
    assert errors(tmp_path, "planId: shop\nprojects: {}\ntasks: nope\n") == [
        "plans/shop.yaml:2:11: projects: expected a list, got a mapping",
        "plans/shop.yaml:3:8: tasks: expected a list, got a string",
    ]


def test_non_string_keys_are_reported_at_their_mapping(tmp_path: Path) -> None:
    assert errors(tmp_path, one_task("    1: one\n")) == [
        "plans/shop.yaml:6:5: tasks[0]: keys must be strings, got a number 1"
    ]


# -- ids and names ---------------------------------------------------------------------------


def test_ids_must_be_usable_as_doit_names(tmp_path: Path) -> None:
    text = one_task("  - id: 'build app'\n    project: web\n    title: Two\n", head="").replace(
        "planId: shop", "planId: shop:main"
    )
    assert errors(tmp_path, text) == [
        "plans/shop.yaml:1:9: planId: 'shop:main' may only contain letters, "
        "digits, '_', '.' and '-'",
        "plans/shop.yaml:9:9: tasks[1].id: 'build app' may only contain "
        "letters, digits, '_', '.' and '-'",
    ]


def test_plan_id_cannot_name_a_parent_folder(tmp_path: Path) -> None:
    lines = errors(tmp_path, one_task().replace("planId: shop", "planId: '..'"))
    assert lines == ["plans/shop.yaml:1:9: planId: '..' cannot name a plan folder"]


@pytest.mark.parametrize(
    "plan_id", ["doit.sqlite3", "run.lock", "drafts", "worktrees", "cache", "Doit.sqlite3-wal"]
)
def test_plan_id_cannot_name_a_runtime_file(tmp_path: Path, plan_id: str) -> None:
    lines = errors(tmp_path, one_task().replace("planId: shop", f"planId: {plan_id}"))
    assert lines == [
        f"plans/shop.yaml:1:9: planId: {plan_id!r} is a name orchlib uses in .orch/; "
        "choose another planId (reserved: cache, drafts, worktrees, run.lock*, doit.*)"
    ]


def test_task_ids_and_project_names_are_unique(tmp_path: Path) -> None:
    text = """
        planId: shop
        projects:
          - {name: web, path: web}
          - {name: web, path: web2}
        tasks:
          - {id: t1, project: web, title: One}
          - {id: t1, project: web, title: Again}
    """
    assert errors(tmp_path, text) == [
        "plans/shop.yaml:4:12: projects[1].name: duplicate project name 'web'",
        "plans/shop.yaml:7:10: tasks[1].id: duplicate task id 't1'",
    ]


def test_task_project_must_be_known_with_did_you_mean(tmp_path: Path) -> None:
    text = one_task(
        "  - {id: t2, project: webb, title: Two}\n  - {id: t3, project: api, title: x}\n"
    )
    assert errors(tmp_path, text) == [
        "plans/shop.yaml:9:23: tasks[1].project: unknown project 'webb' (did you mean 'web'?)",
        "plans/shop.yaml:10:23: tasks[2].project: unknown project 'api' (known: web)",
    ]


# -- dependencies ----------------------------------------------------------------------------


def deps_plan(*deps: str) -> str:
    """Tasks t1, t2, t3 (lines 6-8) with t1..t3's dependsOn as given (flow style)."""
    rows = "".join(
        f"  - {{id: t{i}, project: web, title: T, dependsOn: {dep}}}\n"
        for i, dep in enumerate(deps, start=1)
    )
    return f"planId: shop\nprojects:\n  - name: web\n    path: web\ntasks:\n{rows}"


def test_unknown_dependency_lists_the_known_tasks(tmp_path: Path) -> None:
    assert errors(tmp_path, deps_plan("[]", "[]", "[t9]")) == [
        "plans/shop.yaml:8:50: tasks[2].dependsOn[0]: unknown task 't9' (known: t1, t2, t3)"
    ]


def test_the_known_list_is_cut_for_long_plans(tmp_path: Path) -> None:
    lines = errors(tmp_path, deps_plan(*["[]"] * 11, "[nope]"))
    assert lines == [
        "plans/shop.yaml:17:51: tasks[11].dependsOn[0]: unknown task 'nope' "
        "(known: t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, ...)"
    ]


def test_self_and_repeated_dependencies(tmp_path: Path) -> None:
    assert errors(tmp_path, deps_plan("[]", "[t2]", "[t1, t1]")) == [
        "plans/shop.yaml:7:50: tasks[1].dependsOn[0]: task 't2' depends on itself",
        "plans/shop.yaml:8:54: tasks[2].dependsOn[1]: dependency 't1' is listed twice",
    ]


def test_a_cycle_is_reported_once_as_a_path(tmp_path: Path) -> None:
    assert errors(tmp_path, deps_plan("[t3]", "[]", "[t2, t1]")) == [
        "plans/shop.yaml:6:50: tasks[0].dependsOn[0]: dependency cycle: t1 -> t3 -> t1"
    ]


def test_block_style_dependency_positions(tmp_path: Path) -> None:
    lines = errors(tmp_path, one_task("    dependsOn:\n      - t1x\n"))
    assert lines == ["plans/shop.yaml:10:9: tasks[0].dependsOn[0]: unknown task 't1x' (known: t1)"]


# -- executionOrder --------------------------------------------------------------------------


def ordered(order: str) -> str:
    return deps_plan("[]", "[t1]", "[t2]") + f"executionOrder: {order}\n"


def test_a_correct_execution_order_is_kept(tmp_path: Path) -> None:
    plan = load(tmp_path, ordered("[[t1], [t2], [t3]]"))
    assert plan.phases == (("t1",), ("t2",), ("t3",))


def test_execution_order_must_name_every_task_once(tmp_path: Path) -> None:
    assert errors(tmp_path, ordered("[[t1, t9], [t2, t1]]")) == [
        "plans/shop.yaml:9:17: executionOrder: task 't3' is not in any phase",
        "plans/shop.yaml:9:23: executionOrder[0][1]: unknown task 't9' (known: t1, t2, t3)",
        "plans/shop.yaml:9:33: executionOrder[1][1]: task 't1' is listed twice (first in phase 1)",
    ]


def test_execution_order_puts_tasks_strictly_after_their_dependencies(tmp_path: Path) -> None:
    assert errors(tmp_path, ordered("[[t1, t2], [t3]]")) == [
        "plans/shop.yaml:9:23: executionOrder[0][1]: task 't2' (phase 1) must come after its "
        "dependency 't1' (phase 1)"
    ]
    assert errors(tmp_path, ordered("[[t1, t3], [t2]]")) == [
        "plans/shop.yaml:9:23: executionOrder[0][1]: task 't3' (phase 1) must come after its "
        "dependency 't2' (phase 2)"
    ]


def test_execution_order_shape(tmp_path: Path) -> None:
    assert errors(tmp_path, ordered("[[t1], [], t2, [3]]")) == [
        "plans/shop.yaml:9:24: executionOrder[1]: a phase must list at least one task",
        "plans/shop.yaml:9:28: executionOrder[2]: expected a list of task ids, got a string",
        "plans/shop.yaml:9:33: executionOrder[3][0]: expected a string, got a number",
    ]


# -- project paths ---------------------------------------------------------------------------


def test_paths_outside_the_checkout_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "co"
    text = one_task().replace("path: web", "path: ../elsewhere")
    assert errors(root, text) == [
        f"plans/shop.yaml:4:11: projects[0].path: project path '../elsewhere' resolves to "
        f"{tmp_path.resolve()}/elsewhere, outside the checkout {root.resolve()} "
        "(set allowOutsidePaths: true to allow it)"
    ]
    plan = load(root, text.replace("planId: shop", "planId: shop\nallowOutsidePaths: true"))
    assert plan.projects["web"].root == (tmp_path / "elsewhere").resolve()


def test_a_symlink_leading_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "co"
    (tmp_path / "outside").mkdir()
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    [line] = errors(root, one_task().replace("path: web", "path: link/app"))
    assert line.startswith(
        "plans/shop.yaml:4:11: projects[0].path: project path 'link/app' resolves"
    )


def test_paths_that_stay_inside_are_fine(tmp_path: Path) -> None:
    text = one_task().replace("path: web", f"path: {tmp_path}/a/../web")
    assert load(tmp_path, text).projects["web"].root == tmp_path.resolve() / "web"
    text = one_task().replace("path: web", "path: sub/../web")
    assert load(tmp_path, text).projects["web"].root == tmp_path.resolve() / "web"
    assert load(tmp_path, one_task().replace("path: web", "path: .")).projects["web"].root == (
        tmp_path.resolve()
    )


def test_empty_project_path_is_an_error(tmp_path: Path) -> None:
    assert errors(tmp_path, one_task().replace("path: web", "path: ''")) == [
        "plans/shop.yaml:4:11: projects[0].path: must not be empty"
    ]


# -- agents ----------------------------------------------------------------------------------


AGENTS_PLAN = """
    planId: shop
    agent: codex
    agents:
      fast: {profile: claude, args: [--model, haiku], env: {A: "1"}}
      mine: {command: [./bin/agent, --x], prompt: file, env: {B: "2"}}
      tuned: {profile: fast, args: [-v], env: {A: "3", C: "4"}, session: continue}
      claude: {profile: claude, args: [--verbose]}
    projects:
      - {name: web, path: web, agent: gemini}
      - {name: api, path: api}
    tasks:
      - {id: t1, project: web, title: inherits the project}
      - {id: t2, project: api, title: inherits the plan}
      - {id: t3, project: api, title: named, agent: tuned}
      - {id: t4, project: api, title: custom, agent: mine}
      - {id: t5, project: web, title: inline, agent: {profile: mine, args: [-q], prompt: arg}}
      - {id: t6, project: web, title: shadowed built-in, agent: claude}
      - {id: t7, project: web, title: shell, command: make test}
      - {id: t8, project: web, title: own shell, agent: shell, command: [make, test]}
      - {id: t9, project: web, title: aider, agent: {profile: aider, prompt: stdin}}
"""


def test_agent_inheritance_and_resolution(tmp_path: Path) -> None:
    tasks = load(tmp_path, AGENTS_PLAN).tasks
    assert tasks["t1"].agent == AgentSpec(name="gemini", profile="gemini")
    assert tasks["t2"].agent == AgentSpec(name="codex", profile="codex")
    assert tasks["t3"].agent == AgentSpec(
        name="tuned",
        profile="claude",
        args=("--verbose", "--model", "haiku", "-v"),  # `claude` in agents shadows the built-in
        env={"A": "3", "C": "4"},
        session="continue",
    )
    assert tasks["t4"].agent == AgentSpec(
        name="mine", command=("./bin/agent", "--x"), prompt="file", env={"B": "2"}
    )
    assert tasks["t5"].agent == AgentSpec(
        name="mine", command=("./bin/agent", "--x"), prompt="arg", args=("-q",), env={"B": "2"}
    )
    assert tasks["t6"].agent == AgentSpec(name="claude", profile="claude", args=("--verbose",))
    assert tasks["t9"].agent == AgentSpec(name="aider", profile="aider", prompt="stdin")


def test_shell_tasks(tmp_path: Path) -> None:
    tasks = load(tmp_path, AGENTS_PLAN).tasks
    assert tasks["t7"].command == ("sh", "-c", "make test")
    assert tasks["t7"].agent == AgentSpec(name="shell", profile="shell")
    assert tasks["t8"].command == ("make", "test")
    assert tasks["t8"].agent == AgentSpec(name="shell", profile="shell")


def test_a_custom_agent_is_named_after_its_program(tmp_path: Path) -> None:
    task = load(tmp_path, one_task("    agent: {command: [/usr/bin/my-agent, -p]}\n")).tasks["t1"]
    assert task.agent == AgentSpec(name="my-agent", command=("/usr/bin/my-agent", "-p"))


def test_agent_errors(tmp_path: Path) -> None:
    text = """
        planId: shop
        agent: claud
        agents:
          a: {profile: b}
          b: {profile: a}
          both: {profile: claude, command: [x]}
          neither: {args: [x]}
          empty: {command: []}
          modes: {profile: codex, prompt: pipe, session: resume, env: {1X: y, OK: 2}}
          text: claude
        projects:
          - {name: web, path: web, agent: 7}
        tasks:
          - {id: t1, project: web, title: a, agent: codex, command: make}
          - {id: t2, project: web, title: b, agent: shell}
    """
    assert errors(tmp_path, text) == [
        "plans/shop.yaml:2:8: agent: unknown agent profile 'claud' (did you mean 'claude'?)",
        "plans/shop.yaml:5:16: agents.b.profile: agent profile cycle: a -> b -> a",
        "plans/shop.yaml:6:9: agents.both: set either 'command' (custom agent) "
        "or 'profile', not both",
        "plans/shop.yaml:7:12: agents.neither: an agent mapping needs "
        "'command' (custom) or 'profile'",
        "plans/shop.yaml:8:20: agents.empty.command: the command list must not be empty",
        "plans/shop.yaml:9:35: agents.modes.prompt: 'pipe' is not one of stdin, file, arg",
        "plans/shop.yaml:9:50: agents.modes.session: 'resume' is not one of fresh, continue",
        "plans/shop.yaml:9:63: agents.modes.env: bad environment variable name '1X'",
        "plans/shop.yaml:9:75: agents.modes.env.OK: expected a string, got a number",
        "plans/shop.yaml:10:9: agents.text: expected a mapping {command: ...} or {profile: ...}, "
        "got a string",
        "plans/shop.yaml:12:35: projects[0].agent: expected a profile name, a mapping "
        "or a list of them, got a number",
        "plans/shop.yaml:14:45: tasks[0].agent: a task with 'command' runs in "
        "the shell: drop 'agent'",
        "plans/shop.yaml:15:5: tasks[1]: agent 'shell' needs a 'command' to run",
    ]


# -- commands, globs, limits, notify -----------------------------------------------------------


def test_verify_outputs_inputs(tmp_path: Path) -> None:
    extra = (
        "    verify: [pytest, -q]\n"
        "    outputs: dist/*.whl\n"
        "    inputs: [src/**/*.py, ./pyproject.toml]\n"
    )
    task = load(tmp_path, one_task(extra)).tasks["t1"]
    assert task.verify == ("pytest", "-q")
    assert task.outputs == ("dist/*.whl",)
    assert task.inputs == ("src/**/*.py", "./pyproject.toml")
    assert load(tmp_path, one_task("    verify: make check\n")).tasks["t1"].verify == (
        "sh",
        "-c",
        "make check",
    )


def test_globs_must_stay_in_the_project(tmp_path: Path) -> None:
    extra = "    outputs: /etc/passwd\n    inputs: [a/../../b, ok/*.py, '']\n    verify: []\n"
    assert errors(tmp_path, one_task(extra)) == [
        "plans/shop.yaml:9:14: tasks[0].outputs: '/etc/passwd' must stay inside the project "
        "(relative, no '..' out)",
        "plans/shop.yaml:10:14: tasks[0].inputs[0]: 'a/../../b' must stay inside the project "
        "(relative, no '..' out)",
        "plans/shop.yaml:10:34: tasks[0].inputs[2]: must not be empty",
        "plans/shop.yaml:11:13: tasks[0].verify: the command list must not be empty",
    ]


def test_limits_inherit_defaults_then_project_then_task(tmp_path: Path) -> None:
    text = """
        planId: shop
        defaults: {retries: 3, timeout: 1h, stallTimeout: 5m, exitGrace: 10s, retryOnError: true}
        projects:
          - {name: web, path: web, retries: 0, timeout: 0}
          - {name: api, path: api}
        tasks:
          - {id: t1, project: web, title: a}
          - {id: t2, project: web, title: b, stallTimeout: null, exitGrace: 0, timeout: 90}
          - {id: t3, project: api, title: c, retryOnError: false, timeout: "1h30m"}
    """
    tasks = load(tmp_path, text).tasks
    assert tasks["t1"].limits == Limits(0, None, 300.0, 10.0, True)
    assert tasks["t2"].limits == Limits(0, 90.0, None, 0.0, True)
    assert tasks["t3"].limits == Limits(3, 5400.0, 300.0, 10.0, False)


def test_limit_errors(tmp_path: Path) -> None:
    text = one_task(
        "    retries: -1\n    timeout: 10x\n    exitGrace: [1]\n    retryOnError: 1\n",
        head="defaults: {retries: true, stallTimeout: -5}\n",
    )
    assert errors(tmp_path, text) == [
        "plans/shop.yaml:2:21: defaults.retries: expected a whole number, got true/false",
        "plans/shop.yaml:2:41: defaults.stallTimeout: duration must be a finite number of seconds "
        ">= 0, got -5",
        "plans/shop.yaml:10:14: tasks[0].retries: must be >= 0, got -1",
        "plans/shop.yaml:11:14: tasks[0].timeout: bad duration '10x': use a number of seconds or a "
        "number with a unit ms, s, m, h, d (e.g. '90s', '10m', '1h30m')",
        "plans/shop.yaml:12:16: tasks[0].exitGrace: expected a duration like 90, '90s', '10m' or "
        "'1h30m', got list",
        "plans/shop.yaml:13:19: tasks[0].retryOnError: expected true or false, got a number",
    ]


def test_notify_targets(tmp_path: Path) -> None:
    head = (
        "notify:\n"
        "  - ntfy://orchlib\n"
        "  - {command: [notify-send, '{title}', '{message}'], events: [task_error]}\n"
        "  - {url: 'mailto://me@example.com', events: [plan_completed, plan_failed]}\n"
    )
    plan = load(tmp_path, one_task(head=head))
    every = (
        "task_error",
        "task_question",
        "usage_limit",
        "phase_completed",
        "plan_completed",
        "plan_failed",
        "task_approval",
        "budget_spent",
    )
    assert plan.notify == (
        NotifyTarget(url="ntfy://orchlib", events=every),
        NotifyTarget(command=("notify-send", "{title}", "{message}"), events=("task_error",)),
        NotifyTarget(url="mailto://me@example.com", events=("plan_completed", "plan_failed")),
    )


def test_notify_errors(tmp_path: Path) -> None:
    head = (
        "notify:\n"
        "  - slack\n"
        "  - {command: 'notify-send {message}'}\n"
        "  - {url: 'ntfy://x', command: [x]}\n"
        "  - {url: 'ntfy://x', events: [task_eror]}\n"
        "  - {url: 'ntfy://x', events: []}\n"
        "  - {}\n"
    )
    assert errors(tmp_path, one_task(head=head)) == [
        "plans/shop.yaml:3:5: notify[0]: 'slack' is not an apprise URL (like 'ntfy://topic')",
        "plans/shop.yaml:4:15: notify[1].command: expected a list of strings, got a string",
        "plans/shop.yaml:5:5: notify[2]: a notify target needs exactly one of 'command' or 'url'",
        "plans/shop.yaml:6:32: notify[3].events[0]: 'task_eror' is not one of task_error, "
        "task_question, usage_limit, phase_completed, plan_completed, plan_failed, task_approval, "
        "budget_spent "
        "(did you mean 'task_error'?)",
        "plans/shop.yaml:7:31: notify[4].events: list at least one event",
        "plans/shop.yaml:8:5: notify[5]: a notify target needs exactly one of 'command' or 'url'",
    ]


def test_schedule_and_context(tmp_path: Path) -> None:
    head = "schedule: phases\ncontext: API at /v1\n"
    plan = load(tmp_path, one_task(head=head, project="    context: React 18\n"))
    assert (plan.schedule, plan.context) == ("phases", "API at /v1")
    assert plan.projects["web"].context == "React 18"


# -- all at once -----------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = """
        planId: shop
        projects:
          - {name: web, path: web, retries: x}
        tasks:
          - {id: t1, project: web, title: a, dependsOn: [t9]}
          - {id: t2, project: wbe, title: b}
          - {id: t3, project: web, titel: c}
        executionOrder: [[t1, t2]]
    """
    lines = errors(tmp_path, text)
    assert [line.split(": ")[0] for line in lines] == [
        "plans/shop.yaml:3:37",
        "plans/shop.yaml:5:50",
        "plans/shop.yaml:6:23",
        "plans/shop.yaml:7:5",
        "plans/shop.yaml:7:28",
        "plans/shop.yaml:8:17",
    ]
    assert "tasks[2].titel: unknown key 'titel' (did you mean 'title'?)" in lines[4]
    assert "executionOrder: task 't3' is not in any phase" in lines[5]


# -- load_plans ------------------------------------------------------------------------------


def test_load_plans_reads_every_plan_file_sorted(tmp_path: Path) -> None:
    write(tmp_path, one_task().replace("shop", "b"), "b.yml")
    write(tmp_path, one_task().replace("shop", "a"), "a.yaml")
    write(tmp_path, json.dumps(json.loads(SEED.read_text())), "c.json")
    write(tmp_path, "not a plan", "notes.txt")
    plans = load_plans(tmp_path)
    assert [p.plan_id for p in plans] == ["a", "b", "orch-abc123"]
    assert plans[0].projects["web"].root == plans[1].projects["web"].root, "folders may be shared"


def test_load_plans_without_a_plans_folder_is_empty(tmp_path: Path) -> None:
    assert load_plans(tmp_path) == []


def test_load_plans_aggregates_errors_of_all_files(tmp_path: Path) -> None:
    write(tmp_path, one_task("    dependsOn: [t0]\n"), "a.yaml")
    write(tmp_path, "planId: [\n", "b.yaml")
    write(tmp_path, one_task().replace("shop", "fine"), "c.yaml")
    with pytest.raises(PlanError) as info:
        load_plans(tmp_path)
    lines = info.value.lines()
    assert lines[0] == "plans/a.yaml:9:17: tasks[0].dependsOn[0]: unknown task 't0' (known: t1)"
    assert lines[1].startswith("plans/b.yaml:2:1: invalid YAML: ")
    assert len(lines) == 2


def test_a_plan_id_used_by_two_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, one_task(), "a.yaml")
    write(tmp_path, "# b\n" + one_task(), "b.yaml")
    with pytest.raises(PlanError) as info:
        load_plans(tmp_path)
    assert info.value.lines() == [
        "plans/b.yaml:2:9: planId: plan id 'shop' is already used by plans/a.yaml"
    ]


# -- locate ----------------------------------------------------------------------------------


def test_locate_gives_file_line_col_of_a_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, one_task("    dependsOn: [t0, t1]\n", head="agent: codex\n"))
    assert locate(path, tmp_path, ["agent"]) == "plans/shop.yaml:2:8"
    assert locate(path, tmp_path, ["tasks", 0, "dependsOn", 1]) == "plans/shop.yaml:10:21"
    assert locate(path, tmp_path, ["tasks", 0, "agent"]) == "plans/shop.yaml:7:5"
    assert locate(path, tmp_path, ["nothing", "here"]) == "plans/shop.yaml:1:1"
    assert locate(tmp_path / "plans" / "gone.yaml", tmp_path, ["x"]) == "plans/gone.yaml:1:1"


# -- cache -----------------------------------------------------------------------------------


def cache_files(root: Path) -> list[Path]:
    return sorted((root / ".orch" / "cache").glob("plan-*.json"))


def test_a_valid_plan_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, one_task())
    first = load_plan(path, tmp_path)
    assert len(cache_files(tmp_path)) == 1

    def fail(*args: object) -> None:
        raise AssertionError("validated again")

    from orchlib.plan import schema as planschema

    monkeypatch.setattr(planschema, "build_plan", fail)
    assert load_plan(path, tmp_path) == first


def test_a_changed_file_is_validated_again(tmp_path: Path) -> None:
    path = write(tmp_path, one_task())
    load_plan(path, tmp_path)
    write(tmp_path, one_task("    dependsOn: [t7]\n"))
    with pytest.raises(PlanError, match="unknown task 't7'"):
        load_plan(path, tmp_path)
    assert len(cache_files(tmp_path)) == 1


def test_a_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, one_task())
    expected = load_plan(path, tmp_path)
    [cache] = cache_files(tmp_path)
    good = cache.read_bytes()
    data = json.loads(good)
    foreign = [
        {**data, "format": 1},
        {**data, "schema": "another"},
        {**data, "plan": {"root": data["plan"]["root"][:-1], "shared": []}},
        {**data, "plan": {**data["plan"], "shared": "x"}},
        {**data, "plan": {**data["plan"], "root": 7}},
    ]
    junk = [b"", b"garbage", pickle.dumps(("key", "not a plan")), pickle.dumps(42), b"[" * 10**5]
    for raw in [*junk, *(json.dumps(f).encode() for f in foreign)]:
        cache.write_bytes(raw)
        assert load_plan(path, tmp_path) == expected
        assert cache.read_bytes() == good  # rewritten by the load that missed


RICH_PLAN = """
planId: shop
summary: every kind of field
createdAt: 2024-01-15T10:00:00Z
context: plan context
schedule: phases
allowOutsidePaths: true
defaults: {retries: 3, timeout: 1h, stallTimeout: 5m, exitGrace: 10s, retryOnError: true}
agents:
  mine: {command: [my-agent, "{prompt_file}"], prompt: file, env: {A: "1"}}
  fast: {profile: claude, args: [--model, x], session: continue}
notify:
  - {command: [notify-send, "{title}"], events: [task_error]}
  - {url: "ntfy://topic"}
projects:
  - {name: web, path: web, techStack: ts, description: d, context: c, agent: fast}
  - {name: api, path: api, isolation: worktree, parallel: 3}
tasks:
  - {id: t1, project: web, title: One, description: d, complexity: low, estimatedMinutes: 5,
     outputs: [dist/*.js, out.txt], inputs: [src/**/*.ts], verify: npm test}
  - {id: t2, project: api, title: Two, dependsOn: [t1], agent: mine}
  - {id: t4, project: api, title: Four, command: [make, all]}
  - {id: t3, project: api, title: Three, dependsOn: [t1], command: "echo 3", retries: 0}
executionOrder: [[t1, t4], [t2, t3]]
"""


def test_every_field_of_a_plan_comes_back_from_the_cache(tmp_path: Path) -> None:
    path = write(tmp_path, RICH_PLAN)
    first = load_plan(path, tmp_path)
    assert cache_files(tmp_path)
    again = load_plan(path, tmp_path)
    assert again == first and again is not first
    for name, task in first.tasks.items():
        assert again.tasks[name] == task and again.tasks[name].agent == task.agent
    assert again.projects == first.projects and again.notify == first.notify
    assert type(again.tasks["t1"].outputs) is tuple and isinstance(again.source, Path)


def test_a_plan_the_cache_cannot_carry_is_not_cached(tmp_path: Path) -> None:
    from dataclasses import replace

    from orchlib.plan import cache

    path = write(tmp_path, one_task())
    plan = load_plan(path, tmp_path)
    for file in cache_files(tmp_path):
        file.unlink()
    odd = replace(plan, context=["a list"])  # type: ignore[arg-type]
    cache.store(tmp_path, "plans/shop.yaml", "key", odd)
    assert cache_files(tmp_path) == []


def test_an_unwritable_cache_does_not_fail_a_load(tmp_path: Path) -> None:
    path = write(tmp_path, one_task())
    (tmp_path / ".orch").write_text("a file where the cache folder should be")
    assert load_plan(path, tmp_path).plan_id == "shop"


def test_the_cache_notices_a_moved_symlink(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "one")
    path = write(tmp_path, one_task().replace("path: web", "path: link"))
    assert load_plan(path, tmp_path).projects["web"].root == (tmp_path / "one").resolve()
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to(tmp_path / "two")
    assert load_plan(path, tmp_path).projects["web"].root == (tmp_path / "two").resolve()


# -- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        ("0.5h", 1800.0),
        (0, None),
        ("0s", None),
        (None, None),
    ],
)
def test_parse_duration(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "soon", "10x", "1h30", "h", "-5s", -1, float("nan"), float("inf"), True, [1], 10**400],
)
def test_parse_duration_refuses_bad_values(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


# -- properties ------------------------------------------------------------------------------

LINE = re.compile(r"^plans/(seed|rich)\.(yaml|json):[1-9]\d*:[1-9]\d*: \S")

RICH_YAML = """\
planId: rich
schedule: phases
context: shared notes
agent: {profile: claude, args: [--model, opus], env: {A: "1"}}
agents:
  lint: {command: [ruff, check], prompt: arg}
defaults: {retries: 2, timeout: 1h, stallTimeout: 5m, exitGrace: 30s, retryOnError: false}
notify:
  - ntfy://rich
  - {command: [echo, '{event}'], events: [task_error, plan_failed]}
projects:
  - {name: web, path: web, context: front, agent: codex, retries: 0}
  - {name: api, path: api, techStack: Go}
tasks:
  - {id: t1, project: web, title: a, outputs: [dist/*], inputs: src/**}
  - {id: t2, project: api, title: b, command: make, verify: [make, test]}
  - {id: t3, project: api, title: c, dependsOn: [t2], agent: lint, timeout: 90}
  - {id: t4, project: web, title: d, dependsOn: [t1, t3], estimatedMinutes: 5}
executionOrder: [[t1, t2], [t3], [t4]]
"""

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["t1", "t3", "web", "api", "claude", "shell", "10m", "../x", "/abs", "a://b"])
)
KEYS = st.text(max_size=8) | st.sampled_from(
    ["id", "project", "title", "command", "profile", "url"]
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)


def all_paths(data: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every key path in `data`, the root included."""
    found = [path]
    children = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else []
    )
    for key, value in children:
        found.extend(all_paths(value, (*path, key)))
    return found


def replaced(data: object, path: tuple[object, ...], value: object) -> object:
    if not path:
        return value
    copy = json.loads(json.dumps(data))
    node = copy
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    return copy


def dump_yaml(data: object) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue()


def assert_loads_or_plan_error(root: Path, name: str, raw: bytes) -> None:
    path = root / "plans" / name
    path.write_bytes(raw)
    try:
        load_plan(path, root)
    except PlanError as error:
        assert error.lines()
        for line in error.lines():
            assert LINE.match(line), line
            assert "\n" not in line


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "plans").mkdir()
    return root


SOURCES = [("seed.json", SEED.read_bytes()), ("rich.yaml", RICH_YAML.encode())]


def test_the_rich_fixture_is_valid(fuzz_root: Path) -> None:
    path = write(fuzz_root, RICH_YAML, "rich.yaml")
    plan = load_plan(path, fuzz_root)
    assert plan.tasks["t3"].agent == AgentSpec(name="lint", command=("ruff", "check"), prompt="arg")
    assert plan.tasks["t1"].agent == AgentSpec(name="codex", profile="codex")
    assert plan.tasks["t4"].limits.retries == 0 and plan.tasks["t3"].limits.timeout == 90


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), st.data())
def test_flipped_bytes_give_plan_errors_only(
    fuzz_root: Path, source: tuple[str, bytes], data: st.DataObject
) -> None:
    name, raw = source
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), max_size=4)
    )
    changed = bytearray(raw)
    for position, byte in flips:
        changed[position] = byte
    assert_loads_or_plan_error(fuzz_root, name, bytes(changed))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SOURCES), st.data())
def test_truncated_files_give_plan_errors_only(
    fuzz_root: Path, source: tuple[str, bytes], data: st.DataObject
) -> None:
    name, raw = source
    assert_loads_or_plan_error(fuzz_root, name, raw[: data.draw(st.integers(0, len(raw)))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), st.data(), VALUES)
def test_random_values_at_random_paths_give_plan_errors_only(
    fuzz_root: Path, source: tuple[str, bytes], data: st.DataObject, value: object
) -> None:
    name, raw = source
    plan = YAML(typ="safe", pure=True).load(raw.decode())
    plan["createdAt"] = "2024-01-15T10:00:00Z"
    path = data.draw(st.sampled_from(all_paths(plan)))
    corrupted = replaced(plan, path, value)
    for suffix, text in (("json", json.dumps(corrupted)), ("yaml", dump_yaml(corrupted))):
        assert_loads_or_plan_error(fuzz_root, f"{name.split('.')[0]}.{suffix}", text.encode())


@st.composite
def dag_plans(draw: st.DrawFn) -> dict[str, object]:
    """A valid plan whose tasks form a random DAG (dependencies only on earlier-ranked tasks)."""
    size = draw(st.integers(1, 25))
    rank = draw(st.permutations(range(size)))
    names = [f"t{i}" for i in range(size)]
    tasks = []
    for i in range(size):
        earlier = [names[j] for j in range(size) if rank[j] < rank[i]]
        deps = draw(st.lists(st.sampled_from(earlier), max_size=3, unique=True)) if earlier else []
        project = draw(st.sampled_from(["web", "api"]))
        tasks.append({"id": names[i], "project": project, "title": f"task {i}", "dependsOn": deps})
    projects = [{"name": "web", "path": "web"}, {"name": "api", "path": "api"}]
    return {"planId": "dag", "projects": projects, "tasks": tasks}


@settings(max_examples=100, deadline=None)
@given(dag_plans(), st.booleans())
def test_generated_dags_load_and_their_layers_respect_dependencies(
    fuzz_root: Path, plan_data: dict[str, object], as_json: bool
) -> None:
    name = "dag.json" if as_json else "dag.yaml"
    text = json.dumps(plan_data) if as_json else dump_yaml(plan_data)
    plan = load(fuzz_root, text, name)
    phase = {task: n for n, tasks in enumerate(plan.phases) for task in tasks}
    order = list(plan.tasks)
    for task in plan.tasks.values():
        assert phase[task.id] == max((phase[d] + 1 for d in task.depends_on), default=0)
    for tasks in plan.phases:
        assert list(tasks) == sorted(tasks, key=order.index)
    given_order = dict(plan_data, executionOrder=[list(p) for p in plan.phases])
    assert load(fuzz_root, json.dumps(given_order), name).phases == plan.phases


@settings(max_examples=100, deadline=None)
@given(dag_plans(), st.data())
def test_generated_cycles_are_reported_along_real_edges(
    fuzz_root: Path, plan_data: dict[str, Any], data: st.DataObject
) -> None:
    tasks = plan_data["tasks"]
    ids = [task["id"] for task in tasks]
    assume(len(ids) >= 2)
    loop = data.draw(st.lists(st.sampled_from(ids), min_size=2, max_size=5, unique=True))
    by_id = {task["id"]: task for task in tasks}
    for here, there in zip(loop, loop[1:] + loop[:1], strict=True):
        if there not in by_id[here]["dependsOn"]:
            by_id[here]["dependsOn"].append(there)
    lines = errors(fuzz_root, json.dumps(plan_data), "cycle.json")
    cycles = [line.split("dependency cycle: ")[1] for line in lines if "dependency cycle: " in line]
    assert cycles and len(cycles) == len(lines)
    for cycle in cycles:
        hops = cycle.split(" -> ")
        assert hops[0] == hops[-1]
        for here, there in itertools.pairwise(hops):
            assert there in by_id[here]["dependsOn"]


# -- the fast YAML loader --------------------------------------------------------------------


def safe_load(text: str) -> tuple[str, object]:
    """ruamel's safe loader in pure Python: the YAML 1.2 reference, with or without its clib."""
    try:
        return "ok", YAML(typ="safe", pure=True).load(text)
    except Exception:  # the reference result, whatever it is
        return "error", None


def fast_load(text: str) -> tuple[str, object]:
    try:
        return "ok", load_yaml(text)
    except (YAMLError, ValueError):
        return "error", None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a: 1",
        "a: {b: [1, 2.5, .inf, -.inf, 0x1f, 0o17, 017, 1_000, true, False, null, ~, '', x]}",
        "when: 2024-01-15T10:00:00Z\nday: 2024-01-15\nbad: 2024-13-45",
        "a: &x [1]\nb: *x",
        "a: !!str 1",
        "<<: {a: 1}\nb: 2",
        "%YAML 1.1\n---\na: yes",
        "? [a]\n: 1",
        "a: 1\na: 2",
        "---\na: 1\n---\nb: 2",
        "a: |\n  text\n  more\nb: >\n  folded\n",
        "'1': x\n1: y",
        "=: 1",
        "a: !foo x",
        "123",
        "[1, 2",
        "a: b: c",
        "notify: [ntfy://x, 'a: b']",
        "a: &x 1\nb: &x 2\nc: *x",
    ],
)
def test_fast_yaml_loader_matches_ruamel_safe(text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference may warn; the fast loader must not
        expected = safe_load(text)
    assert repr(fast_load(text)) == repr(expected)


@settings(max_examples=200, deadline=None)
@given(VALUES, st.sampled_from([None, True, False]))
def test_fast_yaml_loader_matches_ruamel_on_dumped_data(value: object, flow: bool | None) -> None:
    stream = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    try:
        yaml.dump(value, stream)
    except Exception:  # some generated text cannot be written as YAML: nothing to compare
        assume(False)
    assert repr(fast_load(stream.getvalue())) == repr(safe_load(stream.getvalue()))


@settings(max_examples=150, deadline=None)
@given(VALUES.filter(lambda v: isinstance(v, (dict, list))), st.sampled_from([None, False]))
def test_positions_match_ruamel_round_trip(value: object, flow: bool | None) -> None:
    stream = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    try:
        yaml.dump(value, stream)
        tree = YAML(typ="rt").load(stream.getvalue())
    except Exception:
        assume(False)
    paths = [p for p in all_paths(load_yaml(stream.getvalue())) if p]
    found = positions(stream.getvalue(), paths)
    for path in paths:
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if isinstance(parent, list):
            assert found[path] == (parent.lc.item(key), parent.lc.item(key))
        elif all(isinstance(k, str) for k in parent):
            assert found[path] == (parent.lc.key(key), parent.lc.value(key)), path


# --- plan keys, declared once (orchlib/plan/keys.py) ---------------------------------------

SPEC_PLAN = {
    "planId": "spec",
    "context": "plan context",
    "projects": [{"name": "p", "path": "p", "context": "project context"}],
    "tasks": [
        {"id": "t1", "project": "p", "title": "T", "description": "D", "command": ["make"],
         "verify": ["make", "test"], "outputs": ["out/*"], "inputs": ["src/**"]},
    ],
}  # fmt: skip


def _spec_of(tmp_path: Path, plan: dict[str, Any], task_id: str = "t1") -> str:
    from orchlib.state.stamps import spec_hash

    path = tmp_path / "plans" / "spec.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(plan))
    loaded = load_plan(path, tmp_path)
    return spec_hash(loaded, loaded.tasks[task_id], "TEMPLATE")


def test_spec_hash_is_the_one_stamps_already_carry(tmp_path: Path) -> None:
    """The hash of the declared keys equals the hand-listed one of earlier versions: a
    checkout's existing stamps stay up to date."""
    import hashlib

    agent = load_plan_agent(tmp_path)
    earlier = {
        "title": "T", "description": "D", "agent": agent, "command": ("make",),
        "verify": ("make", "test"), "outputs": ("out/*",), "inputs": ("src/**",),
        "context": ["plan context", "project context"], "template": "TEMPLATE",
    }  # fmt: skip
    blob = json.dumps(earlier, sort_keys=True, default=str).encode()
    assert _spec_of(tmp_path, SPEC_PLAN) == hashlib.sha256(blob).hexdigest()[:32]


def load_plan_agent(tmp_path: Path) -> list[Any]:
    from orchlib.state.stamps import _agent_repr

    path = tmp_path / "plans" / "spec.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(SPEC_PLAN))
    return _agent_repr(load_plan(path, tmp_path).tasks["t1"])


@pytest.mark.parametrize(
    ("key", "value", "enters"),
    [
        ("title", "T2", True), ("description", "D2", True), ("command", ["cc"], True),
        ("verify", ["v"], True), ("outputs", ["o"], True), ("inputs", ["i"], True),
        ("complexity", "high", False), ("estimatedMinutes", 5, False), ("retries", 3, False),
        ("timeout", "1h", False),
    ],
)  # fmt: skip
def test_a_key_changes_the_spec_hash_exactly_when_declared_in_spec(
    tmp_path: Path, key: str, value: object, enters: bool
) -> None:
    from orchlib.plan import keys

    declared = next(k for k in keys.TASK if k.name == key)
    assert declared.in_spec is enters
    changed = json.loads(json.dumps(SPEC_PLAN))
    changed["tasks"][0][key] = value
    assert (_spec_of(tmp_path, changed) != _spec_of(tmp_path, SPEC_PLAN)) is enters


def test_every_declared_key_fills_a_model_field_with_its_default() -> None:
    from orchlib.plan import Project, Task, keys
    from orchlib.plan.schema import PLAN_OPTIONAL, TASK_KEYS, TASK_OPTIONAL

    for model, declared in ((Plan, keys.PLAN), (Project, keys.PROJECT), (Task, keys.TASK)):
        fields = {f.name: f for f in dataclasses.fields(model)}
        for key in declared:
            if key.field and key not in keys.LIMIT_KEYS:
                assert key.field in fields, (model.__name__, key.name)
        for key in keys.plain(declared):
            if key.name == "parallel":  # the model's 1 without isolation, the key's 2 with it
                continue
            default = fields[key.field].default
            if default is not dataclasses.MISSING:
                assert default == key.default, (model.__name__, key.name)
    limits = Limits()
    assert all(getattr(limits, k.field) == k.default for k in keys.LIMIT_KEYS)
    assert TASK_KEYS == ("id", "project", "title") and "retryOnError" in TASK_OPTIONAL
    assert "allowOutsidePaths" in PLAN_OPTIONAL


def test_the_plan_cache_key_covers_every_source_a_valid_plan_depends_on() -> None:
    """A profile renamed in its own module, a new executor or a changed check invalidates
    every cached plan: each such module's source is in the cache key."""
    import orchlib
    from orchlib.plan import file as planfile

    root = Path(orchlib.__file__).parent
    covered = {p.relative_to(root).as_posix() for p in planfile.code_sources()}
    expected = {p.relative_to(root).as_posix() for d in ("plan", "agents")
                for p in (root / d).glob("*.py")} | {"executorregistry.py"}  # fmt: skip
    assert covered == expected
    assert {"agents/claude.py", "agents/__init__.py", "plan/schema.py"} <= covered
