"""The executor seam: what the run asks of whatever starts its processes.

Deciding what to run (plans, attempts, checks, state) lives above this line; starting,
watching and stopping a process lives below it, in an `Executor`. The run builds a `Job`
(an argv, never a shell string), asks the executor to `start` it, and from then on holds
only a `Handle`. The handle's `ref` is opaque and JSON-able: state.json keeps it, and the
next run gives it back to `adopt` after a crash. Output is never passed through the handle:
every executor makes the attempt's bytes appear in `job.log` (the local one lets the agent
write there; a remote one appends the chunks it is sent), so marker parsing and adoption
read the same file either way. Nothing here, and no executor, imports doit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from orchlib.agents.base import Logins
from orchlib.executors.sandbox import Sandbox
from orchlib.plan.environment import EnvPolicy

TERM_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of an attempt's process group


@dataclass(frozen=True)
class Job:
    """One process to start."""

    argv: tuple[str, ...]
    cwd: Path  # the project folder (or the task's worktree)
    env: Mapping[str, str]  # only the additions; laid over the host's env as `policy` filters it
    log: Path  # the transcript, under .orch/ (a local path of the checkout)
    key: str = ""  # "<planId>:<taskId>" (one task per project at once is the scheduler's job)
    stdin: bytes | None = None  # the prompt for `prompt: stdin` (stdin is closed after it)
    keep_stdin: bool = False  # keep stdin open, so a stalled agent can be sent Enter
    exit_file: Path | None = None  # commands whose exit code decides them: it outlives us
    # A local file holding the same bytes as `stdin` (the rendered prompt): an executor on
    # this machine reads it instead of piping `stdin` through itself.
    stdin_file: Path | None = field(default=None, compare=False)
    # The host to run on where the executor has several (a verify runs where its attempt
    # ran, DESIGN §8); "" for anywhere. The local executor has one host only.
    near: str = ""
    # What the process inherits from its host's environment (DESIGN §13): plain data, so
    # the environment is built where the process starts. None: all of it.
    policy: EnvPolicy | None = None
    logins: Logins = field(default_factory=Logins)
    # `sandbox: bwrap` (DESIGN §14): where the job may write; the executor wraps argv in it
    # on the host the job runs on. None: no sandbox.
    sandbox: Sandbox | None = None


class Handle(Protocol):
    """A started (or adopted) job."""

    @property
    def ref(self) -> dict[str, object]:
        """Opaque and JSON-able: kept in state.json, given back to `Executor.adopt`."""

    @property
    def host(self) -> str:
        """Where it runs: "local", or a worker's address."""

    def wait_output(self, timeout: float | None) -> None:
        """Block until the log may have grown, the job ended, the run was interrupted, or
        `timeout` seconds passed."""

    def poll(self) -> int | None:
        """The exit code once the job has ended (-1 when it cannot be known)."""

    def send_enter(self) -> bool:
        """Write a newline to the job's stdin, if it is still held open."""

    def terminate(self, grace: float = TERM_GRACE) -> None:
        """Stop the job's whole process group: TERM, then KILL after `grace` seconds."""

    def close(self) -> None:
        """Release what watching the job holds (the job itself is not stopped)."""


# Called with the monotonic time on an executor's watching thread: seconds until it wants to
# be called again without an event (math.inf: on events only; 0.0: after the others had their
# turn), or None when it is done.
Step = Callable[[float], "float | None"]


@runtime_checkable
class Watchable(Protocol):
    """A handle its executor can watch from one thread for all attempts (`logwatch`)."""

    def watch(self, step: Step) -> bool:
        """Run `step` on the executor's watching thread whenever the log may have grown,
        the job ended, the run was interrupted, or the delay `step` returned has passed,
        until it returns None; False when it cannot (the caller uses `wait_output`)."""


class Executor(Protocol):
    """Starts jobs somewhere; one per run (it knows the run's interrupt)."""

    name: str

    def start(self, job: Job, before_start: Callable[[Handle], None]) -> Handle:
        """Start `job`; `before_start(handle)` runs once the process exists and before it
        may print (the caller records `handle.ref` in state.json there)."""

    def adopt(self, ref: Mapping[str, object]) -> Handle | None:
        """The job an earlier run started, from its `ref`; None when it is gone for good."""

    def run(self, job: Job, timeout: float | None) -> int:
        """A short command to its end; its exit code (-1: killed, timed out or interrupted)."""

    def preflight(
        self, checkout_root: Path, clis: Sequence[str], sandbox: bool = False
    ) -> list[str]:
        """One line per problem with running these CLIs for this checkout (empty: fine);
        with `sandbox`, also one per host where bwrap is missing or refused."""

    def close(self) -> None:
        """Release the executor's resources at the end of the run."""


# The ref of an attempt recorded before executors existed (state.json with bare pid fields).
def legacy_ref(pid: int | None, started: str, log: str, terminal_id: str) -> dict[str, object]:
    """A local ref from an old record's pid fields (empty when it had no pid)."""
    if not pid:
        return {}
    ref: dict[str, object] = {"executor": "local", "pid": pid, "pgid": pid, "start": started}
    if log:  # a command's exit code was written beside its log
        ref["log"], ref["exitFile"] = log, str(Path(log).with_suffix(".exit"))
    if terminal_id:
        ref["terminalId"] = terminal_id
    return ref
