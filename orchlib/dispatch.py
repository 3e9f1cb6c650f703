"""Running one plan task to its end: adoption, attempts, retries, checks, the stamp."""

from __future__ import annotations

import errno
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchlib import adopt, agents, orchdir, stamps, state
from orchlib.attempt import RETRIED, Follow, Outcome, Result, follow
from orchlib.checkout import Checkout
from orchlib.checks import Checked, run_checks
from orchlib.events import (
    TaskDone,
    TaskFailed,
    TaskPaused,
    TaskProgress,
    TaskStarted,
    TaskWaiting,
    ToolsDenied,
    now_iso,
)
from orchlib.fsutil import atomic_write, ensure_dir
from orchlib.pauses import iso, profile_of
from orchlib.plan import Plan, Task
from orchlib.prompt import DoneDependency, PromptInput, render
from orchlib.state import TaskRecord
from orchlib.statemodel import merge_answers
from orchlib.streams import PlainText
from orchlib.terminal import Proc, spawn
from orchlib.worktrees import TaskTree


@dataclass(frozen=True)
class TaskResult:
    """How a task ended in this run: done, failed, waiting (a question) or interrupted.

    `paused`: not ended; its agent's usage limit holds it, and `run` continues it later.
    """

    status: str
    text: str


@dataclass(frozen=True)
class Attempted:
    """A finished attempt: its number, terminal id, outcome and start time."""

    number: int
    terminal_id: str
    outcome: Outcome
    started: float


