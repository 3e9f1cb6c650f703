"""What a wheel holds: every package of orchlib and every data file it reads at run time."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # coverage[toml] brings tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _setuptools() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    table: dict[str, object] = data["tool"]["setuptools"]
    return table


def _dotted(folder: Path) -> str:
    return ".".join(folder.relative_to(ROOT).parts)


def test_every_package_and_data_folder_is_listed() -> None:
    """A package missing from the list is missing from a wheel (orchlib.agents once was)."""
    on_disk = {_dotted(init.parent) for init in (ROOT / "orchlib").rglob("__init__.py")}
    data_folders = {_dotted(f.parent) for f in (ROOT / "orchlib").rglob("*")
                    if f.suffix in (".j2", ".html", ".css", ".js")}  # fmt: skip
    listed = set(_setuptools()["packages"])  # type: ignore[arg-type]
    assert on_disk | data_folders == listed


def test_every_data_file_is_matched_by_package_data() -> None:
    """The prompt templates and the dashboard's page are in a wheel, not only in a checkout."""
    import fnmatch

    patterns: dict[str, list[str]] = _setuptools()["package-data"]  # type: ignore[assignment]
    for path in (ROOT / "orchlib").rglob("*"):
        if path.suffix in (".j2", ".html", ".css", ".js"):
            globs = patterns.get(_dotted(path.parent), [])
            assert any(fnmatch.fnmatch(path.name, g) for g in globs), path
