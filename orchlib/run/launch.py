"""An attempt of a task: what it starts with (its process as a `Job` for the executor, its
environment (DESIGN §5), its rendered prompt), its start, and following it to its outcome;
or adopting the attempt a killed run left."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from orchlib import agents
from orchlib.agents.streams import PlainText
from orchlib.events import TaskProgress, TaskSpent, TaskStarted
from orchlib.executors.base import Handle, Job
from orchlib.fsutil import atomic_write, ensure_dir
from orchlib.plan import Task
from orchlib.records import replace
from orchlib.run import adopt as adoption
from orchlib.run import fallback, sandboxing
from orchlib.run.attempt import Follow, Outcome, Result, follow
from orchlib.run.pauses import profile_of
from orchlib.run.spend import Meter
from orchlib.run.taskrun import Attempted, TaskRun
from orchlib.state import TaskRecord


def use(tr: TaskRun, task: Task) -> None:
    """Run the next attempt with `task`'s agent; another agent starts a fresh session."""
    if task.agent != tr.task.agent:
        tr.paused_session = None
    tr.task, tr.profile = task, profile_of(task)


def adopt(tr: TaskRun) -> Attempted | None:
    """Take over an attempt a killed orchestrator left: follow it, or read its log."""
    prev, found = tr.previous, adoption.leftover(tr.ctx.executor, tr.previous)
    if prev is None or found is None:
        return None
    if tr.task.race:  # a race is run again, not adopted racer by racer (DESIGN §16)
        found.handle.terminate()
        return None
    proc, log, ago = found.handle, found.log, found.started_ago
    use(tr, fallback.named(tr.plan_task, prev.agent))
    tr.publish(_started(tr, prev.attempt, prev.terminal_id, proc, log, prev.prompt_file, True))
    started = time.monotonic() - ago
    meter = tr.ctx.ledger.begin(tr.plan.plan_id, tr.plan_task, proc)
    outcome = _follow(tr, proc, log, prev.terminal_id, ago, found.quiet_for, meter)
    return Attempted(prev.attempt, prev.terminal_id, outcome, started, proc.host)


def attempt(tr: TaskRun, number: int, feedback: str) -> Attempted:
    """Start attempt `number` (its worktree, prompt and process) and follow it to its end."""
    tr.last_number = number  # a failed write below is still this attempt's
    pid, task = tr.plan.plan_id, tr.task
    terminal_id = f"term-{task.id}-{number}-{secrets.token_hex(3)}"
    began = [time.monotonic()]  # from the process's start: not the time queued for a slot
    if tr.tree is not None:  # its kept worktree, or a fresh one from the project's HEAD
        problem = tr.tree.prepare(number, keep=tr.continues)
        if problem is not None:
            return Attempted(number, terminal_id, Outcome(Result.ERROR, problem), began[0])
    if task.review is not None:  # what its reviewer is shown as the changes
        from orchlib.run.review import take_baseline  # only reviewed tasks pay for it

        tr.bases[number] = take_baseline(tr.co, pid, task.id, number, tr.workspace.root)
    prompt_file = tr.co.prompt_path(pid, task.id, number)
    if task.command is None:  # a shell task has no prompt; a lost prompt is re-rendered
        atomic_write(prompt_file, prompt(tr, terminal_id, number, feedback), durable=False)
    log = tr.co.log_path(pid, task.id, number)
    job = _job(tr, terminal_id, number, prompt_file, log)
    ensure_dir(tr.workspace.root)

    def announce(proc: Handle) -> None:
        began[0] = time.monotonic()  # the process exists (on its dask worker: runs there)
        shown = str(prompt_file) if task.command is None else ""
        tr.publish(_started(tr, number, terminal_id, proc, log, shown, False))
        tr.ctx.bus.sync()  # pid and log are in state.json before the agent may print

    proc = tr.ctx.executor.start(job, announce)
    meter = tr.ctx.ledger.begin(pid, tr.plan_task, proc)
    outcome = _follow(tr, proc, log, terminal_id, meter=meter)
    return Attempted(number, terminal_id, outcome, began[0], proc.host)


def _started(tr: TaskRun, number: int, terminal_id: str, proc: Handle, log: Path,
             prompt_file: str | None, adopted: bool) -> TaskStarted:  # fmt: skip
    return TaskStarted(
        tr.plan.plan_id, tr.task.id, number, terminal_id, proc.ref, proc.host,
        str(log), prompt_file or "", adopted=adopted, agent=tr.task.agent.name,
    )  # fmt: skip


