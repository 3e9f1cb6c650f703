"""A race (DESIGN §16): N attempts of a task at once, each in its own worktree; the first
whose DONE passes its checks (and review) is merged, the others are stopped and removed.

Each racer is the task's own run, copied: its attempt, checks and review are exactly an
attempt's (`launch.attempt`, `finish.check`), with the racer's agent, worktree
(`.orch/worktrees/<planId>/<taskId>+<k>`, branch `orch/<planId>/<taskId>+<k>`), attempt
number and terminal id, and a stop switch of the race's own that the run's Ctrl-C sets too.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from orchlib.executors.base import Executor, Handle, Job
from orchlib.fsutil import atomic_write
from orchlib.plan import AgentSpec
from orchlib.records import replace
from orchlib.run import racewin
from orchlib.run.attempt import Outcome, Result
from orchlib.run.checks import Checked, stop_leftover
from orchlib.run.context import Interrupt, RunContext
from orchlib.run.finish import check, count_work
from orchlib.run.launch import attempt
from orchlib.run.pauses import profile_of
from orchlib.run.taskrun import Attempted, TaskRun
from orchlib.run.worktrees import TaskTree

RACER_NOTE = ".racer"  # `<log>.racer` holds the ref of a racer's process while it runs


@dataclass(frozen=True)
class Racer:
    """One racer's end: its index, agent, run (a copy of the task's), attempt and checks."""

    index: int
    agent: AgentSpec
    run: TaskRun
    done: Attempted
    checked: Checked | None

    @property
    def passed(self) -> bool:
        return self.checked is not None and self.checked.problem is None

    def reason(self) -> str:
        """Why this racer lost, in a few words."""
        if self.checked is not None and self.checked.problem is not None:
            return f"DONE, but {self.checked.problem}"
        return self.done.outcome.text


def race(task_run: TaskRun, numbers: list[int], feedback: str) -> tuple[Attempted, Checked | None]:
    """Run the racers of `task_run` (one attempt number each); the winner landed, or one
    failed attempt standing for them all."""
    base = task_run.ctx
    racewin.forget(task_run)  # a killed run's winner that never merged: this race replaces it
    stop = Interrupt()
    logs = base.co.layout.logs(task_run.plan.plan_id)
    stop_leftovers(base.executor, logs, task_run.task.id)  # a killed run's racers
    started = _Started(base.executor)
    race_ctx = replace(base, interrupt=stop, executor=started.executor())
    ended: queue.Queue[Racer] = queue.Queue()
    agents = task_run.task.race
    threads = []
    for k, (agent, number) in enumerate(zip(agents, numbers, strict=True), start=1):

        def go(k: int = k, agent: AgentSpec = agent, number: int = number) -> None:
            ended.put(_racer(task_run, race_ctx, k, agent, number, feedback))

        threads.append(threading.Thread(target=go, name=f"racer-{k}", daemon=True))
    for thread in threads:
        thread.start()
    finished: list[Racer] = []
    winner: Racer | None = None
    while len(finished) < len(threads):
        try:
            racer = ended.get(timeout=0.1)
        except queue.Empty:
            if base.interrupt.is_set() and not stop.is_set():
                stop.trigger(base.interrupt.signal_name or "SIGINT")
                started.terminate()
            continue
        finished.append(racer)
        _note_limit(base, racer)
        if winner is None and racer.passed and not base.interrupt.is_set():
            winner = racer
            stop.trigger("race won")  # the others stop now: their agents, verify, reviewer
            started.terminate()
    started.forget()
    for racer in finished:
        if racer is not winner:
            _tree(racer).remove(racer.done.number)
    standing = winner or max(finished, key=lambda r: r.done.number)
    _count_others(task_run, finished, standing)
    if winner is not None:
        return _land(task_run, winner, len(threads))
    return _all_failed(base, finished), None


def _note_limit(ctx: RunContext, racer: Racer) -> None:
    """A racer stopped by its CLI's usage limit lost the race, but the limit is its
    profile's (DESIGN §11): the run's other tasks of that profile wait for the reset."""
    outcome = racer.done.outcome
    if outcome.result is Result.PAUSED and racer.run.profile:
        ctx.pauses.pause(racer.run.profile, outcome.reset_at)


def _count_others(task_run: TaskRun, finished: list[Racer], standing: Racer) -> None:
    """Every racer's running time is the task's work (DESIGN §15), each with its own
    `AttemptRan`; the one standing for the race is counted as the task's attempt."""
    for racer in finished:
        if racer is not standing:
            before = racer.run.worked
            count_work(racer.run, racer.done)
            task_run.worked += racer.run.worked - before


