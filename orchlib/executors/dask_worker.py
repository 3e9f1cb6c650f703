"""The worker side of the dask executor: one attempt's process group, streamed to the orchestrator.

`run_attempt` is the Dask task. It starts the agent under a shim (the group leader that
dies with this worker process), sends the agent's output as it is printed with
`log_event` on the run's topic, and returns the exit code. A watcher stops the group when
the orchestrator is gone (its future was released, or its lease stopped moving) so no
agent runs on for an orchestrator that can no longer hear it. `control` is run by the
orchestrator (`Client.run`) to send Enter or to stop an attempt.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from orchlib.agents.base import Logins
from orchlib.executors.sandbox import Sandbox, wrap
from orchlib.plan.environment import EnvPolicy, compose

# The group leader of a remote agent: `setpriv` (util-linux) asks the kernel for SIGTERM
# when the worker dies (PR_SET_PDEATHSIG) and execs `sh` in a new session with this script.
# On SIGTERM (the worker died, or it is asked to stop) it TERMs the whole group and KILLs it
# after the grace: no agent outlives its worker. `sh` rather than Python: it starts in ~1 ms.
# An async list's stdin would be /dev/null: fd 3 carries the real one over.
SHIM_SCRIPT = (
    'parent=$1 grace=$2; shift 2; trap \'trap "" TERM INT HUP; kill -TERM 0; '
    '(sleep "$grace"; kill -KILL 0) & wait "$agent"; kill -KILL 0\' TERM INT HUP; '
    '[ "$PPID" = "$parent" ] || exit 143; '
    'exec 3<&0; "$@" <&3 3<&- & agent=$!; exec 3<&-; wait "$agent"'
)
SHIM_GRACE = 3.0  # how long the shim gives the agent after SIGTERM when its worker died
LEASE_LOST_AFTER = 10.0  # an orchestrator whose lease has not moved for this long is gone
WATCH_EVERY = 1.0
READ_BLOCK = 1 << 16
EXECUTING = ("executing", "long-running")


@dataclass(frozen=True)
class Spec:
    """One attempt as the orchestrator sends it (plain data: it is pickled to the worker)."""

    token: str  # unique per attempt
    topic: str  # the run's event topic
    lease: str  # name of the run's lease Variable ("" for none)
    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str]  # laid over the worker's own environment
    stdin: bytes | None = None
    keep_stdin: bool = False
    claim: bool = True  # False where the scheduler never re-runs a task (allowed-failures 0)
    # The task's `environment` policy: applied here, to this worker's own environment (§13).
    policy: EnvPolicy | None = None
    logins: Logins = field(default_factory=Logins)
    sandbox: Sandbox | None = None  # applied here, on the worker's host (DESIGN §14)


def claim_name(token: str) -> str:
    """The Event that marks an attempt as started: a second start is Dask re-running it."""
    return f"orchlib-claim-{token}"


# This worker process's running attempts, so `control` (run in the worker's event loop)
# finds the attempt a task thread is running. Process-wide by nature: one per worker.
_RUNNING: dict[str, _Attempt] = {}


def run_attempt(spec: Spec) -> dict[str, Any]:
    """The Dask task: run the attempt to its end; {"code", "host"} or {"lost": True}."""
    from distributed import Event, get_client, get_worker

    # The attempt keeps its worker thread (no `secede`: the scheduler would then count the
    # worker idle and crowd attempts onto it); workers get a thread more than agent slots.
    worker, client = get_worker(), get_client()
    key = worker.get_current_task()
    if spec.claim:
        claim = Event(claim_name(spec.token), client=client)
        if claim.is_set():  # the scheduler re-ran us after a worker died: never a second agent
            return {"lost": True}
        claim.set()
    attempt = _Attempt(spec, worker)
    _RUNNING[spec.token] = attempt
    try:
        return {"code": attempt.run(client, key), "host": worker.address}
    finally:
        _RUNNING.pop(spec.token, None)
        attempt.close()


def control(token: str, action: str, grace: float = 5.0) -> bool:
    """Send Enter to an attempt ("enter") or stop its group ("stop"); False if not here."""
    attempt = _RUNNING.get(token)
    if attempt is None:
        return False
    if action == "enter":
        return attempt.send_enter()
    attempt.request_stop(grace)
    return True


@dataclass
class _Attempt:
    spec: Spec
    worker: Any
    proc: subprocess.Popen[bytes] | None = None
    stop_grace: float | None = None
    ended: bool = False
    closed: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: tuple[int, int] = field(default_factory=os.pipe)
    _stdin_lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, kind: str, **data: Any) -> None:
        self.worker.log_event(self.spec.topic, {"t": self.spec.token, "k": kind, **data})

    def run(self, client: Any, key: Any) -> int:
        """Start, stream, watch; the exit code (127: could not start)."""
        out_r, out_w = os.pipe()
        try:
            self.proc = self._start(out_w)
        except OSError as exc:
            os.close(out_r)
            self.emit("start", host=self.worker.address, pid=0)
            self.emit("out", d=f"orchlib: cannot start the agent: {exc}\n".encode())
            return self._finish(127)
        finally:
            os.close(out_w)
        self.emit("start", host=self.worker.address, pid=self.proc.pid)
        reader = threading.Thread(target=self._stream, args=(out_r,), daemon=True)
        reader.start()
        self._feed_stdin()
        threading.Thread(target=self._watch, args=(client, key), daemon=True).start()
        code = self._wait()
        reader.join()
        return self._finish(code)

    def _start(self, out_w: int) -> subprocess.Popen[bytes]:
        piped = self.spec.stdin is not None or self.spec.keep_stdin
        shim = ["setpriv", "--pdeathsig", "TERM", "/bin/sh", "-c", SHIM_SCRIPT, "orchlib-shim"]
        shim += [str(os.getpid()), str(SHIM_GRACE)]
        env = compose(os.environ, self.spec.policy, self.spec.logins, self.spec.env)
        box = self.spec.sandbox
        argv = wrap(self.spec.argv, box, env) if box else self.spec.argv
        return subprocess.Popen(
            [*shim, *argv],
            cwd=self.spec.cwd,
            env=env,
            stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            start_new_session=True,  # the shim leads the agent's own process group
        )

    def _feed_stdin(self) -> None:
        """Write the prompt (in a thread: a long one fills the pipe) and close unless kept."""
        assert self.proc is not None
        if self.proc.stdin is None or self.spec.stdin is None:
            return

        def feed() -> None:
            with self._stdin_lock, contextlib.suppress(OSError, ValueError):
                assert self.proc is not None and self.proc.stdin is not None
                self.proc.stdin.write(self.spec.stdin or b"")
                self.proc.stdin.flush()
                if not self.spec.keep_stdin:
                    self.proc.stdin.close()

        threading.Thread(target=feed, daemon=True).start()

    def send_enter(self) -> bool:
        """Write a newline to the agent's stdin if it is still open (never blocks the loop)."""
        if self.proc is None or self.proc.stdin is None or not self.spec.keep_stdin:
            return False
        if not self._stdin_lock.acquire(blocking=False):
            return False
        try:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            return False
        finally:
            self._stdin_lock.release()
        return True

    def request_stop(self, grace: float) -> None:
        """Stop the group (from any thread): TERM now, KILL after `grace`."""
        with self._lock:
            if self.stop_grace is None and not self.closed:
                self.stop_grace = grace
                os.write(self._wake[1], b"x")

    def close(self) -> None:
        """Release the wake pipe (under the lock: `control` may be asking to stop)."""
        with self._lock:
            self.closed = True
            for fd in self._wake:
                os.close(fd)

    def _stream(self, fd: int) -> None:
        """Send output as it is read; after the attempt ended, stop at the first quiet moment
        (a process that left the group may hold the pipe open forever)."""
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    if self.ended:
                        return
                    continue
                data = os.read(fd, READ_BLOCK)
                if not data:
                    return
                # What is already waiting goes along: fewer, larger events for a chatty agent.
                while len(data) < READ_BLOCK and select.select([fd], [], [], 0)[0]:
                    more = os.read(fd, READ_BLOCK - len(data))
                    if not more:
                        break
                    data += more
                self.emit("out", d=data)
        finally:
            os.close(fd)

    def _wait(self) -> int:
        """Until the shim exits or a stop is requested; then no member of the group is left."""
        assert self.proc is not None
        pid = self.proc.pid
        pidfd = os.pidfd_open(pid)
        try:
            while True:
                ready = select.select([pidfd, self._wake[0]], [], [], 5.0)[0]
                if pidfd in ready:
                    break
                if self.stop_grace is not None:
                    self._stop(pidfd)
                    break
        finally:
            os.close(pidfd)
        # The zombie shim keeps its pid (so the group id) ours until it is reaped.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        code = self.proc.wait()
        self.ended = True
        return 128 - code if code < 0 else code

    def _stop(self, pidfd: int) -> None:
        """TERM the shim (it TERMs the group), KILL the group after the grace."""
        assert self.proc is not None and self.stop_grace is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        if not select.select([pidfd], [], [], self.stop_grace)[0]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            select.select([pidfd], [], [], 5.0)

    def _watch(self, client: Any, key: Any) -> None:
        """Stop the group once the orchestrator is gone: its task was released (it
        disconnected or cancelled), or its lease has not moved for LEASE_LOST_AFTER."""
        from distributed import Variable

        lease = Variable(self.spec.lease, client=client) if self.spec.lease else None
        seen, moved = None, time.monotonic()
        while not self.done.wait(WATCH_EVERY) and self.stop_grace is None:
            task = self.worker.state.tasks.get(key)
            if task is None or task.state not in EXECUTING:
                self.request_stop(2.0)
                return
            if lease is not None:
                value = _lease_value(lease)
                if value is not None and value != seen:
                    seen, moved = value, time.monotonic()
                elif time.monotonic() - moved > LEASE_LOST_AFTER:
                    self.request_stop(2.0)
                    return

    def _finish(self, code: int) -> int:
        self.ended = True
        self.done.set()
        self.emit("exit", code=code)
        return code


def _lease_value(lease: Any) -> object:
    """The lease's current value; None when the scheduler could not say in time."""
    try:
        return lease.get(timeout=2)
    except Exception:  # a timeout or a lost scheduler: the lease just does not move
        return None
