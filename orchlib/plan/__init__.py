"""The plan model: typed, validated, immutable records built from a plan file.

Loading and validation (`load_plan`) live in `plan/file.py`; this module only holds the
records every other module shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from orchlib.plan.environment import EnvPolicy

PROMPT_MODES = ("stdin", "file", "arg")
SESSION_MODES = ("fresh", "continue")
SCHEDULES = ("dag", "phases")
ISOLATIONS = ("worktree",)
DEFAULT_PARALLEL = 2  # with `isolation: worktree` and no `parallel`


def project_root(checkout: Path, folder: str) -> Path:
    """The absolute, resolved folder of a project path (relative to the checkout)."""
    return (checkout / Path(folder).expanduser()).resolve()


@dataclass(frozen=True)
class AgentSpec:
    """How to run an agent: a built-in profile (maybe extended) or a custom command.

    `profile` is a built-in profile name (`claude`, `codex`, `gemini`, `aider`, `opencode`,
    `shell`) or None for a custom `command`. `name` is what users see in messages: the
    profile name, the key in the plan's `agents`, or the custom command's program.
    `prompt` None means the profile's own default delivery.
    """

    name: str
    profile: str | None = None
    command: tuple[str, ...] = ()
    prompt: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    session: str = "fresh"
    max_parallel: int = 0  # `maxParallel`: attempts of this agent at once in a run; 0: no cap


@dataclass(frozen=True)
class Budget:
    """`budget: {usd, tokens}` of a task, project or plan: a cap on its own total spend
    (DESIGN §15); None: no cap of that kind. Not inherited, not in the spec hash."""

    usd: float | None = None
    tokens: int | None = None

    def __bool__(self) -> bool:
        return self.usd is not None or self.tokens is not None


@dataclass(frozen=True)
class Limits:
    """Retry and time limits of a task (seconds; None = no limit)."""

    retries: int = 1
    timeout: float | None = None
    stall_timeout: float | None = 600.0
    exit_grace: float = 30.0
    retry_on_error: bool = False
    approve: bool = False  # a person approves the checked work before it counts (§16)


@dataclass(frozen=True)
class Review:
    """`review:` (DESIGN §16): the agent that reviews a checked DONE, and what it is told."""

    agent: AgentSpec
    instructions: str = ""


@dataclass(frozen=True)
class Project:
    """A software project: a folder where its tasks run, one at a time.

    With `isolation == "worktree"` up to `parallel` of its tasks run at once, each in its
    own git worktree, merged into the project's branch when done (DESIGN §10).
    """

    name: str
    path: str
    root: Path
    tech_stack: str = ""
    description: str = ""
    context: str = ""
    isolation: str = ""
    parallel: int = 1
    budget: Budget = field(default_factory=Budget)


@dataclass(frozen=True)
class Task:
    """One unit of work for one agent (or one shell command) in one project.

    `command` and `verify` are argv tuples: a plan string `s` becomes ("sh", "-c", s),
    so plan text is only ever an argument, never spliced into a shell string.
    """

    id: str
    project: str
    title: str
    description: str = ""
    depends_on: tuple[str, ...] = ()
    complexity: str = ""
    estimated_minutes: float | None = None
    agent: AgentSpec = field(default_factory=lambda: AgentSpec(name="shell", profile="shell"))
    command: tuple[str, ...] | None = None
    verify: tuple[str, ...] | None = None
    outputs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    index: int = 0
    environment: EnvPolicy = field(default_factory=EnvPolicy)  # not in the spec hash
    sandbox: str = ""  # `sandbox` of the task, its project or the plan's defaults ("": unset)
    # A fallback list as written (`agent: [claude, codex]`; `agent` is its first); () for one.
    agents: tuple[AgentSpec, ...] = ()
    budget: Budget = field(default_factory=Budget)  # not in the spec hash
    review: Review | None = None  # `review` of the task, its project or the plan's defaults
    # `race` (DESIGN §16): the agents of the racers, one each (N copies for `race: N`); ()
    # without a race. How it runs, not what it delivers: not in the spec hash.
    race: tuple[AgentSpec, ...] = ()


@dataclass(frozen=True)
class NotifyTarget:
    """A notification target: a command argv (with placeholders) or an apprise URL."""

    command: tuple[str, ...] = ()
    url: str = ""
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """A validated plan: `tasks` in plan order, `phases` the executionOrder (given or computed)."""

    plan_id: str
    source: Path
    summary: str = ""
    created_at: str = ""
    projects: Mapping[str, Project] = field(default_factory=dict)
    tasks: Mapping[str, Task] = field(default_factory=dict)
    phases: tuple[tuple[str, ...], ...] = ()
    schedule: str = "dag"
    context: str = ""
    notify: tuple[NotifyTarget, ...] = ()
    allow_outside_paths: bool = False
    executor: str = ""  # `defaults.executor`: where agents run unless the run says otherwise
    sandbox_writable: tuple[Path, ...] = ()  # `sandboxWritable`, resolved (DESIGN §14)
    budget: Budget = field(default_factory=Budget)
    digest: str = field(default="", compare=False)  # the plan file's content hash

    def phase_of(self, task_id: str) -> int:
        """The 1-based executionOrder phase of a task."""
        return self._phase_numbers[task_id]

    def dependents(self, task_id: str) -> list[str]:
        """Tasks that list `task_id` in their dependsOn, in plan order."""
        return self._dependents.get(task_id, [])

    @cached_property
    def _phase_numbers(self) -> dict[str, int]:
        return {t: n for n, phase in enumerate(self.phases, start=1) for t in phase}

    @cached_property
    def _dependents(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for task in self.tasks.values():
            for dep in task.depends_on:
                found.setdefault(dep, []).append(task.id)
        return found


@dataclass(frozen=True)
class TaskMeta:
    """A plan task as its doit task carries it (doit's `meta`): which plan and task, the
    project folder it runs in, its phase and its place in executionOrder."""

    plan: str
    task: str
    root: str
    phase: int
    index: int
