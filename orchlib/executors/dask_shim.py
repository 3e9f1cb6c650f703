"""The group leader of a remote agent: dies with its Dask worker and takes the group along.

Run by a worker as `python -I dask_shim.py WORKER_PID GRACE -- ARGV...` in a new session
(so it leads the agent's process group). It starts ARGV in that group with its own stdin,
stdout and stderr, and exits with the agent's exit code. The kernel sends it SIGTERM when
the worker process dies (PR_SET_PDEATHSIG), as does the worker to stop the attempt: it
then terminates the group, and kills it after GRACE seconds; so no agent outlives its
worker. Only the standard library: it must start fast on any worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

_PR_SET_PDEATHSIG = 1


class _Stop(Exception):
    """Raised by the signal handler: the group must go."""


def _on_signal(signum: int, frame: object) -> None:
    raise _Stop


def _die_with_parent(parent: int) -> None:
    """Ask for SIGTERM when our parent (the worker) dies; it may already have."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise _Stop


def _stop_group(agent: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM the group (not us), wait up to `grace` for the agent, then SIGKILL all of it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while agent is not None and agent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(0, signal.SIGKILL)  # ourselves included: the group ends here


def main(argv: list[str]) -> int:
    """Lead the group of argv[3:] (after WORKER_PID, GRACE and "--"); its exit code."""
    parent, grace, command = int(argv[0]), float(argv[1]), argv[3:]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    agent: subprocess.Popen[bytes] | None = None
    try:
        _die_with_parent(parent)
        try:
            agent = subprocess.Popen(command)
        except OSError as exc:
            print(f"orchlib: cannot start {command[0]!r}: {exc.strerror}", flush=True)
            return 127
        code = agent.wait()
    except _Stop:
        _stop_group(agent, grace)
        return 143
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
