"""The agent profiles: one module per coding-agent CLI, and the registry everything reads.

A new profile is one module (a `PROFILE = Profile(...)`, see base.py) and one line below;
the plan schema's allowed names, `doit draft`'s search, preflight, help, the login
variables and the sandbox's state folders all read `PROFILES` (docs/architecture.md).
This package sits below the plan layer: it reads a plan's agent through `base.Spec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from orchlib.agents import aider, claude, codex, gemini, opencode
from orchlib.agents.base import Invocation, Launch, Logins, Profile, Spec, build, custom
from orchlib.agents.streams import Json, OutputAdapter, PlainText

# One line per profile; the order is `doit draft`'s search order and help's listing.
PROFILES: Mapping[str, Profile] = {
    p.name: p
    for p in (
        claude.PROFILE,
        codex.PROFILE,
        gemini.PROFILE,
        aider.PROFILE,
        opencode.PROFILE,
    )
}
SHELL = "shell"  # a task's own command: no CLI, no profile module
DEFAULT = next(iter(PROFILES))  # the agent of a plan that names none
BUILTIN = (*PROFILES, SHELL)

__all__ = ["BUILTIN", "DEFAULT", "PROFILES", "SHELL", "Invocation", "Launch", "Logins", "Profile"]


def invocation(spec: Spec, launch: Launch) -> Invocation:
    """The command line, environment and prompt delivery for one attempt of `spec`."""
    if spec.profile == SHELL:
        raise ValueError("shell tasks run their own command; they have no agent invocation")
    if spec.profile is None:
        return custom(spec, launch)
    return build(_profile(spec), spec, launch)


def all_logins() -> tuple[str, ...]:
    """Every variable any built-in profile's CLI logs in with (their values are secrets)."""
    return tuple(sorted({name for profile in PROFILES.values() for name in profile.login}))


def logins(spec: Spec | None) -> Logins:
    """The login variables `spec`'s process gets (its profile's), and those it does not
    (every other CLI's); None: a shell task or a verify, which gets none."""
    profile = PROFILES.get(spec.profile or "") if spec is not None else None
    own = profile.login if profile is not None else ()
    return Logins(own=own, others=tuple(n for n in all_logins() if n not in own))


def executable(spec: Spec) -> str:
    """The program to look up on PATH before dispatching (argv[0] before substitution)."""
    if spec.profile == SHELL:
        return "sh"
    if spec.profile is None:
        if not spec.command:
            raise ValueError(f"agent {spec.name!r}: a custom agent needs a command")
        return spec.command[0]
    return _profile(spec).program


def state_paths(spec: Spec) -> tuple[str, ...]:
    """The state folders and files the agent's CLI writes outside the project."""
    if spec.profile is None or spec.profile == SHELL:
        return ()
    return _profile(spec).state


def reports_usd(spec: Spec) -> bool:
    """Whether the agent's CLI reports a cost in USD (a custom command reports nothing)."""
    profile = PROFILES.get(spec.profile or "")
    return profile is not None and profile.reports_usd


def adapter(spec: Spec) -> OutputAdapter:
    """A fresh reader for one attempt's output."""
    if spec.profile is None or spec.profile == SHELL:
        return PlainText()
    return _profile(spec).adapter()


def transcript(spec: Spec) -> Callable[[Json], list[str]] | None:
    """How `doit log` shows one JSON event of `spec`'s log (None: the adapter's texts)."""
    profile = PROFILES.get(spec.profile or "")
    return profile.transcript if profile is not None else None


def _profile(spec: Spec) -> Profile:
    """The built-in profile `spec` names."""
    try:
        return PROFILES[spec.profile or ""]
    except KeyError:
        known = ", ".join(BUILTIN)
        raise ValueError(
            f"agent {spec.name!r}: unknown profile {spec.profile!r} (known: {known})"
        ) from None
