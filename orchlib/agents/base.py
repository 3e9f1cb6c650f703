"""What every agent profile is: the record of one CLI's headless command line and output
reading, and the building of one attempt's argv from it (pre-commit's `lang_base`).

A plan may extend a profile (`args`, `env`, `prompt`, `session`) or name a custom command.
Everything a plan gives goes into argv as separate arguments, never through a shell, and
placeholders are replaced in one pass of exact tokens, so neither `$(...)` nor `{...}` in
plan text means anything. No import of the plan here (this package sits below it): a
plan's agent is read through the `Spec` protocol.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from orchlib.agents.streams import Json, OutputAdapter

PLACEHOLDERS = (
    "prompt",
    "prompt_file",
    "terminal_id",
    "task_id",
    "plan_id",
    "project",
    "project_path",
)
TOOL_INPUT_LIMIT = 160
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


@dataclass(frozen=True)
class Launch:
    """What the dispatcher knows for one attempt."""

    prompt: str
    prompt_file: Path
    terminal_id: str
    task_id: str
    plan_id: str
    project: str
    project_path: Path
    resume_session: str | None = None


@dataclass(frozen=True)
class Invocation:
    """How to start the agent: argv (no shell), extra environment, where the prompt goes.

    `prompt_mode` is the delivery actually used: "stdin" (feed the prompt file, then close
    stdin), "file" or "arg" (the prompt is in argv; stdin stays open).
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    prompt_mode: str


@dataclass(frozen=True)
class Profile:
    """One CLI's headless command line, and how its output is read (`name` is the plan's).

    argv = program, base, permission, resume (unless `resume_last`), plan args, resume (if
    `resume_last`), prompt[mode]. `permission` is dropped when the plan's args name any of
    `permission_flags`, so a plan can choose its own policy without a duplicate flag.
    `prompt` lists the deliveries the CLI supports; another one falls back to the first.
    """

    name: str
    program: str
    base: tuple[str, ...]
    prompt: Mapping[str, tuple[str, ...]]
    adapter: Callable[[], OutputAdapter]
    permission: tuple[str, ...] = ()
    permission_flags: tuple[str, ...] = ()
    resume: tuple[str, ...] = ()
    resume_last: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    # The variables the CLI logs in with (docs/agents.md names the source of each): they
    # reach this profile's agents whatever `environment` says, and no other process.
    login: tuple[str, ...] = ()
    # What the CLI writes outside the project (DESIGN §14, docs/agents.md): writable inside
    # the sandbox. `~/` is the home where it runs; a trailing "/" marks a folder.
    state: tuple[str, ...] = ()
    reports_usd: bool = False  # its usage has a cost in USD (else tokens only; DESIGN §15)
    # `doit log`'s reading of one JSON event (None: the adapter's own texts are shown).
    transcript: Callable[[Json], list[str]] | None = None


class Spec(Protocol):
    """A plan's agent as this package reads it (orchlib.plan.AgentSpec)."""

    @property
    def name(self) -> str: ...
    @property
    def profile(self) -> str | None: ...
    @property
    def command(self) -> tuple[str, ...]: ...
    @property
    def prompt(self) -> str | None: ...
    @property
    def args(self) -> tuple[str, ...]: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    @property
    def session(self) -> str: ...


@dataclass(frozen=True)
class Logins:
    """Variables agent CLIs log in with: the agent's own reach it whatever the policy says;
    other CLIs' are withheld unless `include` names them (DESIGN §13)."""

    own: tuple[str, ...] = ()
    others: tuple[str, ...] = ()


def build(profile: Profile, spec: Spec, launch: Launch) -> Invocation:
    """The command line, environment and prompt delivery of `profile` extended by `spec`."""
    mode = _prompt_mode(spec.prompt, profile)
    head = _substitute((profile.program, *profile.base), launch)
    if not _names_any(spec.args, profile.permission_flags):
        head += profile.permission
    resume = _resume_args(spec, launch, profile)
    args = _substitute(spec.args, launch)
    prompt = _substitute(profile.prompt[mode], launch)
    if profile.resume_last:
        argv = (*head, *args, *resume, *prompt)
    else:
        argv = (*head, *resume, *args, *prompt)
    return Invocation(argv=argv, env={**profile.env, **spec.env}, prompt_mode=mode)


def custom(spec: Spec, launch: Launch) -> Invocation:
    """A plan's own command: the prompt on stdin by default, else in argv as asked."""
    if not spec.command:
        raise ValueError(f"agent {spec.name!r}: a custom agent needs a command")
    mode = spec.prompt or "stdin"
    raw = (*spec.command, *spec.args)
    if mode == "arg" and not any("{prompt}" in arg for arg in raw):
        raw += ("{prompt}",)
    elif mode == "file" and not any("{prompt_file}" in arg for arg in raw):
        raw += ("{prompt_file}",)
    return Invocation(argv=_substitute(raw, launch), env=dict(spec.env), prompt_mode=mode)


def _prompt_mode(wanted: str | None, profile: Profile) -> str:
    """`wanted` if the CLI can take the prompt that way, else the profile's default."""
    if wanted is not None and wanted in profile.prompt:
        return wanted
    return next(iter(profile.prompt))


def _substitute(args: tuple[str, ...], launch: Launch) -> tuple[str, ...]:
    """`args` with each placeholder token replaced; one pass, so values are never rescanned."""
    values = {
        "prompt": launch.prompt,
        "prompt_file": str(launch.prompt_file),
        "terminal_id": launch.terminal_id,
        "task_id": launch.task_id,
        "plan_id": launch.plan_id,
        "project": launch.project,
        "project_path": str(launch.project_path),
    }
    return tuple(_PLACEHOLDER.sub(lambda m: values[m[1]], arg) for arg in args)


def _names_any(args: tuple[str, ...], flags: tuple[str, ...]) -> bool:
    """Whether `args` use any of `flags` (`--flag`, `--flag=value`, or `-sVALUE`)."""
    for arg in args:
        for flag in flags:
            if arg == flag or arg.startswith(flag + "="):
                return True
            if len(flag) == 2 and arg.startswith(flag) and not arg.startswith("--"):
                return True
    return False


def _resume_args(spec: Spec, launch: Launch, profile: Profile) -> tuple[str, ...]:
    """The flags that continue the project's previous agent session, if this attempt does.

    The session id is the CLI's own output, so it is inserted as is, never substituted.
    """
    if spec.session != "continue" or not launch.resume_session or not profile.resume:
        return ()
    return (*profile.resume, launch.resume_session)


def tool_line(name: object, given: object) -> str:
    """`→ Bash: npm test`: one tool call in a `doit log` transcript."""
    text = json.dumps(given, ensure_ascii=False) if not isinstance(given, str) else given
    text = " ".join(text.split())
    if len(text) > TOOL_INPUT_LIMIT:
        text = text[: TOOL_INPUT_LIMIT - 1] + "…"
    return f"→ {name}: {text}"
