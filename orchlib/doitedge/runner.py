"""The doit runner for plans: parallel across projects, one task at a time per project
(up to `parallel` for a project with `isolation: worktree`), and at most `maxParallel`
attempts of a capped agent.

doit's own parallel runners hand a ready task to a worker slot even when that task
would only wait for its project's terminal (or its agent's cap); this runner keeps such a
task aside and gives the slot to another ready task. It reuses doit's dispatcher (dependency order),
`select_task` (up-to-date checks) and result handling, so every doit option still works.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

from doit.runner import ERROR, FAILURE, Runner

from orchlib.doitedge.capacity import PhaseBarrier, Places, Wants
from orchlib.doitedge.doitapi import TaskError, TaskFailed, UnmetDependency
from orchlib.doitedge.limitwait import LimitWait, WaitFn
from orchlib.doitedge.loader import orch_meta
from orchlib.events import BudgetHeld
from orchlib.plan import TaskMeta
from orchlib.run import dispatch, taskrun
from orchlib.run.context import RunContext
from orchlib.run.ready import ReadyQueue, critical_ranks
from orchlib.run.taskrun import TaskResult, TaskRun
from orchlib.state import Status, TaskRecord

PAUSED = object()  # a worker's result for a task a usage limit or a budget holds


class PlanRunner(Runner):  # type: ignore[misc]
    """Runs doit's selected tasks with per-project exclusivity and `-n` slots.

    A task paused by a usage limit goes back among the ready tasks, its project kept for it
    (it stays first in its project's order) and its slot freed; no task of that profile
    starts until the limit resets. When nothing else can run, the run waits for the reset
    (`on_wait` shows a countdown), or with `wait_limits` False ends (`limits.gave_up`).
    """

    final_result: int  # doit's: SUCCESS, FAILURE or ERROR

    def __init__(self, *args: Any, slots: int, run: RunContext,
                 previous: dict[str, dict[str, TaskRecord]], wait_limits: bool = True,
                 on_wait: WaitFn | None = None) -> None:  # fmt: skip
        super().__init__(*args)
        checkout = run.co
        self.limits = LimitWait(run, wait_limits, on_wait)
        self.runs: dict[str, TaskRun] = {}
        self.places = Places(run, slots)
        self.co, self.ctx = checkout, run
        self.previous = previous
        self.results: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self.jobs: queue.Queue[Any] = queue.Queue()
        self.workers: list[threading.Thread] = []
        self.running: dict[str, Any] = {}
        self.budget_stops: set[str] = set()  # the spent budgets that held tasks back
        self.ready = ReadyQueue()
        self.barrier = PhaseBarrier(checkout)
        self.ranks: dict[tuple[str, str], float] = {}
        for plan in checkout.plans.values():
            self.ranks.update(((plan.plan_id, t), r) for t, r in critical_ranks(plan).items())

    def run_tasks(self, task_dispatcher: Any) -> None:
        """Pull ready tasks from doit's dispatcher; start those whose project is free."""
        try:
            self._schedule(task_dispatcher)
        finally:
            for _ in self.workers:
                self.jobs.put(None)

    def _schedule(self, task_dispatcher: Any) -> None:
        self.barrier.count(task_dispatcher)
        exhausted, completed = False, None
        while True:
            if not exhausted:
                exhausted = self._pull(task_dispatcher, completed)
                completed = None
            self._start()
            if self.ctx.pauses.holding():  # a limit holds an agent: its tasks show PAUSED
                self.limits.show(node for _, node in self.ready.heads(self.places.busy))
            if not self.running:
                if self.ready and not self._stopping() and not self._may_start():
                    if self._budget_held() or not self.limits.wait():  # nothing may start
                        break
                    continue
                if exhausted or not self.ready or self._stopping():
                    break
                self._start(force=True)
                continue
            completed = self._collect()

    def _handle_task_error(self, node: Any, base_fail: Any) -> None:
        """doit's handling; a task skipped for a failed dependency (a plan's own group task
        too) is a failure, exit 1, as the failure itself: doit would make it an error, 2,
        which is the code of a run stopped at a usage limit."""
        before = self.final_result
        super()._handle_task_error(node, base_fail)
        if isinstance(base_fail, UnmetDependency) and before != ERROR:
            self.final_result = FAILURE

    def _stopping(self) -> bool:
        return bool(self._stop_running or self.ctx.interrupt.is_set() or self.ctx.stopped)

    def finish(self) -> Any:
        """doit's finish; its DB failing to save (a full disk) is one line, not a traceback:
        the stamps already hold what is done."""
        try:
            self.dep_manager.close()
        except (sqlite3.Error, OSError) as exc:
            self.reporter.runtime_error(
                f"doit's DB .orch/doit.sqlite3 was not saved ({exc}); the stamps keep what is done"
            )
            self.final_result = ERROR
        self.teardown()
        self.reporter.complete_run()
        return self.final_result

    def _pull(self, dispatcher: Any, completed: Any) -> bool:
        """Take nodes from doit until it must wait; True once it has nothing more."""
        node = completed
        while True:
            if self._stopping():
                return True
            try:
                node = dispatcher.generator.send(node)
            except StopIteration:
                return True
            if node == "hold on":
                return False
            if not self.select_task(node, dispatcher.tasks):
                self.barrier.finished(node.task)
            elif orch_meta(node.task) is None:
                self.process_task_result(node, self.execute_task(node.task))
            else:
                meta = orch_meta(node.task)
                assert meta is not None
                self.ready.add(node, meta, self.ranks.get((meta.plan, meta.task), 0.0))
                node = None

    def _start(self, force: bool = False) -> None:
        """Start ready tasks while slots are free: per project the earliest in plan order.

        One pass starts at most one task per project; a project with room for more (an
        isolated one) gets another pass.
        """
        again = True
        while again and not self._stopping():
            again = False
            for node in self._candidates():
                if self.places.used() >= self.places.slots:
                    return
                meta = orch_meta(node.task)
                assert meta is not None
                if not force and not self.barrier.open(meta):
                    continue
                if self.places.busy.intersection(self.places.keys(node)):  # its cap filled
                    continue
                wants = self.places.wants(node, meta)
                if self.places.used() + wants[0] > self.places.slots:
                    return  # a race waits for its slots; nothing overtakes it
                if not self.places.fit(wants):
                    continue
                self._launch(node, meta, wants)
                force = False
                again = again or meta.root not in self.places.busy

    def _candidates(self) -> Iterator[Any]:
        """The first ready task of each free project, longest remaining path first.

        A task whose agent waits for a usage limit or its cap is no candidate (nor is its
        project's next). Lazy: a freed slot takes the first candidate that fits, so the
        checks run on as few heads as that needs, not on every project's at every start.
        """
        busy = self.places.busy
        for _, node in sorted(self.ready.heads(busy), key=lambda h: h[0]):
            if busy.intersection(self.places.keys(node)):
                continue
            if self.limits.held(node) is None and self._budget(node) is None:
                yield node

    def _may_start(self) -> bool:
        """Whether some ready task is a candidate now."""
        return next(self._candidates(), None) is not None

    def _budget(self, node: Any) -> str | None:
        """Why a spent project, plan or run budget holds this task (None: it may start)."""
        meta = orch_meta(node.task)
        assert meta is not None
        return self.ctx.ledger.held(meta.plan, self.co.plans[meta.plan].tasks[meta.task])

    def _budget_held(self) -> bool:
        """True when a spent budget holds every ready task: the run ends, they stay PENDING
        with the budget as their reason."""
        nodes = [node for _, node in self.ready.heads(set())]
        reasons = [(node, self._budget(node)) for node in nodes]
        if not nodes or any(why is None for _, why in reasons):
            return False
        for node, why in reasons:
            meta = orch_meta(node.task)
            assert meta is not None and why is not None
            self.ctx.bus.publish(BudgetHeld(meta.plan, meta.task, why))
            self.budget_stops.add(f"{meta.plan}: {why}")
        return True

    def _launch(self, node: Any, meta: TaskMeta, wants: Wants) -> None:
        self.ready.pop(meta.root)
        self.places.take(node.task.name, wants)
        self.running[node.task.name] = node
        if len(self.workers) < len(self.running):  # threads are kept: starting one is not free
            worker = threading.Thread(target=self._work, name=f"slot-{len(self.workers)}")
            worker.daemon = True
            worker.start()
            self.workers.append(worker)
        self.jobs.put(node)

    def _work(self) -> None:
        while (node := self.jobs.get()) is not None:
            try:
                fail = self.execute_task(node.task)
            except BaseException as exc:  # never lose a worker's result: the run would hang
                fail = TaskError(f"orchlib internal error: {exc!r}", exc)
            self.results.put((node, fail))

    def _collect(self) -> Any:
        """Wait for one running task to finish and record its result.

        None: no task finished (one paused, or a usage limit reset and a task may start).
        """
        while True:
            try:
                node, fail = self.results.get(timeout=self.limits.tick())
                break
            except queue.Empty:
                if self.places.used() < self.places.slots and self._may_start():
                    return None
        meta = orch_meta(node.task)
        assert meta is not None
        del self.running[node.task.name]
        self.places.release(node.task.name)
        if fail is PAUSED:
            self.ready.add(node, meta, self.ranks.get((meta.plan, meta.task), 0.0))
            return None
        self.process_task_result(node, fail)
        self.barrier.finished(node.task)
        return node

    def execute_task(self, task: Any) -> Any:
        """Run a plan task through the dispatcher (not doit's stdout-swapping PythonAction)."""
        meta = orch_meta(task)
        if meta is None:
            return super().execute_task(task)
        self.reporter.execute_task(task)
        run = self.runs.get(task.name)
        if run is None:  # a paused task continues with its own TaskRun (retries left)
            plan = self.co.plans[meta.plan]
            previous = self.previous.get(plan.plan_id, {}).get(meta.task)
            run = taskrun.start(self.ctx, plan, plan.tasks[meta.task], previous)
            self.runs[task.name] = run
        result = dispatch.run(run)
        if result.status is Status.PENDING:  # a spent budget holds it (DESIGN §15)
            self.budget_stops.add(f"{meta.plan}: {result.text}")
            return PAUSED
        return PAUSED if result.status is Status.PAUSED else task_failure(result)


def task_failure(result: TaskResult) -> TaskFailed | None:
    """doit's view of a task result: None for done, TaskFailed otherwise."""
    if result.status is Status.DONE:
        return None
    if result.status is Status.QUESTION:
        return TaskFailed(f"waiting for an answer: {result.text}")
    if result.status is Status.APPROVAL:
        return TaskFailed(f"waiting for approval: {result.text}")
    return TaskFailed(f"{'interrupted' if result.interrupted else 'failed'}: {result.text}")
