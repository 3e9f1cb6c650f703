"""Agent settings in a plan: built-in profiles, the plan's named `agents`, and their extensions.

An `agent:` value is a profile name (a built-in or a key of `agents`), a mapping: a
custom command `{command: [argv...], prompt, env}` or an extension `{profile, args, env,
session, prompt}` whose args and env are merged over the named base, or a non-empty list of
those: fallback agents, the first used until a usage limit holds it (DESIGN §15).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, TypeVar

from orchlib import agents
from orchlib.plan import PROMPT_MODES, SESSION_MODES, AgentSpec, codestrings
from orchlib.plan.checks import (
    Issues,
    KeyPath,
    choice,
    get,
    items,
    mapping,
    q,
    text,
    unknown,
    wrong,
)

DEFAULT = AgentSpec(name=agents.DEFAULT, profile=agents.DEFAULT)
# A resolved `agent:` value: one agent, or a fallback list as written.
Choice = AgentSpec | tuple[AgentSpec, ...]
C = TypeVar("C", AgentSpec | tuple[AgentSpec, ...], None)
SHELL = AgentSpec(name=agents.SHELL, profile=agents.SHELL)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CODE_ADVICE = (
    'pass it as its own argument ([sh, -c, \'tool "$1"\', sh, "{prompt}"]), '
    "on stdin (prompt: stdin) or in a file ({prompt_file})"
)


class Agents:
    """Resolves `agent:` values against the built-in profiles and the plan's `agents`."""

    def __init__(self, issues: Issues, raw: object, path: KeyPath) -> None:
        self.issues = issues
        self.path = path
        self.raw: dict[str, Any] = {}
        self.done: dict[str, AgentSpec | None] = {}
        self.busy: list[str] = []
        if raw is not None:
            names = [key for key in raw if isinstance(key, str)] if isinstance(raw, dict) else []
            self.raw = mapping(issues, raw, path, (), names) or {}

    def resolve_all(self) -> None:
        """Check every entry of `agents`, used or not."""
        for name in self.raw:
            if isinstance(name, str):
                self.named(name, (*self.path, name))

    def value(self, issues: Issues, value: object, path: KeyPath) -> Choice | None:
        """An `agent:` value: a profile name, a mapping or a fallback list (for `get`)."""
        if isinstance(value, list):
            return self.fallback(issues, value, path)
        return self.one(issues, value, path)

    def choice(self, m: dict[str, Any], path: KeyPath, default: C) -> Choice | C:
        """The `agent` key of mapping `m`, or `default` when absent or invalid."""
        if "agent" not in m:
            return default
        found = self.value(self.issues, m["agent"], (*path, "agent"))
        return default if found is None else found

    def one(self, issues: Issues, value: object, path: KeyPath) -> AgentSpec | None:
        """One agent: a profile name or a mapping."""
        if isinstance(value, str):
            return self.named(value, path)
        if isinstance(value, dict):
            return self.spec(value, path, None)
        wrong(issues, path, "a profile name, a mapping or a list of them", value)
        return None

    def fallback(self, issues: Issues, value: list[Any], path: KeyPath) -> Choice | None:
        """`agent: [claude, codex]`: each an agent of its own, none a shell."""
        if not value:
            issues.add(path, "an agent list must name at least one agent")
            return None
        found = []
        for index, item in enumerate(value):
            spec = self.one(issues, item, (*path, index))
            if spec is not None and spec.profile == agents.SHELL:
                issues.add((*path, index), "'shell' cannot be a fallback agent")
            found.append(spec)
        specs = tuple(spec for spec in found if spec is not None)
        return specs if len(specs) == len(value) else None

    def named(self, name: str, path: KeyPath) -> AgentSpec | None:
        """A key of `agents` (resolved once), else a built-in profile.

        Inside `agents.X`, `profile: X` means the built-in X, so a plan can tune `claude`.
        """
        if name in self.raw and name not in self.busy:
            return self._entry(name)
        if name in agents.BUILTIN:
            return AgentSpec(name=name, profile=name)
        if name in self.busy:
            cycle = " -> ".join([*self.busy[self.busy.index(name) :], name])
            self.issues.add(path, f"agent profile cycle: {cycle}")
        else:
            self.issues.add(path, unknown("agent profile", name, [*agents.BUILTIN, *self.raw]))
        return None

    def _entry(self, name: str) -> AgentSpec | None:
        if name not in self.done:
            self.busy.append(name)
            entry = self.raw[name]
            path = (*self.path, name)
            if isinstance(entry, dict):
                self.done[name] = self.spec(entry, path, name)
            else:
                wrong(self.issues, path, "a mapping {command: ...} or {profile: ...}", entry)
                self.done[name] = None
            self.busy.pop()
        return self.done[name]

    def spec(self, m: dict[Any, Any], path: KeyPath, name: str | None) -> AgentSpec | None:
        """A custom command or an extended profile; `name` is the `agents` key if any."""
        if "command" in m and "profile" in m:
            self.issues.add(path, "set either 'command' (custom agent) or 'profile', not both")
        elif "command" in m:
            return self._custom(m, path, name)
        elif "profile" in m:
            return self._extend(m, path, name)
        else:
            self.issues.add(path, "an agent mapping needs 'command' (custom) or 'profile'")
        return None

    def _custom(self, m: dict[Any, Any], path: KeyPath, name: str | None) -> AgentSpec | None:
        issues = self.issues
        mapping(issues, m, path, ("command",), ("prompt", "env", "maxParallel"))
        command = get(issues, m, "command", path, argv_list, ())
        cap = get(issues, m, "maxParallel", path, max_parallel, 0)
        prompt = get(issues, m, "prompt", path, choice(PROMPT_MODES), None)
        variables = get(issues, m, "env", path, env, {})
        if not command:
            return None
        _no_text_in_code(issues, command, prompt, lambda i: (*path, "command", i), path)
        return AgentSpec(
            name=name or PurePath(command[0]).name or command[0],
            command=command,
            prompt=prompt,
            env=variables,
            max_parallel=cap,
        )

    def _extend(self, m: dict[Any, Any], path: KeyPath, name: str | None) -> AgentSpec | None:
        issues = self.issues
        mapping(issues, m, path, ("profile",), ("args", "env", "session", "prompt", "maxParallel"))
        profile = get(issues, m, "profile", path, text, None)
        cap = get(issues, m, "maxParallel", path, max_parallel, None)
        base = None if profile is None else self.named(profile, (*path, "profile"))
        args = get(issues, m, "args", path, strings, ())
        variables = get(issues, m, "env", path, env, {})
        session = get(issues, m, "session", path, choice(SESSION_MODES), None)
        prompt = get(issues, m, "prompt", path, choice(PROMPT_MODES), None)
        if base is None:
            return None
        if base.command:  # a custom command extended: its argv grows by `args`
            before = len(base.command) + len(base.args)
            _no_text_in_code(
                issues, (*base.command, *base.args, *args), prompt or base.prompt,
                lambda i: (*path, "args", i - before) if i >= before else None,
                path if prompt else None,
            )  # fmt: skip
        return AgentSpec(
            name=name or base.name,
            profile=base.profile,
            command=base.command,
            prompt=prompt or base.prompt,
            args=base.args + args,
            env={**base.env, **variables},
            session=session or base.session,
            max_parallel=base.max_parallel if cap is None else cap,
        )


