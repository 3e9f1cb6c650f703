"""What an attempt starts with: its process (a `Job` for the executor), its environment
(DESIGN §5) and its rendered prompt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from orchlib import agents
from orchlib.checkout import Checkout
from orchlib.executors.base import Job
from orchlib.plan import Plan, Project, Task
from orchlib.run import fallback, sandboxing
from orchlib.run.context import RunContext
from orchlib.run.prompt import DoneDependency, PromptInput, render
from orchlib.state import TaskRecord


class AttemptInputs:
    """The part of a task's run that builds each attempt's job and prompt."""

    ctx: RunContext
    co: Checkout
    plan: Plan
    task: Task
    project: Project
    workspace: Project
    previous: TaskRecord | None
    _paused_session: str | None
    _handover: fallback.Handover | None

    def _job(self, terminal_id: str, number: int, prompt_file: Path, log: Path) -> Job:
        """The attempt's process, in the task's sandbox if it has one."""
        job = self._bare_job(terminal_id, number, prompt_file, log)
        return replace(job, sandbox=sandboxing.box(self.ctx, self.plan, self.task, job.cwd))

    def _bare_job(self, terminal_id: str, number: int, prompt_file: Path, log: Path) -> Job:
        """The attempt's process: the shell command, or the agent CLI with its prompt."""
        env = self._orch_env(terminal_id, number, prompt_file)
        key, cwd = f"{self.plan.plan_id}:{self.task.id}", self.workspace.root
        policy = self.task.environment
        if self.task.command is not None:  # the shell gets its `env` too, no login variable
            env = {**self.task.agent.env, **env}
            return Job(self.task.command, cwd, env, log, key, exit_file=log.with_suffix(".exit"),
                       policy=policy, logins=agents.logins(None))  # fmt: skip
        launch = agents.Launch(
            prompt=prompt_file.read_text(encoding="utf-8"), prompt_file=prompt_file,
            terminal_id=terminal_id, task_id=self.task.id, plan_id=self.plan.plan_id,
            project=self.project.name, project_path=self.workspace.root,
            resume_session=self._resume_session(),
        )  # fmt: skip
        inv = agents.invocation(self.task.agent, launch)
        env.update(inv.env)
        logins = agents.logins(self.task.agent)
        if inv.prompt_mode != "stdin":
            return Job(inv.argv, cwd, env, log, key, keep_stdin=True, policy=policy,
                       logins=logins)  # fmt: skip
        return Job(inv.argv, cwd, env, log, key, stdin=launch.prompt.encode("utf-8"),
                   stdin_file=prompt_file, policy=policy, logins=logins)  # fmt: skip

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
            if stamp and stamp.session_id and stamp.agent == self.task.agent.name:
                key = (stamp.finished_at, stamp.session_id)
                best = max(best, key) if best else key
        return best[1] if best else None

    def _prompt(self, terminal_id: str, number: int, feedback: str) -> str:
        deps = []
        for dep_id in self.task.depends_on:
            dep, stamp = self.plan.tasks[dep_id], self.co.stamp(self.plan.plan_id, dep_id)
            summary = stamp.summary if stamp else ""
            deps.append(DoneDependency(dep.id, dep.title, dep.project, summary))
        given = PromptInput(terminal_id, number, deps, answered_questions(self.previous), feedback)
        text = render(self.co.root, self.plan, self.task, given, self.workspace)
        # Outside the template, so a plan without fallback agents keeps its spec hash.
        handed = self._handover
        if handed is not None and handed.agent != self.task.agent.name:
            text += fallback.section(handed, self.task.agent.name)
        return text


def answered_questions(record: TaskRecord | None) -> list[tuple[str, str]]:
    """Every earlier question of the task with its answer, for the next prompt."""
    if record is None:
        return []
    return [(str(q["question"]), str(q["answer"])) for q in record.questions if q.get("answer")]
