"""Running one plan task to its end: adoption, attempts, retries, checks, the stamp."""

from __future__ import annotations

import errno
import os
import secrets
import time
from dataclasses import replace
from pathlib import Path

from orchlib import agents, state
from orchlib.agents.streams import PlainText
from orchlib.events import (
    AttemptRan,
    BudgetHeld,
    TaskApproval,
    TaskFailed,
    TaskPaused,
    TaskProgress,
    TaskSpent,
    TaskStarted,
    TaskWaiting,
    ToolsDenied,
    WorkKept,
)
from orchlib.executors.base import Handle
from orchlib.fsutil import atomic_write, ensure_dir
from orchlib.plan import Plan, Task
from orchlib.run import adopt, fallback, racewin
from orchlib.run.attempt import RETRIED, Follow, Outcome, Result, follow
from orchlib.run.attemptstate import task_status
from orchlib.run.changes import Baseline
from orchlib.run.checks import Checked
from orchlib.run.context import RunContext
from orchlib.run.finish import Attempted, Finishing, TaskResult
from orchlib.run.launch import AttemptInputs
from orchlib.run.pauses import held_until, iso, profile_of
from orchlib.run.race import race
from orchlib.run.review import take_baseline
from orchlib.run.spend import Meter
from orchlib.run.worktrees import TaskTree
from orchlib.state import TaskRecord, orchdir
from orchlib.state.model import Status, merge_answers

FREE = {Result.PAUSED, Result.LOST, Result.OVER_BUDGET}  # outcomes that use no retry
MAX_LOSSES = 3  # a task is dispatched again after this many lost workers, no more


