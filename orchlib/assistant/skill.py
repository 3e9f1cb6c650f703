"""`doit skill`: SKILL.md (the Agent Skills format) rendered from the packaged template."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import orchlib
from orchlib import agents
from orchlib.errors import ConfigError
from orchlib.fsutil import atomic_write

DEFAULT_DEST = Path(".claude") / "skills" / "orchlib"
NAME = "SKILL.md"


def render() -> str:
    """The text of SKILL.md for this orchlib."""
    import jinja2

    source = resources.files("orchlib.assistant").joinpath("SKILL.md.j2").read_text("utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    profiles = ", ".join(agents.PROFILES)
    return env.from_string(source).render(version=orchlib.__version__, profiles=profiles)


def write_skill(cwd: Path, dest: Path | None, force: bool) -> str:
    """Write SKILL.md into `dest` (default: the checkout's .claude/skills/orchlib/); what was done.

    A different SKILL.md already there is replaced only with `force`: it may be the user's.
    """
    if dest is None:
        if not (cwd / "plans").is_dir():
            raise ConfigError(
                f"skill: {cwd} is not a checkout (no plans/ folder); run it in the checkout "
                "or give --dest DIR"
            )
        dest = cwd / DEFAULT_DEST
    target = (cwd / dest) / NAME
    text = render()
    shown = _shown_path(target, cwd)
    if target.is_dir():
        raise ConfigError(f"skill: {shown} is a folder; move it away")
    if target.exists():
        if target.read_text("utf-8", errors="replace") == text:
            return f"{shown} is up to date"
        if not force:
            raise ConfigError(f"skill: {shown} exists and differs; --force replaces it")
    atomic_write(target, text)
    return f"wrote {shown}"


def _shown_path(path: Path, cwd: Path) -> str:
    return path.relative_to(cwd).as_posix() if path.is_relative_to(cwd) else str(path)
