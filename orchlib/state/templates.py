"""Where the task template is found: the checkout's own copy first, then the packaged one.

Apart from `prompt` (which renders it) so that commands needing only its text — every
spec hash, so every `doit` — do not import the prompt's records.
"""

from __future__ import annotations

from pathlib import Path

from orchlib.errors import ConfigError

PACKAGED = Path(__file__).parent.parent / "templates"
TASK_TEMPLATE = "task.md.j2"


def template_dirs(checkout: Path) -> list[Path]:
    """Template folders in lookup order: the checkout's own copies override the packaged ones."""
    return [checkout / "templates", PACKAGED]


def template_source(checkout: Path, name: str = TASK_TEMPLATE) -> str:
    """The text of the effective template (part of every task's spec hash)."""
    for folder in template_dirs(checkout):
        path = folder / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise ConfigError(f"template {name!r} not found in {checkout / 'templates'} nor packaged")
