"""Review by another agent (DESIGN §16): after a DONE passes its checks, a reviewer agent
reads the task, the summary and the attempt's changes and prints APPROVE or REJECT.

The reviewer runs like any attempt: a Job through the run's executor (the task's
environment policy and sandbox, the reviewer profile's logins), followed by the same
`attempt.follow`, with only its own APPROVE / REJECT counting. A reviewer a killed run left
running is stopped (its ref is in `<task>.<n>.review.pid`) and the review starts again.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.events import TaskReviewed, TaskReviewing, TaskSpent
from orchlib.executors.base import Handle, Job
from orchlib.fsutil import atomic_write
from orchlib.plan import Plan, Project, Review, Task
from orchlib.records import replace
from orchlib.run import changes, sandboxing
from orchlib.run.attempt import Follow, Outcome, Result, follow
from orchlib.run.checks import stop_leftover
from orchlib.run.context import RunContext
from orchlib.run.prompt import render_template

TEMPLATE = "review.md.j2"
STARTS = 2  # a reviewer that ends without a verdict is started once more, then the task fails
NO_VERDICT = "review gave no verdict"


@dataclass(frozen=True)
class Verdict:
    """A review's end: `problem` None when approved (then `stamp` is the stamp's `review`);
    else the feedback for the next attempt, `final` when it fails the task outright."""

    problem: str | None
    stamp: dict[str, Any] = field(default_factory=dict)
    final: bool = False
    over_budget: bool = False  # a budget the reviewer's usage crossed stopped it (DESIGN §15)


def review_log(co: Checkout, plan_id: str, task_id: str, attempt: int) -> Path:
    """The reviewer's transcript of one attempt (both starts, appended)."""
    return co.log_path(plan_id, task_id, attempt, "review.log")


