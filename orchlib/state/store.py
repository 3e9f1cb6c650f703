"""The state store: `.orch/<planId>/state.json` and `orchestration.md` (DESIGN §6).

`StateStore` subscribes to the run's bus. Applying an event is O(1) on the publishing
thread; a background writer coalesces changes and writes both files within ~100 ms
(progress-only changes at most 4 times a second; on a plan so big that a write takes long,
at most ~10% of the time). A started attempt is on disk at once in the journal beside
state.json (`state.journal`, folded in by `load`), so a start costs the same on any plan.
Both files are written atomically under one lock (`statelock`: the flock that `answer()`,
the `doit answer` command in another process, takes with `filelock`); the store re-reads
answers written meanwhile before each write, so none is ever lost. File helpers and those
edits from other processes live in `state/files.py`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from orchlib.events import Event, RunFinished, RunStarted, TaskProgress, TaskStarted, now_iso
from orchlib.fsutil import atomic_write, ensure_dir
from orchlib.plan import Plan
from orchlib.records import replace
from orchlib.state.files import (
    LOCK_FILE,
    LOCK_TIMEOUT,
    MARKDOWN_FILE,
    STATE_FILE,
    answer,
    append_journal,
    file_id,
    forget,
    load,
    with_projects,
    write_state,
)
from orchlib.state.jsonform import JsonCache, from_json, to_json
from orchlib.state.model import (
    PlanState,
    PlanStatus,
    ProjectRecord,
    Question,
    RunInfo,
    Status,
    TaskRecord,
    has_open,
    has_open_question,
    merge_answers,
    plan_status,
    qa_history,
)
from orchlib.state.orchdir import write_failure
from orchlib.state.reconcile import reconcile, reset_for_run
from orchlib.state.render import MarkdownRenderer
from orchlib.state.statelock import StateLock
from orchlib.state.table import render_status
from orchlib.state.transitions import apply_event

__all__ = [
    "PlanState", "ProjectRecord", "Question", "RunInfo", "StateStore", "Status", "TaskRecord",
    "answer", "forget", "from_json", "has_open_question", "load", "qa_history", "render_status",
    "to_json",
]  # fmt: skip

COALESCE_SECONDS = 0.05  # a burst of events becomes one write
PROGRESS_INTERVAL = 0.25  # progress-only changes: at most 4 writes a second
MAX_ERRORS = 100
RENDER_SHARE = 10.0  # wait at least 10x the last render's duration before the next
# A start goes into state.json itself while rewriting it costs at most this (a plan of up to
# ~1,000 tasks here), so readers of state.json alone see it before the agent prints (DESIGN
# §5); past it, into the journal, so a start costs the same on any plan.
REWRITE_BUDGET = 0.004


class StateStore:
    """Keeps one plan's state from the run's events and writes it to `folder`."""

    def __init__(self, plan: Plan, folder: Path, template_dirs: Sequence[Path]) -> None:
        self.plan, self.folder = plan, folder
        self.errors: list[str] = []
        self._renderer = MarkdownRenderer(template_dirs, folder.parent.parent)
        start = reconcile(plan, load(folder), now_iso())
        self._head, self._tasks = start, dict(start.tasks)
        self._cond = threading.Condition()
        self._io = threading.Lock()
        self._filelock = StateLock(folder / LOCK_FILE, LOCK_TIMEOUT)
        self._disk_id: tuple[int, int, int] | None = None
        self._json: JsonCache = {}
        self._version = self._written = self._md_written = 0
        self._md_io = threading.Lock()
        self._md_at = self._md_cost = 0.0
        self._dirty = self._urgent = True
        self._changed_at = time.monotonic()
        self._last_write = self._cost = 0.0
        self._starts: set[str] = set()  # started since state.json or the journal said so
        self._closing = False
        self._thread = threading.Thread(
            target=self._loop, name=f"state-{plan.plan_id}", daemon=True
        )
        self._thread.start()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def handle(self, event: Event) -> None:
        """Apply a run event (the bus subscriber); cheap, the writer thread does the I/O."""
        if event.plan_id != self.plan.plan_id:
            return
        with self._cond:
            self._version += 1
            self._mark(self._apply(event))
            closing = self._closing
        if isinstance(event, RunFinished) or closing:
            self.flush()

    def sync(self) -> None:
        """Return once every attempt started so far is on disk (state.json or its journal).

        The dispatcher calls it after TaskStarted, before it lets the agent run. state.json
        is rewritten when its last write took at most REWRITE_BUDGET; otherwise one line is
        appended to the journal (the writer thread rewrites state.json soon after). Threads
        that sync at the same time share one write.
        """
        with self._io:
            if self._cost <= REWRITE_BUDGET:
                with self._cond:
                    pending = bool(self._starts)
                if pending:
                    self._write_locked(markdown=False)
                return
            with self._cond:
                records = [self._tasks[task_id] for task_id in self._starts]
                self._starts.clear()
            if records:
                ensure_dir(self.folder)
                with self._filelock:
                    append_journal(self.folder, records)

    def flush(self) -> None:
        """Write both files now."""
        self._write(markdown=True)

    def close(self) -> None:
        """Stop the background writer and write the final state (errors go to `errors`)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=LOCK_TIMEOUT)
        try:
            self.flush()
        except Exception as exc:  # closing must not mask the run's own outcome
            self._note(exc)

    def snapshot(self) -> PlanState:
        """A copy of the current state."""
        with self._cond:
            state = replace(self._head, tasks=dict(self._tasks))
        return with_projects(state)

    # --- applying events (under self._cond) ---------------------------------------------

    def _apply(self, event: Event) -> bool:
        """Apply the event; True when it changes more than progress (written without throttle)."""
        if isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, RunFinished):
            self._run_finished(event)
        else:
            record = self._tasks.get(str(getattr(event, "task_id", "")))
            if record is None:
                return False
            self._tasks[record.id] = apply_event(record, event)
            if isinstance(event, TaskStarted):
                self._starts.add(record.id)
        return not isinstance(event, TaskProgress)

    def _run_started(self, event: RunStarted) -> None:
        self._head = replace(
            self._head, run=RunInfo(event.pid or None, event.at), status=PlanStatus.IN_PROGRESS
        )
        for task_id in event.task_ids:
            if task_id in self._tasks:
                self._tasks[task_id] = reset_for_run(self._tasks[task_id])

    def _run_finished(self, event: RunFinished) -> None:
        run = replace(self._head.run, ended_at=event.at, interrupted=event.interrupted)
        head = replace(self._head, run=run)
        self._head = replace(head, status=plan_status(replace(head, tasks=self._tasks)))

    def _mark(self, urgent: bool) -> None:
        wake = not self._dirty or (urgent and not self._urgent)
        if not self._dirty:
            self._dirty, self._changed_at = True, time.monotonic()
        self._urgent = self._urgent or urgent
        if wake:
            self._cond.notify()

    # --- writing ------------------------------------------------------------------------

    def _loop(self) -> None:
        while self._wait_until_due():
            try:
                self._write(markdown=True)
            except Exception as exc:  # the writer must outlive a full disk or a bad template
                self._note(exc)

    def _wait_until_due(self) -> bool:
        with self._cond:
            while not self._closing:
                delay = self._delay() if self._dirty else None
                if delay is not None and delay <= 0:
                    return True
                self._cond.wait(delay)
            return False

    def _delay(self) -> float:
        due = self._changed_at + COALESCE_SECONDS
        if not self._urgent:
            due = max(due, self._last_write + PROGRESS_INTERVAL)
        # A huge plan's files take long to write: never spend more than ~10% on either.
        due = max(due, self._md_at + RENDER_SHARE * self._md_cost)
        due = max(due, self._last_write + RENDER_SHARE * self._cost)
        return due - time.monotonic()

    def _write(self, markdown: bool) -> None:
        # _io orders state.json writes (a later snapshot is never overwritten by an older one);
        # rendering orchestration.md happens outside it, so a sync never waits for a render.
        with self._io:
            state, version = self._write_locked(markdown)
        if markdown:
            self._write_markdown(state, version)

    def _write_locked(self, markdown: bool) -> tuple[PlanState, int]:
        with self._cond:
            state = replace(self._head, tasks=dict(self._tasks))
            version = self._version
            self._starts.clear()  # this write holds them (and removes the journal)
            if markdown:
                self._dirty = self._urgent = False
        started = time.monotonic()
        ensure_dir(self.folder)
        with self._filelock:
            state = self._merge_answers(with_projects(state))
            write_state(self.folder, state, None, self._json)
            self._disk_id = file_id(self.folder / STATE_FILE)
        self._written = max(self._written, version)
        self._last_write = time.monotonic()
        self._cost = self._last_write - started
        return state, version

    def _write_markdown(self, state: PlanState, version: int) -> None:
        with self._md_io:
            if version < self._md_written:
                return  # a newer state's markdown is already on disk
            started = time.monotonic()
            text = self._renderer.render(state).encode("utf-8", "replace")
            self._md_at, self._md_cost = time.monotonic(), time.monotonic() - started
            with self._filelock:
                atomic_write(self.folder / MARKDOWN_FILE, text, durable=False)
            self._md_written = version

    def _merge_answers(self, state: PlanState) -> PlanState:
        """Take answers `doit answer` wrote since our last write (caller holds the file lock)."""
        if not any(has_open(t) or t.status is Status.QUESTION for t in state.tasks.values()):
            return state
        disk = None if file_id(self.folder / STATE_FILE) == self._disk_id else load(self.folder)
        if disk is None:
            return state
        tasks = {tid: merge_answers(t, disk.tasks.get(tid)) for tid, t in state.tasks.items()}
        with self._cond:
            for tid, task in tasks.items():
                if task is not state.tasks[tid]:
                    self._tasks[tid] = merge_answers(self._tasks[tid], task)
        return replace(state, tasks=tasks)

    def _note(self, exc: BaseException) -> None:
        root = self.folder.parent.parent
        what = write_failure(exc, root) if isinstance(exc, OSError) else repr(exc)
        line = f"state of {self.plan.plan_id} not saved: {what}"
        if line not in self.errors and len(self.errors) < MAX_ERRORS:
            self.errors.append(line)
