"""The state files of a plan, and the edits other processes make to them under the lock.

`.orch/<planId>/state.json` and `orchestration.md` are written together, atomically, while
holding `.orch/<planId>/state.lock`. `answer()` (`doit answer`) and `forget()` (`doit forget`)
take the same lock, so they work while a run is going; the run's `StateStore` merges what
they wrote before its next write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from orchlib.errors import ConfigError
from orchlib.events import now_iso
from orchlib.fsutil import PRIVATE_FILE, append_private, atomic_write, read_json
from orchlib.layout import JOURNAL_FILE as JOURNAL_FILE
from orchlib.layout import MARKDOWN_FILE as MARKDOWN_FILE
from orchlib.layout import STATE_FILE as STATE_FILE
from orchlib.layout import STATE_LOCK
from orchlib.plan import Plan
from orchlib.records import replace
from orchlib.state.jsonform import JsonCache, dumps_state, from_json, task_from_json, task_json
from orchlib.state.model import (
    PlanState,
    Status,
    TaskRecord,
    derive_projects,
    merge_answers,
    plan_spend,
)
from orchlib.state.reconcile import reconcile
from orchlib.state.render import MarkdownRenderer
from orchlib.textsafe import flat_line

# Records of attempts started since state.json was last written, one JSON line each: a start
# must be on disk before its agent may print, and appending one line costs the same for any
# plan size, where rewriting state.json grows with it. `load` folds the lines in; every
# write of state.json removes the file (the write holds everything it said).
LOCK_FILE = STATE_LOCK
LOCK_TIMEOUT = 30.0


def load(folder: Path) -> PlanState | None:
    """The state in `folder` (`.orch/<planId>/`), or None when missing or unreadable."""
    data = read_json(folder / STATE_FILE)
    return None if data is None else fold_journal(folder, from_json(data))


def fold_journal(folder: Path, state: PlanState) -> PlanState:
    """`state` with the records of the journal beside it laid over (answers on disk kept)."""
    try:
        raw = (folder / JOURNAL_FILE).read_bytes()
    except OSError:
        return state
    tasks: dict[str, TaskRecord] | None = None
    for line in raw.splitlines():
        record = task_from_json(line)  # None for a line a crash cut short
        if record is None or record.id not in state.tasks:
            continue
        tasks = dict(state.tasks) if tasks is None else tasks
        tasks[record.id] = merge_answers(record, tasks[record.id])
    return state if tasks is None else replace(state, tasks=tasks)


def append_journal(folder: Path, records: Sequence[TaskRecord]) -> None:
    """Put `records` on disk in one append (caller holds the state lock)."""
    text = "".join(task_json(record) + "\n" for record in records)
    append_private(folder / JOURNAL_FILE, text.encode("utf-8", "replace"))


def write_state(
    folder: Path,
    state: PlanState,
    renderer: MarkdownRenderer | None,
    cache: JsonCache | None = None,
) -> None:
    """Write state.json, then orchestration.md when a renderer is given (caller holds the lock).

    Both files are rewritten many times a second: atomic, not fsynced (neither are the
    stamps, see stamps.write).
    """
    text = dumps_state(state, {} if cache is None else cache)
    atomic_write(folder / STATE_FILE, text.encode("utf-8", "replace"), durable=False)
    (folder / JOURNAL_FILE).unlink(missing_ok=True)  # state.json now says all of it
    if renderer is not None:
        markdown = renderer.render(state).encode("utf-8", "replace")
        atomic_write(folder / MARKDOWN_FILE, markdown, durable=False)


def with_projects(state: PlanState) -> PlanState:
    """The state with its Projects rows derived from its tasks, stamped with the time now."""
    projects, spend = derive_projects(state), plan_spend(state)
    return replace(state, projects=projects, spend=spend, updated_at=now_iso())


def file_id(path: Path) -> tuple[int, int, int] | None:
    """Inode, mtime and size: changes whenever another process replaces the file."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


