"""orchlib.doitedge.plugins: doit's plugin lookups answered from one scan, with the same answers."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from orchlib.doitedge import plugins


@pytest.mark.parametrize("group", ["doit.COMMAND", "doit.BACKEND", "doit.REPORTER", "none.such"])
def test_cached_lookup_matches_importlib(group: str) -> None:
    expected = sorted((ep.name, ep.value) for ep in metadata.entry_points(group=group))
    assert sorted((ep.name, ep.value) for ep in plugins.entry_points(group=group)) == expected
    if group == "doit.COMMAND":
        assert ("status", "orchlib.doitedge.statecmds:Status") in expected


def test_a_plugin_installed_beside_orchlib_is_still_found(tmp_path: Path) -> None:
    """A doit REPORTER plugin from another package is looked up through the cached scan."""
    site = tmp_path / "site"
    info = site / "extra_reporter-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-reporter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[doit.REPORTER]\nloud = extra_reporter:Loud\n")
    (site / "extra_reporter.py").write_text(
        "from doit.reporter import ConsoleReporter\n"
        "class Loud(ConsoleReporter):\n"
        "    desc = 'loud'\n"
        "    def complete_run(self):\n"
        "        self.outstream.write('LOUD REPORTER\\n')\n"
    )
    (tmp_path / "dodo.py").write_text("def task_hello():\n    return {'actions': ['true']}\n")
    result = subprocess.run(
        [sys.executable, "-m", "doit", "--reporter", "loud"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "LOUD REPORTER" in result.stdout


def test_doit_still_looks_plugins_up_through_the_patch_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The speed-up replaces `doit.plugin.entry_points_impl`: if a doit release stops
    calling it, this fails (and the pin in pyproject must not admit that release)."""
    import doit.plugin

    asked: list[str] = []

    def lookup(group: str) -> list[metadata.EntryPoint]:
        asked.append(group)
        return []

    assert callable(doit.plugin.entry_points_impl)
    monkeypatch.setattr(doit.plugin, "entry_points_impl", lambda: lookup)
    doit.plugin.PluginDict().add_plugins({}, "REPORTER")
    assert asked == ["doit.REPORTER"]


PATCHED = (
    "import doit.plugin, sys; {setup}; "
    "print(doit.plugin.entry_points_impl() is not doit.plugin.entry_points)"
)


@pytest.mark.parametrize(
    ("setup", "patched"),
    [
        (
            "import orchlib.doitedge.commands, orchlib.doitedge.runcmd",
            False,
        ),  # another doit project: doit's own lookup
        ("from orchlib.doitedge.loader import PlanLoader; PlanLoader().setup({})", True),
        ("sys.argv[1:] = ['--version']; import orchlib.doitedge.cli as c; c.main()", True),
    ],
)
def test_the_speed_up_applies_only_when_orchlib_loads_the_tasks(
    tmp_path: Path, setup: str, patched: bool
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PATCHED.format(setup=setup)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(patched)
