"""orchlib's own files are inert data (DESIGN §3, §13; issue 19).

Every test runs the real `doit` as a subprocess on a checkout in tmp_path. A hostile file
in `.orch/` must never run code; caches of any other shape are rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import subprocess
import sys
import time
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


# --- modes: .orch/ is the user's alone (item 3) ------------------------------------------


def umask_022(co: Checkout, *args: str) -> subprocess.CompletedProcess[str]:
    """`doit ARGS` run under a real umask of 022 (set in the child, by the shell)."""
    return subprocess.run(
        ["/bin/sh", "-c", 'umask 022 && exec "$0" -m doit "$@"', sys.executable, *args],
        cwd=co.root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def wide_modes(orch: Path) -> list[str]:
    """Every path under `orch` (worktrees' contents aside) readable by others, with its mode."""
    found = []
    for path in [orch, *orch.rglob("*")]:
        if "worktrees" in path.relative_to(orch.parent).parts[2:3]:
            continue  # inside a task's worktree: the project's files
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        want = 0o700 if stat.S_ISDIR(mode) else 0o600
        if stat.S_IMODE(mode) != want:
            found.append(f"{path.relative_to(orch.parent)} {stat.S_IMODE(mode):o}")
    return found


def test_every_runtime_file_is_private_whatever_the_umask(checkout: Checkout) -> None:
    write(checkout, [
        {"id": "t1", "command": "echo one"},
        {"id": "t2", "agent": checkout.agent(), "dependsOn": ["t1"]},
        {"id": "t3", "agent": checkout.agent(prompt="file"), "dependsOn": ["t1"]},
        {"id": "t4", "command": "echo '[QUESTION:'$TERMINAL_ID'] which one?'"},
    ], notify=[{"command": ["false"], "events": ["task_question"]}])  # fmt: skip
    result = umask_022(checkout)
    assert "Traceback" not in output(result)
    for args in (["status"], ["list", "--all"], ["answer", f"{PLAN}:t4", "this one"]):
        assert umask_022(checkout, *args).returncode == 0
    orch = checkout.root / ".orch"
    names = {p.name for p in orch.rglob("*")}
    for made in ("doit.sqlite3", "run.lock", "state.json", "state.lock", "orchestration.md",
                 "t2.1.log", "t1.json", "stamps.cache", "state.sync", ".gitignore"):  # fmt: skip
        assert made in names, sorted(names)
    assert any(n.startswith("t3.1") and n.endswith(".md") for n in names), sorted(names)
    assert wide_modes(orch) == []
    assert (orch / ".gitignore").read_text() == "*\n"
    assert (checkout.root / "a").stat().st_mode & 0o077 == 0o055  # the project's own: umask


def test_an_older_checkout_is_made_private_by_the_next_command(checkout: Checkout) -> None:
    write(checkout)
    assert umask_022(checkout).returncode == 0
    orch = checkout.root / ".orch"
    (orch / ".gitignore").unlink()
    for path in [orch, *orch.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert umask_022(checkout, "list").returncode == 0
    assert wide_modes(orch) == []
    assert (orch / ".gitignore").read_text() == "*\n"


def test_git_add_all_in_a_project_at_the_checkout_commits_nothing_of_orch(
    checkout: Checkout,
) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=checkout.root, check=True)
    write(checkout, [{"id": "t1", "command": "git add -A && git status --porcelain"}])
    plan = json.loads((checkout.root / "plans" / f"{PLAN}.json").read_text())
    plan["projects"][0]["path"] = "."
    checkout.write_plan(plan, f"{PLAN}.json")
    assert checkout.doit().returncode == 0
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=checkout.root,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "dodo.py" in staged and ".orch" not in staged


# --- globs never follow a symlinked folder (item 4) ----------------------------------------


def test_symlink_loops_in_a_project_cannot_hang_doit_or_status(checkout: Checkout) -> None:
    write(checkout, [
        {"id": "t1", "command": "mkdir -p src && touch src/app.js", "outputs": ["**/*.js"]},
        {"id": "t2", "command": "echo read", "inputs": ["**/*.js"], "dependsOn": ["t1"]},
    ])  # fmt: skip
    (checkout.root / "a" / "loop").symlink_to(".")
    (checkout.root / "a" / "again").symlink_to(".")
    for args in ([], ["status"], [], ["list", "--all"], ["info", f"{PLAN}:t2"]):
        start = time.monotonic()
        result = checkout.doit(*args, timeout=60)
        assert result.returncode == 0, output(result)
        assert time.monotonic() - start < 10, args  # 20 s were not enough before
    stamp = json.loads((checkout.root / ".orch" / PLAN / "stamps" / "t2.json").read_text())
    assert list(stamp["inputs"]) == ["src/app.js"]  # not loop/src/app.js, loop/again/...


def test_a_wildcard_does_not_reach_an_output_through_a_symlinked_folder(
    checkout: Checkout,
) -> None:
    write(checkout, [{"id": "t1", "command": "echo made", "outputs": ["*/report.txt"]}])
    real = checkout.root / "real"
    real.mkdir()
    (real / "report.txt").write_text("elsewhere")
    (checkout.root / "a" / "linked").symlink_to(real)
    result = checkout.doit()
    assert result.returncode != 0
    assert "*/report.txt" in output(result)


# --- the DB check runs when the DB changed (item 2: no-op speed, same guarantee) -------------


def test_a_db_damaged_in_place_is_caught_after_its_check_was_skipped(checkout: Checkout) -> None:
    write(checkout)
    assert checkout.doit().returncode == 0
    db = checkout.root / ".orch" / "doit.sqlite3"
    checked = checkout.root / ".orch" / "cache" / "doit-db.checked"
    time.sleep(1.1)  # a DB changed in the last second is checked again: wait that out
    assert checkout.doit("list").returncode == 0
    assert checked.exists()  # the check passed and was remembered
    before = db.stat()
    with db.open("r+b") as fh:  # same size, and the mtime put back: only the ctime moves
        fh.seek(0)
        fh.write(b"not sqlite at all" * 4)
    os.utime(db, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = checkout.doit("list", "--all")
    assert "orchlib: .orch/doit.sqlite3 was damaged (" in result.stderr, output(result)
    again = checkout.doit()
    assert again.returncode == 0 and "2 tasks up to date" in again.stdout, output(again)