def _follow(
    tr: TaskRun, proc: Handle, log: Path, terminal_id: str, ago: float = 0.0, quiet: float = 0.0,
    meter: Meter | None = None,
) -> Outcome:  # fmt: skip
    task, ledger = tr.task, tr.ctx.ledger
    shell = task.command is not None
    adapter = PlainText() if shell else agents.adapter(task.agent)

    def progress(percent: int, text: str) -> None:
        tr.publish(TaskProgress(tr.plan.plan_id, task.id, percent, text))

    watch = Follow(proc, log, terminal_id, task.limits, adapter, tr.ctx.interrupt.event,
                   progress, shell, ago, quiet, meter)  # fmt: skip
    try:
        outcome = follow(watch)
    finally:
        if meter is not None and ledger.end(meter):  # it reported usage
            spent = ledger.task_spend(tr.plan.plan_id, task.id)
            tr.publish(TaskSpent(tr.plan.plan_id, task.id, spent.as_json()))
    # Where an agent's words enter orchlib's records: the stamp, the next prompt, events.
    clean = tr.co.secrets.redact
    return replace(outcome, text=clean(outcome.text), denied=tuple(map(clean, outcome.denied)))


def _job(tr: TaskRun, terminal_id: str, number: int, prompt_file: Path, log: Path) -> Job:
    """The attempt's process, in the task's sandbox if it has one."""
    job = _bare_job(tr, terminal_id, number, prompt_file, log)
    return replace(job, sandbox=sandboxing.box(tr.ctx, tr.plan, tr.task, job.cwd))


def _bare_job(tr: TaskRun, terminal_id: str, number: int, prompt_file: Path, log: Path) -> Job:
    """The attempt's process: the shell command, or the agent CLI with its prompt."""
    task = tr.task
    env = _orch_env(tr, terminal_id, number, prompt_file)
    key, cwd = f"{tr.plan.plan_id}:{task.id}", tr.workspace.root
    policy = task.environment
    if task.command is not None:  # the shell gets its `env` too, no login variable
        env = {**task.agent.env, **env}
        return Job(task.command, cwd, env, log, key, exit_file=log.with_suffix(".exit"),
                   policy=policy, logins=agents.logins(None))  # fmt: skip
    launch = agents.Launch(
        prompt=prompt_file.read_text(encoding="utf-8"), prompt_file=prompt_file,
        terminal_id=terminal_id, task_id=task.id, plan_id=tr.plan.plan_id,
        project=tr.project.name, project_path=tr.workspace.root,
        resume_session=_resume_session(tr),
    )  # fmt: skip
    inv = agents.invocation(task.agent, launch)
    env.update(inv.env)
    logins = agents.logins(task.agent)
    if inv.prompt_mode != "stdin":
        return Job(inv.argv, cwd, env, log, key, keep_stdin=True, policy=policy,
                   logins=logins)  # fmt: skip
    return Job(inv.argv, cwd, env, log, key, stdin=launch.prompt.encode("utf-8"),
               stdin_file=prompt_file, policy=policy, logins=logins)  # fmt: skip


def _orch_env(tr: TaskRun, terminal_id: str, number: int, prompt_file: Path) -> dict[str, str]:
    return {
        "TERMINAL_ID": terminal_id,
        "ORCH_PLAN_ID": tr.plan.plan_id,
        "ORCH_TASK_ID": tr.task.id,
        "ORCH_PROJECT": tr.project.name,
        "ORCH_ATTEMPT": str(number),
        "ORCH_PROMPT_FILE": str(prompt_file) if tr.task.command is None else "",
    }


def _resume_session(tr: TaskRun) -> str | None:
    """The session of the latest finished task of this project, for `session: continue`."""
    task = tr.task
    if task.agent.session != "continue":
        return None
    if tr.paused_session:  # a usage limit stopped it: continue that very session
        return tr.paused_session
    best: tuple[str, str] | None = None
    for other in tr.plan.tasks.values():
        if other.project != task.project or other.id == task.id:
            continue
        stamp = tr.co.stamp(tr.plan.plan_id, other.id)
        if stamp and stamp.session_id and stamp.agent == task.agent.name:
            key = (stamp.finished_at, stamp.session_id)
            best = max(best, key) if best else key
    return best[1] if best else None


def prompt(tr: TaskRun, terminal_id: str, number: int, feedback: str) -> str:
    """The attempt's prompt: the template's, then a fallback agent's handover."""
    from orchlib.run.prompt import DoneDependency, PromptInput, render  # a shell task has none

    deps = []
    for dep_id in tr.task.depends_on:
        dep, stamp = tr.plan.tasks[dep_id], tr.co.stamp(tr.plan.plan_id, dep_id)
        summary = stamp.summary if stamp else ""
        deps.append(DoneDependency(dep.id, dep.title, dep.project, summary))
    given = PromptInput(terminal_id, number, deps, answered_questions(tr.previous), feedback)
    text = render(tr.co.root, tr.plan, tr.task, given, tr.workspace)
    # Outside the template, so a plan without fallback agents keeps its spec hash.
    handed = tr.handover
    if handed is not None and handed.agent != tr.task.agent.name:
        text += fallback.section(handed, tr.task.agent.name)
    return text


def answered_questions(record: TaskRecord | None) -> list[tuple[str, str]]:
    """Every earlier question of the task with its answer, for the next prompt."""
    if record is None:
        return []
    return [(str(q["question"]), str(q["answer"])) for q in record.questions if q.get("answer")]