Change = Callable[[PlanState], tuple[PlanState, str]]


def edit(folder: Path, plan: Plan, template_dirs: Sequence[Path], change: Change) -> str:
    """Apply `change` to the state on disk under the lock and write both files back."""
    import filelock  # `doit answer` and the like: a run takes its own lock (`statelock`)

    renderer = MarkdownRenderer(template_dirs, folder.parent.parent)
    try:
        with filelock.FileLock(folder / LOCK_FILE, timeout=LOCK_TIMEOUT, mode=PRIVATE_FILE):
            state, message = change(reconcile(plan, load(folder), now_iso()))
            write_state(folder, with_projects(state), renderer)
    except filelock.Timeout:
        raise ConfigError(
            f"{folder / LOCK_FILE}: busy for {LOCK_TIMEOUT:.0f}s; try again"
        ) from None
    return message


def answer(folder: Path, plan: Plan, task_id: str, text: str, template_dirs: Sequence[Path]) -> str:
    """Record `text` as the answer to the task's open question; returns a confirmation line."""
    task_id = _known(plan, task_id)
    name = f"{plan.plan_id}:{task_id}"
    if not text.strip():
        raise ConfigError(f"{name}: the answer is empty")
    if not (folder / STATE_FILE).exists():
        raise ConfigError(f"{name} has no open question (the plan has not run yet)")
    return edit(folder, plan, template_dirs, lambda state: _answer(state, name, task_id, text))


def _answer(state: PlanState, name: str, task_id: str, text: str) -> tuple[PlanState, str]:
    record = state.tasks[task_id]
    open_ones = [i for i, q in enumerate(record.questions) if q.answer is None]
    # An answer the task has not resumed with yet (it still waits) may be replaced.
    unused = record.status is Status.QUESTION and bool(record.questions)
    if not open_ones and not unused:
        raise ConfigError(f"{name} has no open question (it is {record.status.value})")
    index = open_ones[-1] if open_ones else len(record.questions) - 1
    questions = list(record.questions)
    asked = questions[index]
    questions[index] = replace(asked, answer=text, answered_at=now_iso())
    tasks = {**state.tasks, task_id: replace(record, questions=tuple(questions))}
    again = "" if open_ones else " (replacing the earlier answer)"
    # Both, quoted: the question alone (`answered “Redis or JWT?”`) read as the answer.
    said = f"“{flat_line(asked.question)}” with “{flat_line(text)}”"
    message = f"{name}: answered {said}{again}; run `doit` to resume the task"
    return replace(state, tasks=tasks), message


def forget(
    folder: Path, plan: Plan, task_ids: Iterable[str], template_dirs: Sequence[Path]
) -> None:
    """Reset tasks to PENDING and drop their unanswered questions (for `doit forget`)."""
    ids = [_known(plan, task_id) for task_id in task_ids]
    if (folder / STATE_FILE).exists():
        edit(folder, plan, template_dirs, lambda state: (_forget(state, ids), ""))


def _forget(state: PlanState, task_ids: list[str]) -> PlanState:
    tasks = dict(state.tasks)
    for task_id in task_ids:
        tasks[task_id] = _forgotten(tasks[task_id])
    return replace(state, tasks=tasks)


def _forgotten(record: TaskRecord) -> TaskRecord:
    kept = tuple(q for q in record.questions if q.answer is not None)
    fresh = TaskRecord(record.id, record.title, record.project, record.phase, record.depends_on)
    return replace(fresh, status=Status.PENDING, attempt=record.attempt, questions=kept)


def _known(plan: Plan, task_id: str) -> str:
    task_id = task_id.removeprefix(f"{plan.plan_id}:")
    if task_id not in plan.tasks:
        known = ", ".join(plan.tasks)
        raise ConfigError(f"unknown task '{plan.plan_id}:{task_id}' (known: {known})")
    return task_id
