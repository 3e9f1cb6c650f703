"""Running one plan task to its end: adoption, attempts, retries, checks, the stamp."""

from __future__ import annotations

import errno
import os

from orchlib import state
from orchlib.events import (
    BudgetHeld,
    TaskApproval,
    TaskFailed,
    TaskPaused,
    TaskWaiting,
    ToolsDenied,
    WorkKept,
)
from orchlib.run import fallback, launch
from orchlib.run.attempt import RETRIED, Result
from orchlib.run.attemptstate import task_status
from orchlib.run.checks import Checked
from orchlib.run.finish import check, count_work, stamp
from orchlib.run.pauses import held_until, iso
from orchlib.run.taskrun import Attempted, TaskResult, TaskRun
from orchlib.state import TaskRecord, orchdir
from orchlib.state.model import Status, merge_answers

FREE = {Result.PAUSED, Result.LOST, Result.OVER_BUDGET}  # outcomes that use no retry
MAX_LOSSES = 3  # a task is dispatched again after this many lost workers, no more


def run(tr: TaskRun) -> TaskResult:
    """Adopt a crashed run's attempt or dispatch new ones until the task settles.

    A file that cannot be written fails the task in one line naming it; a full disk
    also stops the run starting agents. No retry is spent on either, and what was
    stamped stays stamped (docs/recovery.md).
    """
    try:
        return _run(tr)
    except OSError as exc:
        if not exc.filename and orchdir.no_space(exc):  # a write that did not say where
            exc.filename = str(tr.co.plan_dir(tr.plan.plan_id))
        if not exc.filename:
            raise
        reason = orchdir.write_failure(exc, tr.co.root)
        if orchdir.no_space(exc):
            tr.ctx.stopped = tr.ctx.stopped or reason
        return _fail(tr, reason, tr.last_number)


def _run(tr: TaskRun) -> TaskResult:
    attempted: Attempted | None = None
    checked: Checked | None = None
    if tr.left is None:
        waiting = _still_waiting(tr)
        if waiting is not None:
            return waiting
        tr.left = 1 + tr.task.limits.retries
        attempted = launch.adopt(tr)
        if attempted is None and tr.task.race:  # merged before a kill: stamped now
            from orchlib.run import racewin  # only raced tasks pay for it

            attempted, checked = racewin.landed(tr) or (None, None)
    while True:
        if attempted is None:
            if tr.ctx.interrupt.is_set():
                return _fail(tr, "interrupted before it started", 0, interrupted=True)
            if (spent := _budget_spent(tr)) is not None:
                return spent
            launch.use(tr, fallback.choose(tr.plan_task, tr.ctx.pauses))
            if (until := held_until(tr.plan_task, tr.ctx.pauses)) is not None:
                return _pause(tr, tr.last_number, until, "")
            attempted, checked = _dispatch(tr, tr.feedback)
        tr.last_number = attempted.number
        if attempted.outcome.result not in FREE:  # a usage limit, a lost worker: no retry
            tr.left -= 1
        result, tr.feedback = _settle(tr, attempted, tr.left, checked)
        if result is not None:
            return result
        attempted, checked = None, None


def _budget_spent(tr: TaskRun) -> TaskResult | None:
    """Its own budget spent: the task fails; a project's, plan's or run's: it waits."""
    ledger, pid = tr.ctx.ledger, tr.plan.plan_id
    if (own := ledger.own(pid, tr.plan_task)) is not None:
        return _fail(tr, own, tr.last_number)
    if (held := ledger.held(pid, tr.plan_task)) is not None:  # PENDING, saying why
        tr.publish(BudgetHeld(pid, tr.task.id, held))
        return TaskResult(Status.PENDING, held)
    return None


