"""Per-run state belongs to the run: two runs in one process share nothing of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TWICE = """
from orchlib.doitedge import cli
assert cli.main(["run", "p:t1"]) == 0
# Each run builds its own context and hands it down: the checkout holds none of it.
from pathlib import Path
from orchlib.checkout import Checkout
co = Checkout.load(Path("."))
HELD = ("run", "bus", "interrupt", "executor", "verdicts", "up_to_date")
assert not any(hasattr(co, name) for name in HELD)
print("=== second run", flush=True)
assert cli.main(["run", "p:t2"]) == 0
"""


def test_two_runs_in_one_process_print_each_line_once(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    tasks = [{"id": t, "project": "a", "title": t, "command": ["echo", t]} for t in ("t1", "t2")]
    plan = {"planId": "p", "projects": [{"name": "a", "path": "a"}], "tasks": tasks}
    (tmp_path / "plans" / "p.json").write_text(json.dumps(plan))
    result = subprocess.run(
        [sys.executable, "-c", TWICE], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    second = result.stdout.split("=== second run", 1)[1]
    assert second.count("p:t2  started attempt 1") == 1, second
    assert second.count("DONE in") == 1 and second.count("run finished") == 1, second


def test_the_checkout_is_frozen_and_names_its_paths_by_the_layout(tmp_path: Path) -> None:
    import dataclasses

    import pytest

    from orchlib.checkout import Checkout
    from orchlib.layout import Layout

    (tmp_path / "plans").mkdir()
    task = {"id": "t1", "project": "a", "title": "t1", "command": ["true"]}
    plan = {"planId": "p", "projects": [{"name": "a", "path": "a"}], "tasks": [task]}
    (tmp_path / "plans" / "p.json").write_text(json.dumps(plan))
    co = Checkout.load(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        co.root = tmp_path / "elsewhere"  # type: ignore[misc]
    lay = Layout(tmp_path.resolve())
    assert co.stamp_path("p", "t1") == lay.stamp("p", "t1")
    assert co.log_path("p", "t1", 2, "verify.log") == lay.log("p", "t1", 2, "verify.log")
    assert co.prompt_path("p", "t1", 2) == lay.prompt("p", "t1", 2)
