"""One attempt on a Dask worker, as the orchestrator sees it: the handle of the dask executor.

Dask's threads feed it (the attempt's events, its task's end); the run's thread waits on it.
The attempt's output is appended to its log here, so markers, logs and adoption read the
log as with `local`.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchlib.executors.base import Job, Step
from orchlib.fsutil import ensure_dir, named, open_private

if TYPE_CHECKING:
    from orchlib.executors.dask import DaskExecutor

EXIT_WAIT = 3.0  # a finished task's exit event may trail its result by this much at most


class DaskHandle:
    """An attempt on a worker: its output is appended to job.log as events arrive."""

    def __init__(self, executor: DaskExecutor, job: Job, token: str) -> None:
        self.executor, self.job, self.token = executor, job, token
        self.host = ""
        self.pid = 0
        self.lost = False  # the worker died mid-attempt (not the agent's doing)
        self.error = ""  # the task itself failed on the worker (a broken install)
        self.future: Any = None
        self._code: int | None = None
        self._started = threading.Event()
        self._ended = threading.Event()
        self._end_lock = threading.Lock()
        self._lock = threading.Lock()
        self._gate: list[bytes] | None = []  # output held back until before_start returned
        ensure_dir(job.log.parent)
        self._log = open_private(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)  # a full pipe already says "wake up"
        # Readable once the attempt has ended (and only then): the run's watching thread
        # waits on it beside the log (`watch`).
        self._exit_r, self._exit_w = os.pipe()
        self._closed = False

    @property
    def ref(self) -> dict[str, object]:
        """What state.json keeps to find the attempt again."""
        return {"executor": "dask", "token": self.token, "host": self.host, "pid": self.pid}

    def started(self) -> bool:
        """True once a worker runs the attempt (or it ended without running)."""
        return self._started.is_set()

    def poll(self) -> int | None:
        """The exit code once the attempt has ended; -1 when lost or failed on the worker."""
        return self._code

    def wait_output(self, timeout: float | None) -> None:
        """Block until output arrives, the attempt ends, the run is interrupted, or timeout."""
        if self._closed:
            return
        fds = [self._wake_r]
        if self.executor.wake_fd is not None:
            fds.append(self.executor.wake_fd)
        if self._code is None:
            select.select(fds, [], [], timeout)
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self._wake_r, 4096)

    def watch(self, step: Step) -> bool:
        """Step `step` on the executor's watching thread (`logwatch`): the log is appended
        to here, so it grows as the events arrive; the end shows on the exit pipe."""
        with self._lock:
            if self._closed:
                return False
            return self.executor.logwatch.add(self.job.log, step, exit_fd=self._exit_r)

    def send_enter(self) -> bool:
        """Write a newline to the agent's stdin on its worker (only with keep_stdin)."""
        if self._code is not None or not self.host:
            return False
        return bool(self.executor.control(self.host, self.token, "enter"))

    def terminate(self, grace: float = 5.0) -> None:
        """SIGTERM the remote group, SIGKILL it after `grace`; returns once it has ended."""
        if self._code is None and self.host:
            self.executor.control(self.host, self.token, "stop", grace)
            self._ended.wait(grace + 10.0)
        if self._code is None:  # still queued, or its worker never answered: drop the task
            self._end(-1)
            self._release()
        self.close()

    def close(self) -> None:
        """Release the handle's file descriptors (the caller is done with it)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for fd in (self._wake_r, self._wake_w, self._exit_r, self._exit_w):
                    os.close(fd)
        self._close_log()

    # -- called from Dask's threads --------------------------------------------------

    def on_event(self, msg: Mapping[str, Any]) -> None:
        kind = msg.get("k")
        if kind == "start":
            self.host, self.pid = str(msg.get("host", "")), int(msg.get("pid", 0))
            self._started.set()
            self._wake()
        elif kind == "out":
            self._output(bytes(msg.get("d", b"")))
        elif kind == "exit":
            self._end(int(msg.get("code", -1)))

    def on_done(self, future: Any) -> None:
        """The task ended: note how (the exit event normally told already), then let Dask
        forget it. Runs in Dask's one callback thread, so it fetches nothing it need not."""
        if future.status == "finished":
            deadline = time.monotonic() + EXIT_WAIT
            while self._code is None and time.monotonic() < deadline:
                time.sleep(0.005)
            if self._code is None:  # no exit event: Dask re-ran a claimed attempt
                self._settle(_result(future))
        elif future.status == "error":
            self._settle(_failure(future.exception()))
        else:
            self.lose()
        self._release(finished=not self.lost)

    def _settle(self, result: Mapping[str, Any]) -> None:
        if result.get("lost"):
            self.lose()
        elif result.get("error"):
            self.error = str(result["error"])
            self._output(f"orchlib: the dask task failed on the worker: {self.error}\n".encode())
            self._end(-1)
        else:
            self._end(int(result.get("code", -1)))

    def lose(self) -> None:
        """The worker is gone: the attempt ended as `worker lost`."""
        if self._code is None:
            self.lost = True
            self._end(-1)
        self._started.set()

    def _output(self, data: bytes) -> None:
        with self._lock:
            if self._gate is not None:
                self._gate.append(data)
            elif self._log >= 0:
                with named(self.job.log):
                    os.write(self._log, data)
        self._wake()

    def open_gate(self) -> None:
        """Write what was held back; from now on output goes straight to the log."""
        with self._lock:
            held, self._gate = self._gate or [], None
            with named(self.job.log):
                for data in held:
                    os.write(self._log, data)
        self._wake()
        if self._code is not None:
            self._close_log()

    def _close_log(self) -> None:
        """Once ended and nothing is held back: the exit event is the worker's last word."""
        with self._lock:
            if self._gate is None and self._log >= 0:
                os.close(self._log)
                self._log = -1

    def _end(self, code: int) -> None:
        with self._end_lock:  # Dask's loop (exit event) and its callback thread both end it
            if self._code is None:
                if self.job.exit_file is not None and code >= 0:  # on disk before it shows
                    with contextlib.suppress(OSError):
                        self.job.exit_file.write_text(f"{code}\n")
                self._code = code
        self._close_log()
        self._started.set()
        self._ended.set()
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    os.write(self._exit_w, b"x")
        self._wake()

    def _wake(self) -> None:
        with self._lock:  # never a write to a closed (or since reused) descriptor
            if not self._closed:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self._wake_w, b"x")

    def _release(self, finished: bool = False) -> None:
        """Let go of the task on the cluster (no blocking call: Dask's loop may be calling)
        and close the log once the attempt ended."""
        future, self.future = self.future, None
        if future is not None:
            future.release()
        self.executor.forget(self, finished)


def _result(future: Any) -> Mapping[str, Any]:
    try:
        return dict(future.result())
    except Exception as exc:  # lost on the way
        return _failure(exc)


def _failure(exc: BaseException | None) -> Mapping[str, Any]:
    """KilledWorker (a worker died running it) is a lost worker; anything else is an error
    of the task itself (say orchlib missing on the worker)."""
    name = type(exc).__name__
    if name in {"KilledWorker", "CancelledError", "FutureCancelledError"}:
        return {"lost": True}
    return {"error": f"{name}: {exc}"}


class EndedHandle:
    """A remote attempt of a killed run: its worker has stopped it (or will within ~10 s),
    and all it printed is in its log here, which the run reads for its markers."""

    def __init__(self, ref: Mapping[str, object]) -> None:
        self.ref: dict[str, object] = dict(ref)
        self.host = str(ref.get("host", ""))

    def wait_output(self, timeout: float | None) -> None:
        """Nothing more will come."""

    def poll(self) -> int | None:
        """Ended, its exit code unknown."""
        return -1

    def send_enter(self) -> bool:
        """No stdin to write to."""
        return False

    def terminate(self, grace: float = 5.0) -> None:
        """Already stopped."""

    def close(self) -> None:
        """Nothing held."""
