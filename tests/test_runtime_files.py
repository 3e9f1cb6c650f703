"""orchlib's own files are inert data (DESIGN §3, §13; issue 19).

Every test runs the real `doit` as a subprocess on a checkout in tmp_path. A hostile file
in `.orch/` must never run code; caches of any other shape are rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Checkout

PLAN = "files"


def write(co: Checkout, tasks: list[dict[str, Any]] | None = None, **extra: Any) -> None:
    """A plan of shell tasks in project `a`."""
    tasks = tasks or [{"id": "t1", "command": "echo one"}, {"id": "t2", "command": "echo two",
                                                          "dependsOn": ["t1"]}]  # fmt: skip
    plan = {
        "planId": PLAN,
        "projects": [{"name": "a", "path": "a"}],
        "tasks": [{"project": "a", "title": t["id"], **t} for t in tasks],
        **extra,
    }
    (co.root / "a").mkdir(exist_ok=True)
    co.write_plan(plan, f"{PLAN}.json")


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


class Hostile:
    """A pickle that, when unpickled, creates `marker` (as the issue's 4-line pickle ran a
    shell command)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def hostile_pickle(marker: Path) -> bytes:
    data = pickle.dumps(Hostile(marker), protocol=2)
    # It must be able to run: unpickling it here creates the marker (then removed).
    pickle.loads(data)
    assert marker.exists()
    marker.unlink()
    return data


def cache_paths(co: Checkout) -> list[Path]:
    """Every cache file: the plan's and the stamps', and the name of the plan's pickle in
    the versions that pickled it."""
    slug = hashlib.sha256(f"plans/{PLAN}.json".encode()).hexdigest()[:16]
    plan_cache = co.root / ".orch" / "cache" / f"plan-{slug}.json"
    stamps_cache = co.root / ".orch" / PLAN / "stamps.cache"
    return [plan_cache, stamps_cache, plan_cache.with_suffix(".pickle")]


@pytest.mark.parametrize("command", [["list"], ["status"], [], ["info", f"{PLAN}:t1"]])
def test_a_hostile_pickle_in_a_cache_never_runs(checkout: Checkout, command: list[str]) -> None:
    write(checkout)
    first = checkout.doit()
    assert first.returncode == 0, output(first)
    marker = checkout.root.parent / "PWNED"
    for path in cache_paths(checkout):
        path.write_bytes(hostile_pickle(marker))
    result = checkout.doit(*command)
    assert result.returncode == 0, output(result)
    assert not marker.exists()
    assert "Traceback" not in output(result)
    if not command:
        assert "2 tasks up to date" in result.stdout
    # The caches were rebuilt as JSON, and the old-named pickle is gone.
    again = checkout.doit(*command)
    assert again.returncode == 0 and not marker.exists()
    stamps_cache = checkout.root / ".orch" / PLAN / "stamps.cache"
    if command != ["info", f"{PLAN}:t1"]:
        assert json.loads(stamps_cache.read_bytes())["version"] >= 3
    assert not list((checkout.root / ".orch" / "cache").glob("*.pickle"))
    [plan_cache] = (checkout.root / ".orch" / "cache").glob("plan-*.json")
    assert json.loads(plan_cache.read_bytes())["format"] >= 2


FOREIGN = [
    b"",
    b"\x00\xff not text",
    b"[]",
    b"{",
    b'{"format": 2}',
    b'{"version": 3, "specKey": 1, "specs": {}, "stampsMtime": 0, "entries": {}}',
    b'{"version": 3, "specKey": "", "specs": {"t1": 5}, "stampsMtime": 0, "entries": {}}',
    b'{"format": 2, "key": "k", "schema": "s", "plan": {"root": [], "shared": []}}',
    b"[" * 100_000,
]


@pytest.mark.parametrize("junk", FOREIGN, ids=range(len(FOREIGN)))
def test_a_damaged_or_foreign_cache_is_rebuilt(checkout: Checkout, junk: bytes) -> None:
    write(checkout)
    assert checkout.doit().returncode == 0
    for path in cache_paths(checkout)[:2]:
        path.write_bytes(junk)
    result = checkout.doit()
    assert result.returncode == 0, output(result)
    assert "2 tasks up to date" in result.stdout
    assert "Traceback" not in output(result)
    listing = checkout.doit("list", "--all")
    assert f"{PLAN}:t2" in listing.stdout, output(listing)