class TaskRun(AttemptInputs, Finishing):
    """One task in one run. `previous` is its state record from before this run began.

    A usage limit pauses the task: `run` returns `paused`, and a later call continues it with
    the retries and feedback it had (the runner keeps this object for that).
    """

    def __init__(
        self, ctx: RunContext, plan: Plan, task: Task, previous: TaskRecord | None
    ) -> None:
        self.ctx, self.co = ctx, ctx.co
        self.plan, self.task, self.previous = plan, task, previous
        self.plan_task = task  # `task` is it as the current attempt runs it (its agent)
        self._handover: fallback.Handover | None = None
        self.project = plan.projects[task.project]
        self._last_number = previous.attempt if previous is not None else 0
        self.profile = profile_of(task)
        self._left: int | None = None  # attempts left; None until the first call of `run`
        # What a person asked to change with `doit reject` (DESIGN §16), for the first attempt.
        self._feedback = rejection(previous.rejected) if previous and previous.rejected else ""
        self._paused_session: str | None = None  # the session a paused attempt had
        self._losses = 0  # attempts whose worker died under them (DESIGN §8)
        # Where attempts work: the project folder, or (isolated) the task's own worktree.
        self.tree = TaskTree(self.co, plan, task, ctx.repos) if self.project.isolation else None
        self.workspace = self.project if self.tree is None else self.tree.workspace
        # A task that waited keeps its worktree: its next attempt continues there (§10).
        self._continue = previous is not None and bool(previous.continues_in)
        # Running time of its attempts so far (DESIGN §15): a done task done again starts at 0.
        counted = previous is not None and previous.status is not Status.DONE
        self._worked = previous.worked if previous is not None and counted else 0.0
        self._bases: dict[int, Baseline] = {}  # a reviewed task's attempts' starting points
        self._raced: dict[str, object] = {}  # a race's winner and racers, for the stamp

    def run(self) -> TaskResult:
        """Adopt a crashed run's attempt or dispatch new ones until the task settles.

        A file that cannot be written fails the task in one line naming it; a full disk
        also stops the run starting agents. No retry is spent on either, and what was
        stamped stays stamped (docs/recovery.md).
        """
        try:
            return self._run()
        except OSError as exc:
            if not exc.filename and orchdir.no_space(exc):  # a write that did not say where
                exc.filename = str(self.co.plan_dir(self.plan.plan_id))
            if not exc.filename:
                raise
            reason = orchdir.write_failure(exc, self.co.root)
            if orchdir.no_space(exc):
                self.ctx.stopped = self.ctx.stopped or reason
            return self._fail(reason, self._last_number)

    def _run(self) -> TaskResult:
        attempted, checked = None, None
        if self._left is None:
            waiting = self._still_waiting()
            if waiting is not None:
                return waiting
            self._left = 1 + self.task.limits.retries
            attempted = self._adopt()
            if attempted is None and self.task.race:  # merged before a kill: stamped now
                attempted, checked = racewin.landed(self) or (None, None)
        while True:
            if attempted is None:
                if self.ctx.interrupt.is_set():
                    return self._fail("interrupted before it started", 0, interrupted=True)
                if (spent := self._budget_spent()) is not None:
                    return spent
                self._use(fallback.choose(self.plan_task, self.ctx.pauses))
                if (until := held_until(self.plan_task, self.ctx.pauses)) is not None:
                    return self._pause(self._last_number, until, "")
                attempted, checked = self._dispatch(self._feedback)
            self._last_number = attempted.number
            if attempted.outcome.result not in FREE:  # a usage limit, a lost worker: no retry
                self._left -= 1
            result, self._feedback = self._settle(attempted, self._left, checked)
            if result is not None:
                return result
            attempted, checked = None, None

    def _budget_spent(self) -> TaskResult | None:
        """Its own budget spent: the task fails; a project's, plan's or run's: it waits."""
        ledger, pid = self.ctx.ledger, self.plan.plan_id
        if (own := ledger.own(pid, self.plan_task)) is not None:
            return self._fail(own, self._last_number)
        if (held := ledger.held(pid, self.plan_task)) is not None:  # PENDING, saying why
            self._publish(BudgetHeld(pid, self.task.id, held))
            return TaskResult(Status.PENDING, held)
        return None

    def _use(self, task: Task) -> None:
        """Run the next attempt with `task`'s agent; another agent starts a fresh session."""
        if task.agent != self.task.agent:
            self._paused_session = None
        self.task, self.profile = task, profile_of(task)

    def _still_waiting(self) -> TaskResult | None:
        """A task with an open question is not dispatched again until it is answered, nor one
        waiting for approval until it is approved or rejected.

        An answer `doit answer` gave since this run began counts (it is on disk).
        """
        prev = self.previous
        if prev is not None and prev.status is Status.APPROVAL:
            self._publish(TaskApproval(self.plan.plan_id, self.task.id, prev.summary, prev.attempt,
                                       prev.terminal_id, prev.duration, still=True))  # fmt: skip
            return TaskResult(Status.APPROVAL, prev.summary)
        if prev is None or open_question(prev) is None:
            return None
        disk = state.load(self.co.plan_dir(self.plan.plan_id))
        self.previous = prev = merge_answers(prev, disk.tasks.get(self.task.id) if disk else None)
        question = open_question(prev)
        if question is None:
            return None
        self._publish_waiting(question, prev.attempt, prev.terminal_id, still=True)
        return TaskResult(Status.QUESTION, question)

    def _next_number(self) -> int:
        """Numbers count across runs (even past deleted logs), so logs and prompts never collide."""
        on_disk = self.ctx.next_attempt(self.plan.plan_id, self.task.id)
        return max(on_disk, self._last_number + 1)

    def _dispatch(self, feedback: str) -> tuple[Attempted, Checked | None]:
        """One attempt, or a race of them (DESIGN §16): then checked (and merged) already."""
        if not self.task.race:
            return self._attempt(self._next_number(), feedback), None
        numbers = [self._next_number() for _ in self.task.race]
        self._last_number = max(numbers)
        return race(self, numbers, feedback)

    def _settle(
        self, done: Attempted, left: int, checked: Checked | None = None
    ) -> tuple[TaskResult | None, str]:
        outcome = done.outcome
        # A DONE's checks (and merge) are part of its attempt's running time.
        if checked is None and outcome.result is Result.DONE:
            checked = self._check(done)
        self._count_work(done)
        self._keep_work(outcome.result)  # after the checks: Ctrl-C may have stopped them
        if outcome.denied:
            self._publish(ToolsDenied(self.plan.plan_id, self.task.id, done.number, outcome.denied))
        if outcome.result is Result.PAUSED and not self.ctx.interrupt.is_set():
            self._paused_session = outcome.session_id or self._paused_session
            until = self.ctx.pauses.pause(self.profile or "", outcome.reset_at)
            if self.plan_task.agents:  # the next agent of the list reads where this one was
                log = self.co.log_path(self.plan.plan_id, self.task.id, done.number)
                redact = self.co.secrets.redact
                self._handover = fallback.handover(self.task.agent, done.number, log, redact)
            return self._pause(done.number, until, outcome.text, hit=True), self._feedback
        if self.profile is not None:
            self.ctx.pauses.clear_backoff(self.profile)
        if outcome.result is Result.OVER_BUDGET and not self.ctx.interrupt.is_set():
            spent = self._budget_spent()
            return spent or self._fail(outcome.text, done.number), self._feedback
        if checked is not None:
            if checked.problem is None:
                return self._stamp(done, checked), ""
            problem = checked.problem
            if checked.over_budget and not self.ctx.interrupt.is_set():
                return self._budget_spent() or self._fail(problem, done.number), ""
            if checked.final:  # e.g. a review without a verdict: no retry helps
                return self._fail(problem, done.number), ""
            return self._retry_or_fail(f"DONE, but {problem}", done.number, left), problem
        if outcome.result is Result.QUESTION:
            self._publish_waiting(outcome.text, done.number, done.terminal_id, still=False)
            return TaskResult(task_status(outcome.result), outcome.text), ""
        if outcome.result is Result.INTERRUPTED or self.ctx.interrupt.is_set():
            return self._fail(outcome.text, done.number, interrupted=True), ""
        if outcome.result is Result.LOST:
            return self._lost(outcome.text, done.number), self._feedback
        log = self.co.log_path(self.plan.plan_id, self.task.id, done.number)
        if outcome.result in RETRIED and orchdir.out_of_space(log.parent):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(log))
        retry = outcome.result in RETRIED or self.task.limits.retry_on_error
        reason = outcome.text if outcome.result is not Result.ERROR else error_reason(outcome.text)
        if retry:
            return self._retry_or_fail(reason, done.number, left), ""
        return self._fail(reason, done.number), ""

    def _count_work(self, done: Attempted) -> None:
        """Add the attempt's running time, from its process's start, to the task's elapsed."""
        seconds = max(0.0, time.monotonic() - done.started)
        self._worked += seconds
        self._publish(AttemptRan(self.plan.plan_id, self.task.id, done.number, round(seconds, 3)))

    def _keep_work(self, result: Result) -> None:
        """A task that waits (question, usage limit, interrupt) keeps its worktree for its next
        attempt; after any other end the next attempt starts afresh from the project's HEAD."""
        waits = result in (Result.QUESTION, Result.PAUSED, Result.INTERRUPTED)
        waits = waits or self.ctx.interrupt.is_set()
        tree = self.tree
        self._continue = waits and tree is not None and tree.path.is_dir()
        if self._continue and tree is not None:
            kept = str(tree.path.relative_to(self.co.root))
            self._publish(WorkKept(self.plan.plan_id, self.task.id, kept))

    def _lost(self, reason: str, number: int) -> TaskResult | None:
        """Dispatched again elsewhere, up to MAX_LOSSES times; then the task fails."""
        self._losses += 1
        if self._losses > MAX_LOSSES:
            return self._fail(f"{reason} ({self._losses} times)", number)
        self._publish(TaskFailed(self.plan.plan_id, self.task.id, reason, number, final=False))
        return None

    def _retry_or_fail(self, reason: str, number: int, left: int) -> TaskResult | None:
        if self.ctx.interrupt.is_set():  # e.g. verify was stopped: the run's stop, not the task's
            return self._fail(reason, number, interrupted=True)
        if left > 0:
            self._publish(TaskFailed(self.plan.plan_id, self.task.id, reason, number, final=False))
            return None
        return self._fail(reason, number)

    def _fail(self, reason: str, number: int, interrupted: bool = False) -> TaskResult:
        if interrupted and self.ctx.interrupt.signal_name:
            reason = f"interrupted by {self.ctx.interrupt.signal_name}"
        elif self.tree is not None and self.tree.path.is_dir():
            reason += f" (its worktree is kept: {self.tree.path.relative_to(self.co.root)})"
        event = TaskFailed(self.plan.plan_id, self.task.id, reason, number, True, interrupted)
        self._publish(event)
        return TaskResult(Status.ERROR, reason, interrupted)

    def _pause(self, number: int, until: float, reason: str, hit: bool = False) -> TaskResult:
        """Hold the task until its profile's limit resets (another task may have hit it)."""
        reason = reason or f"waits for {self.profile}'s usage limit"
        profile = self.profile or ""
        self._publish(TaskPaused(self.plan.plan_id, self.task.id, number, profile, iso(until),
                                 reason, hit=hit))  # fmt: skip
        return TaskResult(Status.PAUSED, reason)

    def _publish_waiting(self, question: str, number: int, terminal_id: str, still: bool) -> None:
        pid = self.plan.plan_id
        self._publish(TaskWaiting(pid, self.task.id, question, number, terminal_id, still=still))

    # --- attempts -------------------------------------------------------------------------

    def _adopt(self) -> Attempted | None:
        """Take over an attempt a killed orchestrator left: follow it, or read its log."""
        prev, found = self.previous, adopt.leftover(self.ctx.executor, self.previous)
        if prev is None or found is None:
            return None
        if self.task.race:  # a race is run again, not adopted racer by racer (DESIGN §16)
            found.handle.terminate()
            return None
        proc, log, ago = found.handle, found.log, found.started_ago
        self._use(fallback.named(self.plan_task, prev.agent))
        self._publish(self._started(prev.attempt, prev.terminal_id, proc, log, prev.prompt_file,
                                    adopted=True))  # fmt: skip
        started = time.monotonic() - ago
        meter = self.ctx.ledger.begin(self.plan.plan_id, self.plan_task, proc)
        outcome = self._follow(proc, log, prev.terminal_id, ago, found.quiet_for, meter)
        return Attempted(prev.attempt, prev.terminal_id, outcome, started, proc.host)

    def _attempt(self, number: int, feedback: str) -> Attempted:
        self._last_number = number  # a failed write below is still this attempt's
        terminal_id = f"term-{self.task.id}-{number}-{secrets.token_hex(3)}"
        began = [time.monotonic()]  # from the process's start: not the time queued for a slot
        if self.tree is not None:  # its kept worktree, or a fresh one from the project's HEAD
            problem = self.tree.prepare(number, keep=self._continue)
            if problem is not None:
                return Attempted(number, terminal_id, Outcome(Result.ERROR, problem), began[0])
        if self.task.review is not None:  # what its reviewer is shown as the changes
            self._bases[number] = take_baseline(self.co, self.plan.plan_id, self.task.id, number,
                                                self.workspace.root)  # fmt: skip
        prompt_file = self.co.prompt_path(self.plan.plan_id, self.task.id, number)
        if self.task.command is None:  # a shell task has no prompt
            text = self._prompt(terminal_id, number, feedback)
            atomic_write(prompt_file, text, durable=False)  # a lost prompt is re-rendered
        log = self.co.log_path(self.plan.plan_id, self.task.id, number)
        job = self._job(terminal_id, number, prompt_file, log)
        ensure_dir(self.workspace.root)

        def announce(proc: Handle) -> None:
            began[0] = time.monotonic()  # the process exists (on its dask worker: runs there)
            prompt = str(prompt_file) if self.task.command is None else ""
            self._publish(self._started(number, terminal_id, proc, log, prompt, False))
            self.ctx.bus.sync()  # pid and log are in state.json before the agent may print

        proc = self.ctx.executor.start(job, announce)
        meter = self.ctx.ledger.begin(self.plan.plan_id, self.plan_task, proc)
        outcome = self._follow(proc, log, terminal_id, meter=meter)
        return Attempted(number, terminal_id, outcome, began[0], proc.host)

    def _started(
        self,
        number: int,
        terminal_id: str,
        proc: Handle,
        log: Path,
        prompt: str | None,
        adopted: bool,
    ) -> TaskStarted:
        return TaskStarted(
            self.plan.plan_id, self.task.id, number, terminal_id, proc.ref, proc.host,
            str(log), prompt or "", adopted=adopted, agent=self.task.agent.name,
        )  # fmt: skip

    def _follow(
        self, proc: Handle, log: Path, terminal_id: str, ago: float = 0.0, quiet: float = 0.0,
        meter: Meter | None = None,
    ) -> Outcome:  # fmt: skip
        shell = self.task.command is not None
        adapter = PlainText() if shell else agents.adapter(self.task.agent)
        stop = self.ctx.interrupt
        watch = Follow(proc, log, terminal_id, self.task.limits, adapter, stop.event,
                       self._progress, shell, ago, quiet, meter)  # fmt: skip
        try:
            outcome = follow(watch)
        finally:
            if meter is not None and self.ctx.ledger.end(meter):  # it reported usage
                spent = self.ctx.ledger.task_spend(self.plan.plan_id, self.task.id)
                self._publish(TaskSpent(self.plan.plan_id, self.task.id, spent.as_json()))
        # Where an agent's words enter orchlib's records: the stamp, the next prompt, events.
        clean = self.co.secrets.redact
        return replace(outcome, text=clean(outcome.text), denied=tuple(map(clean, outcome.denied)))

    def _progress(self, percent: int, text: str) -> None:
        self._publish(TaskProgress(self.plan.plan_id, self.task.id, percent, text))


def error_reason(text: str) -> str:
    """The agent's error in its own words, without a leading `ERROR:` (status says so)."""
    text = text.strip()
    while text[:6].upper() == "ERROR:":
        text = text[6:].strip()
    return text or "the agent gave no details"


def rejection(text: str) -> str:
    """The feedback of a person's `doit reject`."""
    return f"A person reviewed the work and rejected it (doit reject): {text}"


def open_question(record: TaskRecord | None) -> str | None:
    """The task's unanswered question, if it is waiting for one."""
    if record is None or not record.questions:
        return None
    last = record.questions[-1]
    return None if last.get("answer") else str(last.get("question", ""))