class Reviewer:
    """The review of one attempt's checked DONE, in `where` (the project or its worktree)."""

    def __init__(
        self, ctx: RunContext, plan: Plan, task: Task, where: Project, attempt: int
    ) -> None:
        assert task.review is not None
        self.ctx, self.co, self.plan, self.task, self.where = ctx, ctx.co, plan, task, where
        self.review: Review = task.review
        self.attempt = attempt
        self.log = review_log(ctx.co, plan.plan_id, task.id, attempt)
        self.pid_file = self.log.with_suffix(".pid")
        self.profile = self.review.agent.profile or self.review.agent.name

    def run(self, summary: str, base: changes.Baseline) -> Verdict:
        """Start the reviewer (twice at most without a verdict) and read its verdict."""
        stop_leftover(self.ctx.executor, self.pid_file)  # a killed run's reviewer: start again
        git_log = self.co.log_path(self.plan.plan_id, self.task.id, self.attempt, "git.log")
        shown = self.co.secrets.redact(changes.describe(self.where.root, base, git_log))
        kind = f"git diff from {base.commit[:12]}" if base.commit else "files changed"
        starts = 0
        while starts < STARTS:
            if not self._wait_for_limit():
                return Verdict("interrupted during review")
            outcome = self._start(summary, shown, kind, starts + 1)
            if self.ctx.interrupt.is_set() or outcome.result is Result.INTERRUPTED:
                return Verdict("interrupted during review")
            words = self.co.secrets.redact(outcome.text)
            if outcome.result is Result.OVER_BUDGET:  # its usage counts to the task's spend
                self._said("none", words, outcome)
                return Verdict(words, final=True, over_budget=True)
            if outcome.result is Result.PAUSED:  # waits for the limit; no start used
                until = self.ctx.pauses.pause(self.profile, outcome.reset_at)
                self._said("paused", f"usage limit until {time.ctime(until)}", outcome)
                continue
            starts += 1
            if outcome.result is Result.DONE:
                self._said("approve", words, outcome)
                return Verdict(None, self._stamp("approve", words, outcome))
            if outcome.result is Result.ERROR:
                self._said("reject", words, outcome)
                return Verdict(f"the reviewer ({self.review.agent.name}) rejected the work: "
                               f"{words}")  # fmt: skip
            self._said("none", words, outcome)
        return Verdict(NO_VERDICT, final=True)

    def _wait_for_limit(self) -> bool:
        """Wait while the reviewer's profile is paused; False when the run was stopped."""
        while (until := self.ctx.pauses.until(self.profile)) is not None:
            if self.ctx.interrupt.event.wait(max(0.05, until - time.time())):
                return False
        return not self.ctx.interrupt.is_set()

    def _start(self, summary: str, shown: str, kind: str, start: int) -> Outcome:
        terminal_id = f"review-{self.task.id}-{self.attempt}-{secrets.token_hex(3)}"
        prompt_file = self.co.prompt_path(self.plan.plan_id, self.task.id, self.attempt)
        prompt_file = prompt_file.with_name(f"{self.task.id}.{self.attempt}.review.md")
        context: dict[str, object] = {
            "task": self.task, "project": self.where, "plan": self.plan,
            "terminal_id": terminal_id, "attempt": self.attempt, "summary": summary,
            "instructions": self.review.instructions, "changes": shown, "changes_kind": kind,
            "worker": self.task.agent.name,
        }  # fmt: skip
        atomic_write(prompt_file, render_template(self.co.root, TEMPLATE, context), durable=False)
        job = self._job(terminal_id, prompt_file, start)

        def announce(proc: Handle) -> None:
            atomic_write(self.pid_file, json.dumps(proc.ref) + "\n")
            self.ctx.bus.publish(TaskReviewing(self.plan.plan_id, self.task.id, self.attempt,
                                               self.review.agent.name, terminal_id,
                                               str(self.log), _pid(proc)))  # fmt: skip

        proc = self.ctx.executor.start(job, announce)
        ledger = self.ctx.ledger  # the reviewer's usage is the task's spend (DESIGN §15)
        meter = ledger.begin(self.plan.plan_id, self.task, proc)
        watch = Follow(proc, self.log, terminal_id, self.task.limits,
                       agents.adapter(self.review.agent), self.ctx.interrupt.event, _quiet,
                       meter=meter, verdicts=True)  # fmt: skip
        try:
            return follow(watch)
        finally:
            self.pid_file.unlink(missing_ok=True)
            if ledger.end(meter):
                spent = ledger.task_spend(self.plan.plan_id, self.task.id)
                self.ctx.bus.publish(TaskSpent(self.plan.plan_id, self.task.id, spent.as_json()))

    def _job(self, terminal_id: str, prompt_file: Path, start: int) -> Job:
        """The reviewer's process: like an attempt's, with the reviewer profile's logins."""
        spec, cwd = self.review.agent, self.where.root
        prompt = prompt_file.read_text(encoding="utf-8")
        launch = agents.Launch(
            prompt=prompt, prompt_file=prompt_file, terminal_id=terminal_id,
            task_id=self.task.id, plan_id=self.plan.plan_id, project=self.where.name,
            project_path=cwd, resume_session=None,
        )  # fmt: skip
        inv = agents.invocation(spec, launch)
        env = {
            "TERMINAL_ID": terminal_id, "ORCH_PLAN_ID": self.plan.plan_id,
            "ORCH_TASK_ID": self.task.id, "ORCH_PROJECT": self.where.name,
            "ORCH_ATTEMPT": str(self.attempt), "ORCH_PROMPT_FILE": str(prompt_file),
            "ORCH_REVIEW": str(start), **inv.env,
        }  # fmt: skip
        key, policy = f"{self.plan.plan_id}:{self.task.id}", self.task.environment
        # The task's sandbox, with the reviewer CLI's own state folders writable.
        box = sandboxing.box(self.ctx, self.plan, replace(self.task, agent=spec), cwd)
        logins = agents.logins(spec)
        if inv.prompt_mode != "stdin":
            return Job(inv.argv, cwd, env, self.log, key, keep_stdin=True, policy=policy,
                       logins=logins, sandbox=box)  # fmt: skip
        return Job(inv.argv, cwd, env, self.log, key, stdin=prompt.encode("utf-8"),
                   stdin_file=prompt_file, policy=policy, logins=logins, sandbox=box)  # fmt: skip

    def _said(self, verdict: str, text: str, outcome: Outcome) -> None:
        self.ctx.bus.publish(TaskReviewed(self.plan.plan_id, self.task.id, self.attempt,
                                         self.review.agent.name, verdict, text,
                                         dict(outcome.usage)))  # fmt: skip

    def _stamp(self, verdict: str, text: str, outcome: Outcome) -> dict[str, Any]:
        found: dict[str, Any] = {"agent": self.review.agent.name, "verdict": verdict,
                                 "summary": text}  # fmt: skip
        if outcome.usage:
            found["usage"] = dict(outcome.usage)
        return found


def _pid(proc: Handle) -> int:
    pid = proc.ref.get("pid")
    return pid if isinstance(pid, int) else 0


def _quiet(percent: int, text: str) -> None:
    """A reviewer's PROGRESS is not the task's progress."""


def take_baseline(
    co: Checkout, plan_id: str, task_id: str, attempt: int, root: Path
) -> changes.Baseline:
    """Note where an attempt of a reviewed task starts, on disk: a run that adopts the
    attempt after a crash still shows its reviewer the attempt's changes."""
    git_log = co.log_path(plan_id, task_id, attempt, "git.log")
    base = changes.baseline(root, git_log)
    path = co.log_path(plan_id, task_id, attempt, "review.base")
    atomic_write(path, json.dumps(base.to_json()) + "\n", durable=False)
    return base


def recovered_baseline(co: Checkout, plan_id: str, task_id: str, attempt: int) -> changes.Baseline:
    """The baseline `take_baseline` wrote for an attempt this run adopted (no snapshot)."""
    try:
        path = co.log_path(plan_id, task_id, attempt, "review.base")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return changes.Baseline.from_json(data if isinstance(data, dict) else {})
