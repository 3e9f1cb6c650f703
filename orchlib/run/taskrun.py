"""What one task's run holds across its attempts, and how it ends: the record the functions
of `dispatch` (attempts, retries), `launch` (an attempt's inputs and process) and `finish`
(checks, the stamp) work on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchlib.checkout import Checkout
from orchlib.events import Event
from orchlib.plan import Plan, Project, Task
from orchlib.run import fallback
from orchlib.run.attempt import Outcome
from orchlib.run.context import RunContext
from orchlib.run.pauses import profile_of
from orchlib.run.worktrees import TaskTree
from orchlib.state import TaskRecord
from orchlib.state.model import Status

if TYPE_CHECKING:  # a reviewed task's only: `changes` loads with the reviewer
    from orchlib.run.changes import Baseline


@dataclass(frozen=True)
class TaskResult:
    """How a task ended in this run: DONE, ERROR (`interrupted` when the run was stopped),
    QUESTION (waiting for an answer) or APPROVAL (waiting for a person's approval).

    PAUSED: not ended; its agent's usage limit holds it, and `run` continues it later.
    """

    status: Status
    text: str
    interrupted: bool = False


@dataclass(frozen=True)
class Attempted:
    """A finished attempt: its number, terminal id, outcome and when its process started
    (monotonic; not when it was queued)."""

    number: int
    terminal_id: str
    outcome: Outcome
    started: float
    host: str = ""  # where it ran ("local", or a dask worker): its verify runs there too


@dataclass(eq=False)  # one task's run is itself, not equal to a copy
class TaskRun:
    """One task in one run. `previous` is its state record from before this run began.

    A usage limit pauses the task: `dispatch.run` returns PAUSED, and a later call continues
    it with the retries and feedback it had (the runner keeps this record for that). A
    racer of a race is a copy of it (`records.replace`) with its own agent and worktree.
    """

    ctx: RunContext
    plan: Plan
    plan_task: Task  # the task as the plan gives it
    task: Task  # the task as the current attempt runs it (its agent)
    previous: TaskRecord | None
    project: Project
    tree: TaskTree | None  # isolated: the task's own worktree
    workspace: Project  # where attempts work: the project folder, or the worktree
    profile: str | None  # the current agent's usage-limit profile
    last_number: int = 0
    left: int | None = None  # attempts left; None until the first call of `run`
    feedback: str = ""  # for the next attempt: a failed check's, or a person's `doit reject`
    paused_session: str | None = None  # the session a paused attempt had
    handover: fallback.Handover | None = None  # where a fallback agent takes over from
    losses: int = 0  # attempts whose worker died under them (DESIGN §8)
    continues: bool = False  # the next attempt continues in the kept worktree (§10)
    worked: float = 0.0  # running time of its attempts so far (DESIGN §15)
    bases: dict[int, Baseline] = field(default_factory=dict)  # reviewed attempts' starts
    raced: dict[str, object] = field(default_factory=dict)  # a race's winner, for the stamp
    lands: bool = True  # False for a racer: the race merges its winner only (§16)

    @property
    def co(self) -> Checkout:
        """The checkout the run works on."""
        return self.ctx.co

    def publish(self, event: Event) -> None:
        """An event of this task on the run's bus."""
        self.ctx.bus.publish(event)


def start(ctx: RunContext, plan: Plan, task: Task, previous: TaskRecord | None) -> TaskRun:
    """The run of `task` about to begin, continuing what `previous` left."""
    project = plan.projects[task.project]
    tree = TaskTree(ctx.co, plan, task, ctx.repos) if project.isolation else None
    # A done task done again starts its running time at 0.
    counted = previous is not None and previous.status is not Status.DONE
    return TaskRun(
        ctx, plan, task, task, previous, project, tree,
        workspace=project if tree is None else tree.workspace,
        profile=profile_of(task),
        last_number=previous.attempt if previous is not None else 0,
        feedback=rejection(previous.rejected) if previous and previous.rejected else "",
        # A task that waited keeps its worktree: its next attempt continues there (§10).
        continues=previous is not None and bool(previous.continues_in),
        worked=previous.worked if previous is not None and counted else 0.0,
    )  # fmt: skip


def rejection(text: str) -> str:
    """The feedback of a person's `doit reject` (DESIGN §16)."""
    return f"A person reviewed the work and rejected it (doit reject): {text}"