def _no_text_in_code(
    issues: Issues, argv: tuple[str, ...], prompt: str | None,
    where: Callable[[int], KeyPath | None], mapping_path: KeyPath | None,
) -> None:  # fmt: skip
    """Refuse plan text in a shell's or interpreter's code string of a custom command,
    including the `{prompt}` that `prompt: arg` appends when the command has none."""
    codestrings.check(issues, argv, where, codestrings.AGENT_TEXT, CODE_ADVICE)
    if prompt != "arg" or mapping_path is None or any("{prompt}" in arg for arg in argv):
        return
    full = (*argv, "{prompt}")  # as agents/base.py appends it
    for index, how in codestrings.code_arguments(full):
        if index == len(argv):
            issues.add((*mapping_path, "prompt"), f"'arg' puts the prompt after `{how}`, as the "
                       f"code it runs: plan text would run as code; {CODE_ADVICE}")  # fmt: skip


def strings(issues: Issues, value: object, path: KeyPath) -> tuple[str, ...] | None:
    """A list of strings (argv or args)."""
    if not isinstance(value, list):
        wrong(issues, path, "a list of strings", value)
        return None
    parsed = items(issues, value, path, text)
    return tuple(parsed) if len(parsed) == len(value) else None


def argv_list(issues: Issues, value: object, path: KeyPath) -> tuple[str, ...] | None:
    """A non-empty list of strings: a program and its arguments, no shell involved."""
    result = strings(issues, value, path)
    if result == ():
        issues.add(path, "the command list must not be empty")
        return None
    return result


def max_parallel(issues: Issues, value: object, path: KeyPath) -> int | None:
    """`maxParallel`: a whole number >= 1 (no key: no cap)."""
    if isinstance(value, bool) or not isinstance(value, int):
        wrong(issues, path, "a whole number >= 1", value)
        return None
    if value < 1:
        issues.add(path, f"must be >= 1, got {value}")
        return None
    return value


def env(issues: Issues, value: object, path: KeyPath) -> dict[str, str] | None:
    """Environment variables: a mapping of NAME to string."""
    if not isinstance(value, dict):
        wrong(issues, path, "a mapping of variable names to strings", value)
        return None
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
            issues.add(path, f"bad environment variable name {q(key)}")
        elif text(issues, item, (*path, key)) is not None:
            result[key] = item
    return result


def first(choice: Choice | None) -> AgentSpec | None:
    """The agent used first: the agent itself, or the head of a fallback list."""
    return choice[0] if isinstance(choice, tuple) else choice


def task_agents(
    issues: Issues, own: Choice | None, inherited: Choice, command: bool, path: KeyPath
) -> tuple[AgentSpec, tuple[AgentSpec, ...]]:
    """The agent a task runs first, and its fallback list as written (() for one agent)."""
    head = first(inherited)
    assert head is not None  # a list is never empty
    agent = task_agent(issues, first(own), head, command, path)
    chosen = own if own is not None else inherited
    return agent, (chosen if isinstance(chosen, tuple) and not command else ())


def task_agent(
    issues: Issues, own: AgentSpec | None, inherited: AgentSpec, command: bool, path: KeyPath
) -> AgentSpec:
    """The agent a task runs: a `command` makes it a shell task; `shell` needs a command."""
    if command:
        if own is not None and own.profile != agents.SHELL:
            issues.add((*path, "agent"), "a task with 'command' runs in the shell: drop 'agent'")
        return own if own is not None and own.profile == agents.SHELL else SHELL
    agent = own or inherited
    if agent.profile == agents.SHELL:
        issues.add(path, "agent 'shell' needs a 'command' to run")
    return agent
