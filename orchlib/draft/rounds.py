"""The drafting loop: dispatch, read the plan, validate, feed the errors back, write it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from orchlib.draft import dispatch, prompting, review, store, validate, yamlout
from orchlib.draft.request import DraftAgent, DraftRequest, read_goal, resolve_agent
from orchlib.draft.store import DraftFiles, DraftState
from orchlib.errors import ConfigError
from orchlib.fsutil import atomic_write
from orchlib.plan import Plan
from orchlib.run.attempt import Outcome, Result
from orchlib.run.context import Interrupt
from orchlib.textsafe import escaped_line

SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
Ask = Callable[[str], str | None]  # the question -> the answer, None without a terminal
Say = Callable[[str], None]


@dataclass(frozen=True)
class DraftResult:
    """How `doit draft` ended: exit code, lines for stderr, the review for stdout."""

    code: int
    errors: list[str] = field(default_factory=list)
    review: str = ""


class Drafting:
    """One `doit draft` call: a new draft, or an answered one continued."""

    def __init__(self, checkout: Path, request: DraftRequest, ask: Ask, say: Say) -> None:
        self.root, self.request, self.ask, self.say = checkout, request, ask, say
        self.stop = Interrupt()
        self.state = self._state()
        self.agent: DraftAgent = resolve_agent(self.state.agent)
        self.state.agent = self.state.agent or self.agent.spec.name
        self.files = DraftFiles(checkout, self.state.draft_id)
        self.plan: Plan | None = None  # the last valid draft
        self.crashed = ""  # how the agent's CLI ended without a plan in the round before

    def _state(self) -> DraftState:
        req = self.request
        if req.answer is not None:
            return self._answered(req)
        goal = read_goal(req.goal, req.source, self.root)
        agent = req.agent or resolve_agent("").spec.name
        resolve_agent(agent)  # an unusable agent fails before an old draft is cleared
        draft_id = store.draft_id_for(goal, req.plan_id, req.source)
        DraftFiles(self.root, draft_id).reset()
        return DraftState(draft_id, goal, agent, req.source, req.plan_id, req.rounds or 3)

    def _answered(self, req: DraftRequest) -> DraftState:
        state = store.waiting(self.root, req.plan_id)
        if state is None:
            raise ConfigError(
                'orchlib: no draft waits for an answer; start one with doit draft "goal"'
            )
        repeated = req.goal.strip() or req.source
        if repeated and read_goal(req.goal, req.source, self.root) != state.goal:
            raise ConfigError(  # repeating the goal is fine; a new one needs a new draft
                f"orchlib: the draft waiting for an answer ({state.draft_id}) has another goal; "
                "drop --answer to start a new draft"
            )
        state.questions[-1]["answer"] = req.answer or ""
        state.agent = req.agent or state.agent
        state.rounds = req.rounds or state.rounds
        return state

    def run(self) -> DraftResult:
        """Rounds until a valid plan is written, a question waits, or the rounds run out."""
        refused = self._refused(self.state.plan_id)
        if refused is not None:
            return refused
        with self.stop.on_signals():
            while self.state.failed < self.state.rounds:
                result = self._round()
                if result is not None:
                    return result
        self._save("failed")
        return DraftResult(
            3,
            [
                *self.state.errors,
                escaped_line(
                    f"orchlib: no valid plan after {_rounds(self.state.rounds)}; {self._kept()}"
                ),
            ],
        )

    def _kept(self) -> str:
        """Where the last draft is, or where to look when the agent wrote none."""
        if self.files.plan.is_file():
            last = self.files.relative(self.files.plan)
            return (
                f"the last draft is kept in {last} (fix it and copy it into plans/, or draft again)"
            )
        logs = self.files.relative(self.files.log(1)).rsplit("/", 1)[0]
        return f"the agent wrote no plan; its transcripts: {logs}/<n>.log"

    def _round(self) -> DraftResult | None:
        """One dispatch and what it settles: a result to exit with, or None to go on."""
        r, before, outcome = self._dispatch()
        if self.stop.is_set():
            self._save("interrupted")
            name = self.stop.signal_name
            return DraftResult(
                SIGNAL_EXIT.get(name, 130), [f"orchlib: draft interrupted by {name}"]
            )
        if outcome.result is Result.QUESTION:
            return self._question(outcome.text)
        if outcome.result is Result.PAUSED:  # a usage limit is no failed round: stop, say when
            self._save("paused")
            text = f"orchlib: the drafting agent hit its {outcome.text}; {_come_back(outcome)}"
            return DraftResult(2, [escaped_line(text)])
        if outcome.result is Result.ERROR:
            self._save("failed")
            text = f"orchlib: the drafting agent reported an error: {outcome.text}"
            return DraftResult(1, [escaped_line(text)])
        # An agent that wrote the plan file and exited without DONE still gets it checked:
        # the file, not the marker, is what a round produces.
        wrote = outcome.result is Result.CLOSED and _read(self.files.plan) not in (None, before)
        if outcome.result is Result.DONE or wrote:
            problems = self._take_plan(r, before)
            if not problems:
                return self._valid()
        else:
            problems = [escaped_line(f"orchlib: round {self.state.failed + 1}: {outcome.text}")]
            if outcome.text == self.crashed:  # e.g. "Not logged in": more rounds change nothing
                self._save("failed")
                text = f"orchlib: the drafting agent failed the same way twice: {outcome.text}"
                return DraftResult(3, [escaped_line(text)])
        self.crashed = "" if outcome.result is Result.DONE or wrote else outcome.text
        self._failed(problems)
        return None

    def _dispatch(self) -> tuple[dispatch.Round, bytes | None, Outcome]:
        """Render the prompt and run the agent; also the plan file's bytes from before."""
        state = self.state
        state.dispatches += 1
        n = state.dispatches
        files, tid = self.files, dispatch.new_terminal_id(n)
        r = dispatch.Round(n, self.agent.spec, self.root, files.folder, state.draft_id,
                           files.plan, files.prompt(n), files.log(n), tid)  # fmt: skip
        taken = [p.plan_id for p in prompting.existing_plans(self.root) if p.plan_id]
        prompt = prompting.render(self.files, state, r.terminal_id, self.agent.spec.name, taken)
        before = _read(self.files.plan)
        self._save("drafting")
        where = self.files.relative(self.files.plan)
        self.say(f"orchlib: draft round {state.failed + 1} of {state.rounds}: "
                 f"{self.agent.spec.name} writes {where}")  # fmt: skip
        return r, before, dispatch.run(r, prompt, self.stop, self._progress)

    def _progress(self, percent: int, text: str) -> None:
        self.say(escaped_line(f"orchlib: draft {percent}% - {text}"))

    def _question(self, question: str) -> DraftResult | None:
        """Ask on the terminal and go on; without one, save the draft and exit 1."""
        self.state.questions.append({"question": question, "answer": ""})
        answer = self.ask(question)
        if answer:
            self.state.questions[-1]["answer"] = answer
            return None
        self._save(store.WAITING)
        flag = f" --plan-id {self.state.plan_id}" if self.state.plan_id else ""
        return DraftResult(1, [
            escaped_line(f"orchlib: the drafting agent asks: {question}"),
            f'orchlib: answer it with: doit draft{flag} --answer "your answer"',
        ])  # fmt: skip

    def _take_plan(self, r: dispatch.Round, before: bytes | None) -> list[str]:
        """Problems of the plan the agent wrote (or printed after DONE); [] when valid."""
        after = _read(self.files.plan)
        if after is None or after == before:
            printed = dispatch.printed_plan(r)
            if printed is not None:
                atomic_write(self.files.plan, printed.rstrip("\n") + "\n")
            elif after is None:
                where = self.files.relative(self.files.plan)
                return [f"orchlib: round {self.state.failed + 1}: DONE, but no plan was written "
                        f"to {where} and no ```yaml block followed the DONE line"]  # fmt: skip
        plan, problems = validate.check(self.files.plan, self.root, self.state.plan_id)
        self.plan = plan
        return problems

    def _failed(self, problems: list[str]) -> None:
        self.state.errors = problems
        self.state.failed += 1
        self._save("drafting")
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        self.say(f"orchlib: draft round {self.state.failed} of {self.state.rounds}: {count}")
        inside = f"orchlib: round {self.state.failed}: "  # the header above says the round
        for line in problems:
            self.say(f"  {line.removeprefix(inside)}")

    def _valid(self) -> DraftResult:
        """Write the valid draft into plans/ (unless that would replace a file) and review it."""
        plan = self.plan
        assert plan is not None
        refused = self._refused(plan.plan_id)
        if refused is not None:
            self._save("refused")
            return refused
        from orchlib.plan.yamlload import load_yaml

        data = load_yaml(self.files.plan.read_text(encoding="utf-8-sig"))
        text = yamlout.render(data, plan, self._header(), self.agent.plan_value)
        atomic_write(self.files.final, text)
        final, problems = validate.check(self.files.final, self.root, plan.plan_id)
        if final is None:  # orchlib's own rewrite broke it: never let that into plans/
            self._save("failed")
            return DraftResult(3, [*problems, "orchlib: the rewritten plan is invalid (a bug)"])
        target = validate.target(self.root, plan.plan_id)
        atomic_write(target, text)
        self._save("done")
        shown = target.relative_to(self.root).as_posix()
        broken = [p.file for p in prompting.existing_plans(self.root) if not p.plan_id]
        raw = load_yaml(text)
        return DraftResult(0, [], review.text(final, raw, shown, self.state.failed + 1, broken))

    def _refused(self, plan_id: str) -> DraftResult | None:
        """Exit 1 when `plans/<planId>.yaml` exists and --force was not given."""
        if not plan_id or self.request.force:
            return None
        target = validate.target(self.root, plan_id)
        if not target.exists():
            return None
        shown = target.relative_to(self.root).as_posix()
        kept = ""
        if self.files.plan.exists():
            kept = f"; the draft is kept in {self.files.relative(self.files.plan)}"
        return DraftResult(1, [f"orchlib: {shown} already exists{kept}; "
                               "doit draft --force replaces it"])  # fmt: skip

    def _header(self) -> list[str]:
        state = self.state
        rounds = state.failed + 1
        goal = state.goal.strip().splitlines()[0] if state.goal.strip() else ""
        goal = escaped_line(goal if len(goal) <= 90 else goal[:87] + "...")
        source = f" (from {state.source})" if state.source else ""
        return [
            f"Drafted by `doit draft` with {self.agent.spec.name} in {_rounds(rounds)}{source}.",
            f"Goal: {goal}",
            "Review the projects, tasks, dependsOn and verify commands, edit freely,",
            "then run: doit",
        ]

    def _save(self, status: str) -> None:
        self.state.status = status
        self.files.save(self.state)


def _come_back(outcome: Outcome) -> str:
    """When to run `doit draft` again after a usage limit."""
    if outcome.reset_at is None:
        return "run `doit draft` again later"
    at = datetime.fromtimestamp(outcome.reset_at).strftime("%H:%M")
    return f"run `doit draft` again after {at}"


def _rounds(count: int) -> str:
    return f"{count} round{'s' if count != 1 else ''}"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def draft(checkout: Path, request: DraftRequest, ask: Ask, say: Say) -> DraftResult:
    """Run `doit draft` in `checkout`; errors of the request raise ConfigError."""
    return Drafting(checkout, request, ask, say).run()