class _Started:
    """The run's executor, noting every process the racers start (agents, verify, reviewer),
    so that a won race stops the others at once: their follow waits on the run's wake-up,
    which a race does not trigger."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.handles: list[Handle] = []
        self.notes: list[Path] = []  # `<log>.racer`: each process's ref, for a run after a crash
        self.lock = threading.Lock()
        self.stopped = False

    def executor(self) -> Executor:
        started = self

        class Noting:
            def start(self, job: Job, before_start: Callable[[Handle], None]) -> Handle:
                note = job.log.with_name(job.log.name + RACER_NOTE)

                def noted(handle: Handle) -> None:
                    atomic_write(note, json.dumps(handle.ref) + "\n")
                    before_start(handle)

                handle = started.inner.start(job, noted)
                with started.lock:
                    started.handles.append(handle)
                    started.notes.append(note)
                    late = started.stopped
                if late:  # started as the race ended: stopped at once
                    handle.terminate(grace=1.0)
                return handle

            def __getattr__(self, name: str) -> Any:
                return getattr(started.inner, name)

        return cast(Executor, Noting())

    def forget(self) -> None:
        """The race is over and its processes ended: no note is needed any more."""
        for note in self.notes:
            note.unlink(missing_ok=True)

    def terminate(self) -> None:
        """Stop every process the racers started (the ended ones are left alone)."""
        with self.lock:
            self.stopped = True
            handles = list(self.handles)
        for handle in handles:
            if handle.poll() is None:
                handle.terminate(grace=1.0)


def stop_leftovers(executor: Executor, logs: Path, task_id: str) -> None:
    """Stop the racers (agents, verify, reviewers) of `task_id` a killed run left running."""
    pattern = re.compile(re.escape(task_id) + r"\.[0-9]+\..*" + re.escape(RACER_NOTE))
    with contextlib.suppress(OSError):
        for entry in os.scandir(logs):
            if pattern.fullmatch(entry.name):
                stop_leftover(executor, Path(entry.path))


def _racer(task_run: TaskRun, race_ctx: RunContext, index: int, agent: AgentSpec, number: int,
           feedback: str) -> Racer:  # fmt: skip
    """One racer: the task's run, copied onto its agent, worktree and stop switch."""
    task = replace(task_run.task, agent=agent, race=())
    tree = TaskTree(task_run.co, task_run.plan, task, race_ctx.repos, index)
    run = replace(task_run, ctx=race_ctx, task=task, profile=profile_of(task), tree=tree,
                  workspace=tree.workspace, continues=False, paused_session=None, bases={},
                  lands=False)  # fmt: skip
    done = attempt(run, number, feedback)
    checked = check(run, done) if done.outcome.result is Result.DONE else None
    if checked is not None and race_ctx.interrupt.is_set() and checked.problem is None:
        checked = replace(checked, problem="stopped: another racer won")
    return Racer(index, agent, run, done, checked)


def _tree(racer: Racer) -> TaskTree:
    tree = racer.run.tree
    assert tree is not None
    return tree


def _land(task_run: TaskRun, winner: Racer, racers: int) -> tuple[Attempted, Checked | None]:
    """Merge the winner's branch; the stamp records who won among how many.

    The winner is written down first, so that a run killed after the merge stamps it
    rather than racing again (`racewin`); its worktree goes after the stamp, as a plain
    isolated task's does.
    """
    done, checked = winner.done, winner.checked
    assert checked is not None
    task_run.raced = {"winner": winner.agent.name, "racers": racers}
    if task_run.task.limits.approve:  # refused by the plan check; never merged unasked
        return done, checked
    tree = _tree(winner)
    outcome = done.outcome
    racewin.record(task_run, racewin.Won(
        winner.index, racers, winner.agent.name, tree.branch, racewin.spec_hash(task_run),
        done.number, done.terminal_id, outcome.text, outcome.session_id, outcome.usage,
        checked.verify, checked.review))  # fmt: skip
    landed = tree.land(done.number, outcome.text)
    if landed.problem is None:
        task_run.tree = tree  # removed once the stamp is written
    else:
        racewin.forget(task_run)
    return done, replace(checked, problem=landed.problem, merge=landed.merge)


def _all_failed(ctx: RunContext, finished: list[Racer]) -> Attempted:
    """Every racer failed: one failed attempt (the retry races again), or the run's stop;
    it stands under the last racer's number."""
    last = max(finished, key=lambda r: r.done.number)
    ordered = sorted(finished, key=lambda r: r.index)
    reasons = "; ".join(f"racer {r.index} ({r.agent.name}): {r.reason()}" for r in ordered)
    result = Result.INTERRUPTED if ctx.interrupt.is_set() else Result.CLOSED
    outcome = Outcome(result, f"every racer failed: {reasons}")
    return Attempted(last.done.number, last.done.terminal_id, outcome, last.done.started)
