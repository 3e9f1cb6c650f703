"""What `doit info` says about a plan or a plan task, in orchlib's words (not doit's DB)."""

from __future__ import annotations

from orchlib import statesync, uptodate
from orchlib.checkout import Checkout
from orchlib.plan import Plan


def task_line(co: Checkout, plan_id: str, task_id: str) -> str:
    """`shop:t3: would run: output 'x' is missing` (+ a question it waits on), newline-ended."""
    plan = co.plans[plan_id]
    reason = uptodate.verdicts(co, plan)[task_id]
    name = f"{plan_id}:{task_id}"
    lines = [f"{name}: would run: {reason}" if reason else f"{name}: up to date (valid stamp)"]
    from orchlib import state

    current = state.load(co.plan_dir(plan_id))
    record = current.tasks.get(task_id) if current else None
    if record is not None and record.questions and reason is not None:
        last = record.questions[-1]
        if last.answer is None:
            lines.append(f'{name}: waits for an answer to “{last.question}”: '
                         f'doit answer {name} "<your answer>"')  # fmt: skip
        elif record.status is state.Status.QUESTION:
            lines.append(f"{name}: answered “{last.answer}”; the next `doit` resumes it")
    if record is not None and record.status is state.Status.ERROR and reason is not None:
        lines.append(f"{name}: failed: {record.error}")
    return "\n".join(lines) + "\n"


def plan_info(co: Checkout, plan: Plan) -> str:
    """The plan's status table (as `doit status PLAN`) and where its files are."""
    from orchlib import state

    stamps = statesync.done_stamps(co, plan, uptodate.verdicts(co, plan))
    current = state.load(co.plan_dir(plan.plan_id))
    table = state.render_status(plan, current, stamps, root=co.root)
    where = co.plan_dir(plan.plan_id).relative_to(co.root)
    source = (
        plan.source.relative_to(co.root) if plan.source.is_relative_to(co.root) else plan.source
    )
    return f"{table}\nplan file: {source}\nstate: {where}/orchestration.md, {where}/state.json\n"
