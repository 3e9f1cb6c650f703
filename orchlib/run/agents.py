"""Agent profiles: how each coding-agent CLI is started headless, and how its output is read.

A built-in profile is a fixed command line for one CLI's real non-interactive mode (see
docs/agents.md for each one and the sources behind it). A plan may extend a profile
(`args`, `env`, `prompt`, `session`) or name a custom command. Everything a plan gives goes
into argv as separate arguments, never through a shell, and placeholders are replaced in
one pass of exact tokens, so neither `$(...)` nor `{...}` in plan text means anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchlib.plan import AgentSpec
from orchlib.plan.environment import Logins
from orchlib.run.aider import AiderText
from orchlib.run.clistreams import ClaudeStream, CodexJson, GeminiStream, OpencodeJson
from orchlib.run.streams import OutputAdapter, PlainText

BUILTIN = ("claude", "codex", "gemini", "aider", "opencode", "shell")
PLACEHOLDERS = (
    "prompt",
    "prompt_file",
    "terminal_id",
    "task_id",
    "plan_id",
    "project",
    "project_path",
)
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
    """One CLI's headless command line.

    argv = program, base, permission, resume (unless `resume_last`), plan args, resume (if
    `resume_last`), prompt[mode]. `permission` is dropped when the plan's args name any of
    `permission_flags`, so a plan can choose its own policy without a duplicate flag.
    `prompt` lists the deliveries the CLI supports; another one falls back to the first.
    """

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


PROFILES: Mapping[str, Profile] = {
    # Prompt on stdin only: claude -p waits for stdin EOF even with a prompt argument, and
    # its variadic options (--allowedTools, --add-dir) would swallow a trailing prompt.
    "claude": Profile(
        program="claude",
        base=("-p", "--output-format", "stream-json", "--verbose"),
        permission=("--permission-mode", "acceptEdits"),
        permission_flags=("--permission-mode", "--dangerously-skip-permissions"),
        resume=("--resume",),
        prompt={"stdin": ()},
        adapter=ClaudeStream,
        reports_usd=True,
        login=(
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "AWS_BEARER_TOKEN_BEDROCK",
        ),
        state=("~/.claude/", "~/.claude.json"),
    ),
    # `-` forces the prompt from stdin; with a prompt argument codex still reads a piped
    # stdin to EOF (to append it), which an open pipe never reaches.
    "codex": Profile(
        program="codex",
        base=("exec", "--json", "--skip-git-repo-check"),
        permission=("--sandbox", "workspace-write"),
        permission_flags=(
            "--sandbox",
            "-s",
            "--full-auto",
            "--dangerously-bypass-approvals-and-sandbox",
            "--yolo",
        ),
        resume=("resume",),
        resume_last=True,
        prompt={"stdin": ("-",)},
        adapter=CodexJson,
        login=("OPENAI_API_KEY", "CODEX_API_KEY", "CODEX_ACCESS_TOKEN"),
        state=("~/.codex/",),
    ),
    # gemini stops waiting for stdin after 500 ms without data, so `-p` is safe here;
    # `--prompt=` keeps a prompt that starts with "-" from being read as a flag.
    "gemini": Profile(
        program="gemini",
        base=("--output-format", "stream-json"),
        permission=("--approval-mode", "auto_edit"),
        permission_flags=("--approval-mode", "--yolo", "-y"),
        resume=("--resume",),
        prompt={"stdin": (), "arg": ("--prompt={prompt}",)},
        adapter=GeminiStream,
        # Headless gemini exits 55 in a folder it does not trust (0.61, folder trust on by
        # default). The variable, unlike `--skip-trust`, is harmless to releases without it.
        env={"GEMINI_CLI_TRUST_WORKSPACE": "true"},
        login=("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"),
        state=("~/.gemini/",),
    ),
    # aider reads its chat from stdin line by line, so the prompt goes by file or argument.
    "aider": Profile(
        program="aider",
        base=("--no-pretty", "--no-fancy-input", "--no-check-update", "--no-analytics"),
        permission=("--yes-always",),
        permission_flags=("--yes-always",),
        prompt={"file": ("--message-file", "{prompt_file}"), "arg": ("--message={prompt}",)},
        adapter=AiderText,
        # aider reaches each provider through litellm, which reads that provider's key;
        # AIDER_* are its own option variables (--openai-api-key, --api-key).
        login=(
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GEMINI_API_KEY",
            "OPENROUTER_API_KEY",
            "DEEPSEEK_API_KEY",
            "GROQ_API_KEY",
            "AIDER_OPENAI_API_KEY",
            "AIDER_ANTHROPIC_API_KEY",
            "AIDER_API_KEY",
        ),
        state=("~/.aider/",),  # its history and tags cache are in the project
    ),
    # `opencode run` reads a piped stdin to EOF whether or not a message argument is given.
    "opencode": Profile(
        program="opencode",
        base=("run", "--format", "json"),
        permission_flags=("--auto", "--dangerously-skip-permissions", "--yolo"),
        resume=("--session",),
        prompt={"stdin": ()},
        adapter=OpencodeJson,
        reports_usd=True,
        # Each provider's `env` list from models.dev, which opencode reads for its key.
        login=(
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "GEMINI_API_KEY",
            "GOOGLE_GENERATIVE_AI_API_KEY",
            "OPENROUTER_API_KEY",
            "OPENCODE_API_KEY",
            "GROQ_API_KEY",
            "DEEPSEEK_API_KEY",
        ),
        state=(
            "~/.local/share/opencode/",
            "~/.config/opencode/",
            "~/.cache/opencode/",
            "~/.local/state/opencode/",
        ),
    ),
}


def invocation(spec: AgentSpec, launch: Launch) -> Invocation:
    """The command line, environment and prompt delivery for one attempt of `spec`."""
    if spec.profile == "shell":
        raise ValueError("shell tasks run their own command; they have no agent invocation")
    if spec.profile is None:
        return _custom(spec, launch)
    profile = _profile(spec)
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


def all_logins() -> tuple[str, ...]:
    """Every variable any built-in profile's CLI logs in with (their values are secrets)."""
    return tuple(sorted({name for profile in PROFILES.values() for name in profile.login}))