class TaskRun:
    """One task in one run. `previous` is its state record from before this run began.

    A usage limit pauses the task: `run` returns `paused`, and a later call continues it with
    the retries and feedback it had (the runner keeps this object for that).
    """

    def __init__(self, co: Checkout, plan: Plan, task: Task, previous: TaskRecord | None) -> None:
        self.co, self.plan, self.task, self.previous = co, plan, task, previous
        self.project = plan.projects[task.project]
        self._last_number = previous.attempt if previous is not None else 0
        self.profile = profile_of(task)
        self._left: int | None = None  # attempts left; None until the first call of `run`
        self._feedback = ""
        self._paused_session: str | None = None  # the session a paused attempt had
        # Where attempts work: the project folder, or (isolated) the task's own worktree.
        self.tree = TaskTree(co, plan, task) if self.project.isolation else None
        self.workspace = self.project if self.tree is None else self.tree.workspace

    def run(self) -> TaskResult:
        """Adopt a crashed run's attempt or dispatch new ones until the task settles.

        A file that cannot be written fails the task in one line naming it; a full disk
        also stops the run starting agents. No retry is spent on either, and what was
        stamped stays stamped (docs/recovery.md).
        """
        try:
            return self._run()
        except OSError as exc:
            if exc.filename is None:
                raise
            reason = orchdir.write_failure(exc, self.co.root)
            if orchdir.no_space(exc):
                self.co.stopped = self.co.stopped or reason
            return self._fail(reason, self._last_number)

    def _run(self) -> TaskResult:
        attempted = None
        if self._left is None:
            waiting = self._still_waiting()
            if waiting is not None:
                return waiting
            self._left = 1 + self.task.limits.retries
            attempted = self._adopt()
        while True:
            if attempted is None:
                if self.co.interrupt.is_set():
                    return self._fail("interrupted before it started", 0, interrupted=True)
                if (until := self.co.pauses.until(self.profile)) is not None:
                    return self._pause(self._last_number, until, "")
                attempted = self._attempt(self._next_number(), self._feedback)
            self._last_number = attempted.number
            if attempted.outcome.result is not Result.PAUSED:  # a usage limit uses no retry
                self._left -= 1
            result, self._feedback = self._settle(attempted, self._left)
            if result is not None:
                return result
            attempted = None

    def _still_waiting(self) -> TaskResult | None:
        """A task with an open question is not dispatched again until it is answered.

        An answer `doit answer` gave since this run began counts (it is on disk).
        """
        prev = self.previous
        if prev is None or open_question(prev) is None:
            return None
        disk = state.load(self.co.plan_dir(self.plan.plan_id))
        self.previous = prev = merge_answers(prev, disk.tasks.get(self.task.id) if disk else None)
        question = open_question(prev)
        if question is None:
            return None
        self._publish_waiting(question, prev.attempt, prev.terminal_id, still=True)
        return TaskResult("waiting", question)

    def _next_number(self) -> int:
        """Numbers count across runs (even past deleted logs), so logs and prompts never collide."""
        on_disk = self.co.next_attempt(self.plan.plan_id, self.task.id)
        return max(on_disk, self._last_number + 1)

    def _settle(self, done: Attempted, left: int) -> tuple[TaskResult | None, str]:
        outcome = done.outcome
        if outcome.denied:
            self._publish(ToolsDenied(self.plan.plan_id, self.task.id, done.number, outcome.denied))
        if outcome.result is Result.PAUSED and not self.co.interrupt.is_set():
            self._paused_session = outcome.session_id or self._paused_session
            until = self.co.pauses.pause(self.profile or "", outcome.reset_at)
            return self._pause(done.number, until, outcome.text, hit=True), self._feedback
        if self.profile is not None:
            self.co.pauses.clear_backoff(self.profile)
        if outcome.result is Result.DONE:
            checked = self._check(done)
            if checked.problem is None:
                return self._stamp(done, checked), ""
            problem = checked.problem
            return self._retry_or_fail(f"DONE, but {problem}", done.number, left), problem
        if outcome.result is Result.QUESTION:
            self._publish_waiting(outcome.text, done.number, done.terminal_id, still=False)
            return TaskResult("waiting", outcome.text), ""
        if outcome.result is Result.INTERRUPTED or self.co.interrupt.is_set():
            return self._fail(outcome.text, done.number, interrupted=True), ""
        log = self.co.log_path(self.plan.plan_id, self.task.id, done.number)
        if outcome.result in RETRIED and orchdir.out_of_space(log.parent):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(log))
        retry = outcome.result in RETRIED or self.task.limits.retry_on_error
        reason = outcome.text if outcome.result is not Result.ERROR else error_reason(outcome.text)
        if retry:
            return self._retry_or_fail(reason, done.number, left), ""
        return self._fail(reason, done.number), ""

    def _retry_or_fail(self, reason: str, number: int, left: int) -> TaskResult | None:
        if self.co.interrupt.is_set():  # e.g. verify was stopped: the run's stop, not the task's
            return self._fail(reason, number, interrupted=True)
        if left > 0:
            self._publish(TaskFailed(self.plan.plan_id, self.task.id, reason, number, final=False))
            return None
        return self._fail(reason, number)

    def _fail(self, reason: str, number: int, interrupted: bool = False) -> TaskResult:
        if interrupted and self.co.interrupt.signal_name:
            reason = f"interrupted by {self.co.interrupt.signal_name}"
        elif self.tree is not None and self.tree.path.is_dir():
            reason += f" (its worktree is kept: {self.tree.path.relative_to(self.co.root)})"
        event = TaskFailed(self.plan.plan_id, self.task.id, reason, number, True, interrupted)
        self._publish(event)
        return TaskResult("interrupted" if interrupted else "failed", reason)

    def _pause(self, number: int, until: float, reason: str, hit: bool = False) -> TaskResult:
        """Hold the task until its profile's limit resets (another task may have hit it)."""
        reason = reason or f"waits for {self.profile}'s usage limit"
        profile = self.profile or ""
        self._publish(TaskPaused(self.plan.plan_id, self.task.id, number, profile, iso(until),
                                 reason, hit=hit))  # fmt: skip
        return TaskResult("paused", reason)

    def _publish(self, event: Any) -> None:
        self.co.bus.publish(event)

    def _publish_waiting(self, question: str, number: int, terminal_id: str, still: bool) -> None:
        pid = self.plan.plan_id
        self._publish(TaskWaiting(pid, self.task.id, question, number, terminal_id, still=still))

    # --- attempts -------------------------------------------------------------------------

    def _adopt(self) -> Attempted | None:
        """Take over an attempt a killed orchestrator left: follow it, or read its log."""
        prev, found = self.previous, adopt.leftover(self.previous)
        if prev is None or found is None:
            return None
        proc, log, ago = found.proc, found.log, found.started_ago
        self._publish(self._started(prev.attempt, prev.terminal_id, proc, log, prev.prompt_file,
                                    adopted=True))  # fmt: skip
        started = time.monotonic() - ago
        outcome = self._follow(proc, log, prev.terminal_id, ago, found.quiet_for)
        return Attempted(prev.attempt, prev.terminal_id, outcome, started)

    def _attempt(self, number: int, feedback: str) -> Attempted:
        self._last_number = number  # a failed write below is still this attempt's
        terminal_id = f"term-{self.task.id}-{number}-{secrets.token_hex(3)}"
        started = time.monotonic()
        if self.tree is not None:  # a fresh worktree from the project's HEAD
            problem = self.tree.prepare(number)
            if problem is not None:
                return Attempted(number, terminal_id, Outcome(Result.ERROR, problem), started)
        prompt_file = self.co.prompt_path(self.plan.plan_id, self.task.id, number)
        if self.task.command is None:  # a shell task has no prompt
            text = self._prompt(terminal_id, number, feedback)
            atomic_write(prompt_file, text, durable=False)  # a lost prompt is re-rendered
        log = self.co.log_path(self.plan.plan_id, self.task.id, number)
        argv, env, stdin_file, keep = self._command(terminal_id, number, prompt_file)
        ensure_dir(self.workspace.root)

        def announce(proc: Proc) -> None:
            prompt = str(prompt_file) if self.task.command is None else ""
            self._publish(self._started(number, terminal_id, proc, log, prompt, False))
            self.co.bus.sync()  # pid and log are in state.json before the agent may print

        exit_file = log.with_suffix(".exit") if self.task.command is not None else None
        proc = spawn(argv, cwd=self.workspace.root, env=env, log=log, stdin_file=stdin_file,
                     keep_stdin=keep, before_start=announce, exit_file=exit_file)  # fmt: skip
        return Attempted(number, terminal_id, self._follow(proc, log, terminal_id), started)

    def _started(
        self,
        number: int,
        terminal_id: str,
        proc: Proc,
        log: Path,
        prompt: str | None,
        adopted: bool,
    ) -> TaskStarted:
        return TaskStarted(
            self.plan.plan_id, self.task.id, number, terminal_id, proc.pid, proc.pgid,
            proc.start_time, str(log), prompt or "", adopted=adopted,
        )  # fmt: skip

    def _follow(
        self, proc: Proc, log: Path, terminal_id: str, ago: float = 0.0, quiet: float = 0.0
    ) -> Outcome:
        shell = self.task.command is not None
        adapter = PlainText() if shell else agents.adapter(self.task.agent)
        stop = self.co.interrupt
        watch = Follow(proc, log, terminal_id, self.task.limits, adapter, stop.event,
                       stop.wake_fd, self._progress, shell, ago, quiet)  # fmt: skip
        return follow(watch)

    def _progress(self, percent: int, text: str) -> None:
        self._publish(TaskProgress(self.plan.plan_id, self.task.id, percent, text))

    def _command(
        self, terminal_id: str, number: int, prompt_file: Path
    ) -> tuple[tuple[str, ...], dict[str, str], Path | None, bool]:
        env = dict(os.environ)
        env.update(self._orch_env(terminal_id, number, prompt_file))
        if self.task.command is not None:
            return self.task.command, env, None, False
        launch = agents.Launch(
            prompt=prompt_file.read_text(encoding="utf-8"), prompt_file=prompt_file,
            terminal_id=terminal_id, task_id=self.task.id, plan_id=self.plan.plan_id,
            project=self.project.name, project_path=self.workspace.root,
            resume_session=self._resume_session(),
        )  # fmt: skip
        inv = agents.invocation(self.task.agent, launch)
        env.update(inv.env)
        on_stdin = inv.prompt_mode == "stdin"
        return inv.argv, env, prompt_file if on_stdin else None, not on_stdin

    def _orch_env(self, terminal_id: str, number: int, prompt_file: Path) -> dict[str, str]:
        return {
            "TERMINAL_ID": terminal_id,
            "ORCH_PLAN_ID": self.plan.plan_id,
            "ORCH_TASK_ID": self.task.id,
            "ORCH_PROJECT": self.project.name,
            "ORCH_ATTEMPT": str(number),
            "ORCH_PROMPT_FILE": str(prompt_file) if self.task.command is None else "",
        }

    def _resume_session(self) -> str | None:
        """The session of the latest finished task of this project, for `session: continue`."""
        if self.task.agent.session != "continue":
            return None
        if self._paused_session:  # a usage limit stopped it: continue that very session
            return self._paused_session
        best: tuple[str, str] | None = None
        for other in self.plan.tasks.values():
            if other.project != self.task.project or other.id == self.task.id:
                continue
            stamp = self.co.stamp(self.plan.plan_id, other.id)
            if stamp and stamp.get("sessionId") and stamp.get("agent") == self.task.agent.name:
                key = (str(stamp["finishedAt"]), str(stamp["sessionId"]))
                best = max(best, key) if best else key
        return best[1] if best else None

    def _prompt(self, terminal_id: str, number: int, feedback: str) -> str:
        deps = []
        for dep_id in self.task.depends_on:
            dep, stamp = self.plan.tasks[dep_id], self.co.stamp(self.plan.plan_id, dep_id) or {}
            deps.append(
                DoneDependency(dep.id, dep.title, dep.project, str(stamp.get("summary", "")))
            )
        given = PromptInput(terminal_id, number, deps, answered_questions(self.previous), feedback)
        return render(self.co.root, self.plan, self.task, given, self.workspace)

    # --- checks, the merge and the stamp ---------------------------------------------------

    def _check(self, done: Attempted) -> Checked:
        """The checks of a DONE where the attempt worked; isolated, then its merge."""
        if self.tree is not None and not self.tree.path.is_dir():
            return Checked(f"its worktree {self.tree.path} is gone; the next attempt makes another")
        checked = run_checks(self.co, self.plan, self.task, done.number, self.workspace)
        if checked.problem is not None or self.tree is None:
            return checked
        landed = self.tree.land(done.number, done.outcome.text)
        return replace(checked, problem=landed.problem, merge=landed.merge)

    def _stamp(self, done: Attempted, checked: Checked) -> TaskResult:
        outcome = done.outcome
        stamp: dict[str, Any] = {
            "taskId": self.task.id,
            "planId": self.plan.plan_id,
            "project": self.task.project,
            "title": self.task.title,
            "summary": outcome.text,
            "finishedAt": now_iso(),
            "attempt": done.number,
            "terminalId": done.terminal_id,
            "specHash": self.co.spec_hash(self.plan, self.task),
            "durationSeconds": round(time.monotonic() - done.started, 3),
            "agent": self.task.agent.name,
            "inputs": stamps.fingerprint_inputs(self.project, self.task),
        }
        if self.task.verify is not None:
            stamp["verify"] = checked.verify
        if checked.merge:
            stamp["merge"] = checked.merge
        if outcome.session_id:
            stamp["sessionId"] = outcome.session_id
        if outcome.usage:
            stamp["usage"] = outcome.usage
        stamps.write(self.co.stamp_path(self.plan.plan_id, self.task.id), stamp)
        if self.tree is not None:  # merged and stamped: the worktree has served
            self.tree.remove(done.number)
        self._publish(TaskDone(self.plan.plan_id, self.task.id, outcome.text, done.number,
                               done.terminal_id, stamp["durationSeconds"],
                               outcome.usage))  # fmt: skip
        return TaskResult("done", outcome.text)


def error_reason(text: str) -> str:
    """`ERROR: <text>`, once: an agent's own `ERROR:` is not doubled, no text no colon."""
    text = text.strip()
    while text[:6].upper() == "ERROR:":
        text = text[6:].strip()
    return f"ERROR: {text}" if text else "ERROR: the agent gave no details"


def open_question(record: TaskRecord | None) -> str | None:
    """The task's unanswered question, if it is waiting for one."""
    if record is None or not record.questions:
        return None
    last = record.questions[-1]
    return None if last.get("answer") else str(last.get("question", ""))


def answered_questions(record: TaskRecord | None) -> list[tuple[str, str]]:
    """Every earlier question of the task with its answer, for the next prompt."""
    if record is None:
        return []
    return [(str(q["question"]), str(q["answer"])) for q in record.questions if q.get("answer")]