def _still_waiting(tr: TaskRun) -> TaskResult | None:
    """A task with an open question is not dispatched again until it is answered, nor one
    waiting for approval until it is approved or rejected.

    An answer `doit answer` gave since this run began counts (it is on disk).
    """
    prev = tr.previous
    if prev is not None and prev.status is Status.APPROVAL:
        tr.publish(TaskApproval(tr.plan.plan_id, tr.task.id, prev.summary, prev.attempt,
                                prev.terminal_id, prev.duration, still=True))  # fmt: skip
        return TaskResult(Status.APPROVAL, prev.summary)
    if prev is None or open_question(prev) is None:
        return None
    disk = state.load(tr.co.plan_dir(tr.plan.plan_id))
    tr.previous = prev = merge_answers(prev, disk.tasks.get(tr.task.id) if disk else None)
    question = open_question(prev)
    if question is None:
        return None
    _publish_waiting(tr, question, prev.attempt, prev.terminal_id, still=True)
    return TaskResult(Status.QUESTION, question)


def next_number(tr: TaskRun) -> int:
    """Numbers count across runs (even past deleted logs), so logs and prompts never collide."""
    on_disk = tr.ctx.next_attempt(tr.plan.plan_id, tr.task.id)
    return max(on_disk, tr.last_number + 1)


def _dispatch(tr: TaskRun, feedback: str) -> tuple[Attempted, Checked | None]:
    """One attempt, or a race of them (DESIGN §16): then checked (and merged) already."""
    if not tr.task.race:
        return launch.attempt(tr, next_number(tr), feedback), None
    from orchlib.run.race import race  # only raced tasks pay for it

    numbers = [next_number(tr) for _ in tr.task.race]
    tr.last_number = max(numbers)
    return race(tr, numbers, feedback)


def _settle(
    tr: TaskRun, done: Attempted, left: int, checked: Checked | None = None
) -> tuple[TaskResult | None, str]:
    """The task's result after an attempt (None: it goes on), and the next one's feedback."""
    outcome, stop = done.outcome, tr.ctx.interrupt
    # A DONE's checks (and merge) are part of its attempt's running time.
    if checked is None and outcome.result is Result.DONE:
        checked = check(tr, done)
    count_work(tr, done)
    _keep_work(tr, outcome.result)  # after the checks: Ctrl-C may have stopped them
    if outcome.denied:
        tr.publish(ToolsDenied(tr.plan.plan_id, tr.task.id, done.number, outcome.denied))
    if outcome.result is Result.PAUSED and not stop.is_set():
        return _paused(tr, done), tr.feedback
    if tr.profile is not None:
        tr.ctx.pauses.clear_backoff(tr.profile)
    if outcome.result is Result.OVER_BUDGET and not stop.is_set():
        return _budget_spent(tr) or _fail(tr, outcome.text, done.number), tr.feedback
    if checked is not None:
        return _checked(tr, done, checked, left)
    if outcome.result is Result.QUESTION:
        _publish_waiting(tr, outcome.text, done.number, done.terminal_id, still=False)
        return TaskResult(task_status(outcome.result), outcome.text), ""
    if outcome.result is Result.INTERRUPTED or stop.is_set():
        return _fail(tr, outcome.text, done.number, interrupted=True), ""
    if outcome.result is Result.LOST:
        return _lost(tr, outcome.text, done.number), tr.feedback
    log = tr.co.log_path(tr.plan.plan_id, tr.task.id, done.number)
    if outcome.result in RETRIED and orchdir.out_of_space(log.parent):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(log))
    retry = outcome.result in RETRIED or tr.task.limits.retry_on_error
    reason = outcome.text if outcome.result is not Result.ERROR else error_reason(outcome.text)
    if retry:
        return _retry_or_fail(tr, reason, done.number, left), ""
    return _fail(tr, reason, done.number), ""


def _paused(tr: TaskRun, done: Attempted) -> TaskResult:
    """Stopped by its agent's usage limit: the profile waits for the reset, and the next
    agent of a fallback list reads where this one was."""
    outcome = done.outcome
    tr.paused_session = outcome.session_id or tr.paused_session
    until = tr.ctx.pauses.pause(tr.profile or "", outcome.reset_at)
    if tr.plan_task.agents:
        log = tr.co.log_path(tr.plan.plan_id, tr.task.id, done.number)
        redact = tr.co.secrets.redact
        tr.handover = fallback.handover(tr.task.agent, done.number, log, redact)
    return _pause(tr, done.number, until, outcome.text, hit=True)


