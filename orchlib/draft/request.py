"""What the user asked of `doit draft`: the goal, the drafting agent, the plan id, the rounds.

`--agent` takes a built-in profile name, an agent mapping as in a plan (`{profile: claude,
args: [...]}` or `{command: [...]}`, checked by the plan validator's own code), or a command
line (`python my_agent.py`), which is split like a shell would split it but never run by one.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchlib import agents
from orchlib.errors import ConfigError
from orchlib.plan import AgentSpec
from orchlib.records import replace


@dataclass(frozen=True)
class DraftRequest:
    """The options of one `doit draft` call, parsed."""

    goal: str = ""
    source: str = ""
    agent: str = ""
    plan_id: str = ""
    rounds: int | None = None
    force: bool = False
    answer: str | None = None


@dataclass(frozen=True)
class DraftAgent:
    """The drafting agent: how to run it, and the `agent:` value a plan gets when it has none."""

    spec: AgentSpec
    plan_value: Any


def read_goal(goal: str, source: str, checkout: Path) -> str:
    """The goal text: the words given, then the content of `--from`; ConfigError when empty."""
    parts = [goal.strip()] if goal.strip() else []
    if source:
        path = checkout / Path(source).expanduser()
        try:
            parts.append(path.read_text(encoding="utf-8-sig").strip())
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"orchlib: --from {source}: cannot read it: {why}") from None
    text = "\n\n".join(p for p in parts if p)
    if not text:
        raise ConfigError('orchlib: no goal: doit draft "what to build" (or --from PRD.md)')
    return text


def resolve_agent(value: str) -> DraftAgent:
    """The agent `--agent` names (a built-in found on PATH when empty); ConfigError if unusable."""
    value = value.strip()
    if not value:
        # the registry's order is the search order (DESIGN §9)
        found = next((p.name for p in agents.PROFILES.values() if shutil.which(p.program)), None)
        if found is None:
            tried = ", ".join(p.program for p in agents.PROFILES.values())
            raise ConfigError(
                f"orchlib: no agent CLI found on PATH (looked for {tried}); "
                "install one or pass --agent"
            )
        value = found
    if value == agents.SHELL:
        raise ConfigError("orchlib: --agent shell runs commands, it cannot write a plan")
    if value in agents.BUILTIN:
        found_agent = DraftAgent(AgentSpec(name=value, profile=value), value)
    elif value.startswith("{"):
        found_agent = _mapping(value)
    else:
        found_agent = _command(value)
    _check_on_path(found_agent.spec)
    return found_agent


def _mapping(value: str) -> DraftAgent:
    """An agent mapping, validated as the `agent:` key of a plan is."""
    from orchlib.plan.agentspec import Agents
    from orchlib.plan.checks import Issues, dotted
    from orchlib.plan.yamlload import load_yaml

    try:
        data = load_yaml(value)
    except Exception as exc:  # ruamel's YAMLError: shown as one line
        why = " ".join(str(exc).split())
        raise ConfigError(f"orchlib: --agent: not a YAML mapping: {why}") from None
    issues = Issues()
    spec = Agents(issues, None, ("agents",)).one(issues, data, ("agent",))
    if spec is None or issues:
        lines = [f"orchlib: --agent: {dotted(i.path)}: {i.message}" for i in issues]
        raise ConfigError("\n".join(lines) or "orchlib: --agent: not an agent mapping")
    if spec.command:  # it runs in the draft folder: files of the checkout by absolute path
        command = tuple(_absolute(arg, program=(i == 0)) for i, arg in enumerate(spec.command))
        spec = replace(spec, command=command)
    return DraftAgent(spec, data)


def _command(value: str) -> DraftAgent:
    """A command line: argv without a shell; the prompt goes to its stdin."""
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise ConfigError(f"orchlib: --agent: cannot split {value!r}: {exc}") from None
    if not argv:
        raise ConfigError("orchlib: --agent: empty command")
    # The drafting agent runs in its draft folder and the plan's tasks in their project
    # folders, so the files it names relative to the checkout are named by absolute path.
    in_plan = [_absolute(arg, program=(i == 0)) for i, arg in enumerate(argv)]
    spec = AgentSpec(name=Path(argv[0]).name, command=tuple(in_plan))
    return DraftAgent(spec, {"command": in_plan})


def _absolute(arg: str, program: bool) -> str:
    """`arg` as an absolute path when it names a file here (a program only when it has a /)."""
    path = Path(arg)
    named = ("/" in arg and path.exists()) if program else path.is_file()
    return str(path.resolve()) if named else arg


def _check_on_path(spec: AgentSpec) -> None:
    program = agents.executable(spec)
    if shutil.which(program) is None and not os.access(program, os.X_OK):
        raise ConfigError(
            f"orchlib: agent {program!r} not found on PATH; install it or pass another --agent"
        )
