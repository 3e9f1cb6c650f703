"""How each run event changes a task's state record (pure functions, no I/O; a plan's own
changes, a new plan and a new run, are `reconcile`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from orchlib.events import (
    AttemptRan,
    BudgetHeld,
    Event,
    TaskApproval,
    TaskDone,
    TaskFailed,
    TaskPaused,
    TaskProgress,
    TaskReviewing,
    TaskSkipped,
    TaskSpent,
    TaskStarted,
    TaskUpToDate,
    TaskWaiting,
    ToolsDenied,
    WorkKept,
)
from orchlib.records import replace
from orchlib.state.model import Question, Status, TaskRecord


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time (Z allowed) as an aware datetime; None when unparsable."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _up_to_date(r: TaskRecord, e: TaskUpToDate) -> TaskRecord:
    return replace(
        r,
        status=Status.DONE,
        percent=100,
        summary=e.summary,
        error="",
        skipped_because=(),
        finished_at=e.finished_at or r.finished_at or e.at,
        attempt=e.attempt or r.attempt,
        terminal_id=e.terminal_id or r.terminal_id,
    )


def _started(r: TaskRecord, e: TaskStarted) -> TaskRecord:
    same = e.adopted and r.attempt == e.attempt and r.status is Status.IN_PROGRESS
    return replace(
        r,
        status=Status.IN_PROGRESS,
        attempt=e.attempt,
        terminal_id=e.terminal_id,
        # pid, pgid and pidStart stay for readers of state.json (docs/state.md); the ref
        # alone finds the attempt again.
        pid=e.pid or None,
        pgid=_int_or_none(e.ref.get("pgid")),
        pid_start=str(e.ref.get("start", "")),
        host=e.host,
        ref=e.ref,
        log=e.log,
        prompt_file=e.prompt_file,
        agent=e.agent or r.agent,
        held=False,
        adopted=e.adopted,
        started_at=r.started_at if same else e.at,
        percent=r.percent if same else 0,
        last_update=r.last_update if same else "",
        finished_at="",
        duration=None,
        summary="",
        error="",
        skipped_because=(),
        paused_until="",
        denied=r.denied if same else (),
        continues_in="",  # the attempt works in it now; it is kept again if it waits again
        worked=0.0 if r.status is Status.DONE else r.worked,  # a done task done again
        rejected="",  # its words are in this attempt's prompt
    )


def _progress(r: TaskRecord, e: TaskProgress) -> TaskRecord:
    if r.status is not Status.IN_PROGRESS:
        return r
    return replace(r, percent=max(0, min(100, e.percent)), last_update=e.text)


def _done(r: TaskRecord, e: TaskDone) -> TaskRecord:
    return replace(
        r,
        status=Status.DONE,
        percent=100,
        summary=e.summary,
        finished_at=e.at,
        error="",
        duration=e.duration,
        attempt=e.attempt,
        terminal_id=e.terminal_id or r.terminal_id,
    )


def interrupted_error(reason: str) -> str:
    """The error text of a task stopped by SIGINT/SIGTERM."""
    text = reason.strip() or "SIGINT"
    if not text.lower().startswith("interrupted"):
        text = f"interrupted ({text})"
    return f"{text}; re-run doit to resume"


def _failed(r: TaskRecord, e: TaskFailed) -> TaskRecord:
    attempt = e.attempt or r.attempt  # 0: stopped before an attempt started
    if not e.final:
        note = f"attempt {attempt} failed: {e.reason}, retrying"
        return replace(r, status=Status.IN_PROGRESS, attempt=attempt, last_update=note)
    error = interrupted_error(e.reason) if e.interrupted else e.reason
    ran = e.attempt and e.attempt == r.attempt and r.started_at
    duration = round(r.worked, 3) if ran or r.worked else None  # its attempts' running time
    return replace(
        r,
        status=Status.ERROR,
        error=error,
        attempt=attempt,
        finished_at=e.at,
        duration=duration,
        interrupted=e.interrupted,
    )


def _waiting(r: TaskRecord, e: TaskWaiting) -> TaskRecord:
    last = r.questions[-1] if r.questions else None
    repeat = (
        last is not None
        and last.answer is None
        and (last.question, last.attempt) == (e.question, e.attempt)
    )
    asked = Question(e.question, e.at, e.attempt, e.terminal_id)
    questions = r.questions if repeat else (*r.questions, asked)
    return replace(
        r,
        status=Status.QUESTION,
        questions=questions,
        attempt=e.attempt or r.attempt,
        terminal_id=e.terminal_id or r.terminal_id,
    )


def _paused(r: TaskRecord, e: TaskPaused) -> TaskRecord:
    return replace(
        r,
        status=Status.PAUSED,
        paused_until=e.until,
        last_update=e.reason,
        attempt=e.attempt or r.attempt,
        pid=None,
        pgid=None,
        pid_start="",
        ref={},
    )


def _approval(r: TaskRecord, e: TaskApproval) -> TaskRecord:
    if e.still:
        return r
    return replace(
        r,
        status=Status.APPROVAL,
        percent=100,
        summary=e.summary,
        error="",
        finished_at=e.at,
        duration=e.duration,
        attempt=e.attempt or r.attempt,
        terminal_id=e.terminal_id or r.terminal_id,
    )


def _ran(r: TaskRecord, e: AttemptRan) -> TaskRecord:
    return replace(r, worked=round(r.worked + max(0.0, e.seconds), 3))


def _kept(r: TaskRecord, e: WorkKept) -> TaskRecord:
    return replace(r, continues_in=e.worktree)


def _denied(r: TaskRecord, e: ToolsDenied) -> TaskRecord:
    return replace(r, denied=e.tools) if e.attempt == r.attempt else r


def _spent(r: TaskRecord, e: TaskSpent) -> TaskRecord:
    return replace(r, spend=dict(e.spend))


def _held(r: TaskRecord, e: BudgetHeld) -> TaskRecord:
    if r.status in (Status.DONE, Status.ERROR, Status.QUESTION, Status.SKIPPED):
        return r
    return replace(r, status=Status.PENDING, pending_reason=e.reason, held=True, percent=0,
                   paused_until="")  # fmt: skip


def _reviewing(r: TaskRecord, e: TaskReviewing) -> TaskRecord:
    """The task's last line says who reviews it (its status stays IN_PROGRESS)."""
    return replace(r, last_update=f"reviewing ({e.agent})")


def _skipped(r: TaskRecord, e: TaskSkipped) -> TaskRecord:
    return replace(
        r, status=Status.SKIPPED, skipped_because=tuple(e.because), percent=0, finished_at=e.at
    )


_REDUCERS: dict[type[Event], Callable[[TaskRecord, Any], TaskRecord]] = {
    TaskUpToDate: _up_to_date,
    TaskStarted: _started,
    TaskProgress: _progress,
    TaskDone: _done,
    TaskFailed: _failed,
    TaskWaiting: _waiting,
    TaskSkipped: _skipped,
    TaskPaused: _paused,
    ToolsDenied: _denied,
    WorkKept: _kept,
    TaskReviewing: _reviewing,
    AttemptRan: _ran,
    TaskApproval: _approval,
    TaskSpent: _spent,
    BudgetHeld: _held,
}


def apply_event(record: TaskRecord, event: Event) -> TaskRecord:
    """The record after a task event; other events leave it unchanged."""
    reducer = _REDUCERS.get(type(event))
    return reducer(record, event) if reducer is not None else record


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