def logins(spec: AgentSpec | None) -> Logins:
    """The login variables `spec`'s process gets (its profile's), and those it does not
    (every other CLI's); None: a shell task or a verify, which gets none."""
    profile = PROFILES.get(spec.profile or "") if spec is not None else None
    own = profile.login if profile is not None else ()
    return Logins(own=own, others=tuple(n for n in all_logins() if n not in own))


def executable(spec: AgentSpec) -> str:
    """The program to look up on PATH before dispatching (argv[0] before substitution)."""
    if spec.profile == "shell":
        return "sh"
    if spec.profile is None:
        if not spec.command:
            raise ValueError(f"agent {spec.name!r}: a custom agent needs a command")
        return spec.command[0]
    return _profile(spec).program


def state_paths(spec: AgentSpec) -> tuple[str, ...]:
    """The state folders and files the agent's CLI writes outside the project."""
    if spec.profile is None or spec.profile == "shell":
        return ()
    return _profile(spec).state


def reports_usd(spec: AgentSpec) -> bool:
    """Whether the agent's CLI reports a cost in USD (a custom command reports nothing)."""
    profile = PROFILES.get(spec.profile or "")
    return profile is not None and profile.reports_usd


def adapter(spec: AgentSpec) -> OutputAdapter:
    """A fresh reader for one attempt's output."""
    if spec.profile is None or spec.profile == "shell":
        return PlainText()
    return _profile(spec).adapter()


def _profile(spec: AgentSpec) -> Profile:
    """The built-in profile `spec` names."""
    try:
        return PROFILES[spec.profile or ""]
    except KeyError:
        known = ", ".join(BUILTIN)
        raise ValueError(
            f"agent {spec.name!r}: unknown profile {spec.profile!r} (known: {known})"
        ) from None


def _prompt_mode(wanted: str | None, profile: Profile) -> str:
    """`wanted` if the CLI can take the prompt that way, else the profile's default."""
    if wanted is not None and wanted in profile.prompt:
        return wanted
    return next(iter(profile.prompt))


def _custom(spec: AgentSpec, launch: Launch) -> Invocation:
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


def _resume_args(spec: AgentSpec, launch: Launch, profile: Profile) -> tuple[str, ...]:
    """The flags that continue the project's previous agent session, if this attempt does.

    The session id is the CLI's own output, so it is inserted as is, never substituted.
    """
    if spec.session != "continue" or not launch.resume_session or not profile.resume:
        return ()
    return (*profile.resume, launch.resume_session)