def _checked(
    tr: TaskRun, done: Attempted, checked: Checked, left: int
) -> tuple[TaskResult | None, str]:
    """A DONE whose checks ran: stamped, retried with their problem as feedback, or failed."""
    if checked.problem is None:
        return stamp(tr, done, checked), ""
    problem = checked.problem
    if checked.over_budget and not tr.ctx.interrupt.is_set():
        return _budget_spent(tr) or _fail(tr, problem, done.number), ""
    if checked.final:  # e.g. a review without a verdict: no retry helps
        return _fail(tr, problem, done.number), ""
    return _retry_or_fail(tr, f"DONE, but {problem}", done.number, left), problem


def _keep_work(tr: TaskRun, result: Result) -> None:
    """A task that waits (question, usage limit, interrupt) keeps its worktree for its next
    attempt; after any other end the next attempt starts afresh from the project's HEAD."""
    waits = result in (Result.QUESTION, Result.PAUSED, Result.INTERRUPTED)
    waits = waits or tr.ctx.interrupt.is_set()
    tree = tr.tree
    tr.continues = waits and tree is not None and tree.path.is_dir()
    if tr.continues and tree is not None:
        kept = str(tree.path.relative_to(tr.co.root))
        tr.publish(WorkKept(tr.plan.plan_id, tr.task.id, kept))


def _lost(tr: TaskRun, reason: str, number: int) -> TaskResult | None:
    """Dispatched again elsewhere, up to MAX_LOSSES times; then the task fails."""
    tr.losses += 1
    if tr.losses > MAX_LOSSES:
        return _fail(tr, f"{reason} ({tr.losses} times)", number)
    tr.publish(TaskFailed(tr.plan.plan_id, tr.task.id, reason, number, final=False))
    return None


def _retry_or_fail(tr: TaskRun, reason: str, number: int, left: int) -> TaskResult | None:
    if tr.ctx.interrupt.is_set():  # e.g. verify was stopped: the run's stop, not the task's
        return _fail(tr, reason, number, interrupted=True)
    if left > 0:
        tr.publish(TaskFailed(tr.plan.plan_id, tr.task.id, reason, number, final=False))
        return None
    return _fail(tr, reason, number)


def _fail(tr: TaskRun, reason: str, number: int, interrupted: bool = False) -> TaskResult:
    if interrupted and tr.ctx.interrupt.signal_name:
        reason = f"interrupted by {tr.ctx.interrupt.signal_name}"
    elif tr.tree is not None and tr.tree.path.is_dir():
        reason += f" (its worktree is kept: {tr.tree.path.relative_to(tr.co.root)})"
    tr.publish(TaskFailed(tr.plan.plan_id, tr.task.id, reason, number, True, interrupted))
    return TaskResult(Status.ERROR, reason, interrupted)


def _pause(tr: TaskRun, number: int, until: float, reason: str, hit: bool = False) -> TaskResult:
    """Hold the task until its profile's limit resets (another task may have hit it)."""
    reason = reason or f"waits for {tr.profile}'s usage limit"
    tr.publish(TaskPaused(tr.plan.plan_id, tr.task.id, number, tr.profile or "", iso(until),
                          reason, hit=hit))  # fmt: skip
    return TaskResult(Status.PAUSED, reason)


def _publish_waiting(tr: TaskRun, question: str, number: int, terminal_id: str,
                     still: bool) -> None:  # fmt: skip
    pid = tr.plan.plan_id
    tr.publish(TaskWaiting(pid, tr.task.id, question, number, terminal_id, still=still))


def error_reason(text: str) -> str:
    """The agent's error in its own words, without a leading `ERROR:` (status says so)."""
    text = text.strip()
    while text[:6].upper() == "ERROR:":
        text = text[6:].strip()
    return text or "the agent gave no details"


def open_question(record: TaskRecord | None) -> str | None:
    """The task's unanswered question, if it is waiting for one."""
    if record is None or not record.questions:
        return None
    last = record.questions[-1]
    return None if last.get("answer") else str(last.get("question", ""))
