"""`sandbox: bwrap` (DESIGN §14): a job's argv wrapped in a bubblewrap sandbox.

A `Sandbox` is plain data on the `Job` (so a dask worker gets it pickled and applies it on
its own host): the folders and files the job may write, those laid read-only over them,
and those kept visible under the private /tmp. `wrap` turns it into bwrap's argv where the
job starts; `probe` says once per host whether bwrap works there at all.

The process model, and why:
- no `--new-session`: the sandbox stays in the attempt's process group, so terminating the
  group reaches every process inside. The agent has no controlling terminal (it runs in
  its own session with its output in a file), so the TIOCSTI escape `--new-session`
  guards against has no terminal to type into.
- no `--die-with-parent`: bwrap's parent is the orchestrator; a killed `doit` must leave
  the agent running for the next run to adopt (DESIGN §5).
- `--unshare-pid`: bwrap's pid 1 reaps inside and, when it exits, the kernel kills
  whatever is left in the namespace: nothing of the attempt outlives it.
- bwrap's outer process (the pid orchlib records and watches) ignores SIGTERM and the
  command inside gets the default back (`env`): a TERM to the group then stops the agent
  but not the monitor, which exits with the agent's code once the agent has shut down.
  Without that the monitor would die at once and the agent lose its grace to SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchlib.executors import cpus

BWRAP = "bwrap"
_BASE = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
         "--unshare-pid")  # fmt: skip
_IGNORE_TERM, _DEFAULT_TERM = "--ignore-signal=TERM", "--default-signal=TERM"
_PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Sandbox:
    """What a sandboxed job may write. Paths are absolute or start with `~/` (the home of
    the host the job runs on); a trailing "/" marks a state folder made when missing, any
    other `~/` entry a state file made when missing (so its bind works)."""

    writable: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()  # laid over the writable ones
    visible: tuple[str, ...] = ()  # shown read-only even under the private /tmp


def wrap(
    argv: Sequence[str], box: Sandbox, child_env: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """`argv` run inside `box` (with the environment `child_env`): bwrap's argv (state
    folders are made here first)."""
    for entry in box.writable:
        if entry.startswith("~/"):
            _make_state(entry)
    writable = [_real(p) for p in box.writable]
    # Only what lies under /tmp needs showing (the sandbox's /tmp hides it), and only what
    # lies in a writable folder needs making read-only again (the rest already is).
    shown = (*box.visible, *_needed(argv, os.environ if child_env is None else child_env))
    mounts = [(p, 0, "--ro-bind") for p in dict.fromkeys(map(_real, shown)) if _in_tmp(p)]
    mounts += [(p, 1, "--bind") for p in writable]
    mounts += [(p, 2, "--ro-bind") for p in map(_real, box.readonly) if _inside(p, writable)]
    # Parents before children, so a deeper bind wins over a shallower one; at one path the
    # later kind wins (visible < writable < read-only).
    mounts.sort(key=lambda m: (len(Path(m[0]).parts), m[1]))
    binds: list[str] = []
    tmpdir = os.environ.get("TMPDIR", "")
    if tmpdir and _in_tmp(_real(tmpdir)):  # programs expect their TMPDIR to exist
        binds += ["--dir", _real(tmpdir)]
    for path, _, flag in mounts:
        if os.path.lexists(path):
            binds += [flag, path, path]
    # Found here, not by the child's PATH, which the plan's environment policy may drop.
    env, bwrap = shutil.which("env") or "env", shutil.which(BWRAP) or BWRAP
    return (env, _IGNORE_TERM, bwrap, *_BASE, *binds, "--", env, _DEFAULT_TERM, *argv)


def probe() -> str | None:
    """None when bwrap runs a sandbox on this host, else the cause in a few words."""
    if shutil.which(BWRAP) is None:
        return "bwrap not found on PATH (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        with cpus.for_children():  # a run's preflight asks: not on the run's own CPU
            done = subprocess.run(
                [BWRAP, *_BASE, "--", "true"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_PROBE_TIMEOUT,
                check=False,
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot start ({exc})"
    if done.returncode == 0:
        return None
    said = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return f"bwrap refused to make a sandbox: {said[-1] if said else f'exit {done.returncode}'}"


def _needed(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """What the job needs to see to start at all, wherever it lies (under /tmp too): the
    folders of its PATH, its program's folder, orchlib's own Python environment (a `verify`
    or an agent run with the same interpreter), and the folders of files named in argv."""
    path = env.get("PATH", "")
    found = [sys.prefix, *(p for p in path.split(os.pathsep) if os.path.isabs(p))]
    program = shutil.which(argv[0], path=path) if argv else None
    files = [a for a in argv if os.path.isabs(a) and os.path.isfile(a)]
    found += [os.path.dirname(_real(f)) for f in ([program] if program else []) + files]
    return found


def _inside(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _in_tmp(path: str) -> bool:
    return path == "/tmp" or path.startswith("/tmp/")


def _real(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path))


def _make_state(entry: str) -> None:
    """Create a missing state folder or file of a profile (a file as JSON `{}` when its
    name says JSON: an empty file is no valid config)."""
    path = Path(os.path.expanduser(entry))
    try:
        if entry.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        elif not os.path.lexists(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}\n" if path.suffix == ".json" else "", encoding="utf-8")
    except OSError:
        pass  # not bound then: the CLI meets a read-only file system, and says so
