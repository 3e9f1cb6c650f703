"""State files that agree with the stamps (DESIGN §6): one rule for "done".

After a crash past the last stamp, `doit clean`, `doit forget`, a deleted output, an edited
task, a changed input or a redone dependency, state.json and orchestration.md may say DONE
for work the next run redoes, `in_progress` for a run that is gone, or list tasks the plan
no longer has. Every command that reads them (`doit`, a no-op included, `status`, `list`,
`info`) calls `sync()` first: it applies the up-to-date rule (`uptodate.verdicts`) and
rewrites both files when they disagree. It takes plain values: the `.orch` folder, the
plans, their spec hashes and the template folders orchestration.md is rendered from.

It stays cheap: `.orch/<planId>/state.sync` keeps a digest of the last agreement (the
verdicts, the plan file and the state file's identity); while that matches, the state file
is not even read. While a run holds the run lock, the run's own writer owns the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchlib.fsutil import atomic_write
from orchlib.layout import JOURNAL_FILE, MARKDOWN_FILE, STATE_FILE, SYNC_FILE
from orchlib.plan import Plan
from orchlib.records import replace
from orchlib.state import runlock, stamps, uptodate
from orchlib.state.orchdir import write_failure
from orchlib.state.stamps import Stamp

if TYPE_CHECKING:  # the state model is imported only when the files disagree
    from orchlib.state.model import PlanState, TaskRecord

Verdicts = Mapping[str, str | None]
StampOf = Callable[[str], Stamp | None]


def sync_all(
    orch_dir: Path,
    plans: Mapping[str, Plan],
    specs: uptodate.Specs,
    templates: Sequence[Path],
    verdicts: Mapping[str, Verdicts] | None = None,
    held: bool = False,
) -> None:
    """Reconcile every plan's state files with its stamps (nothing while a run is going);
    `verdicts`: those already found this process, by plan id; `held`: this process holds
    the run lock (forget, clean, accept)."""
    if not held and runlock.is_running(orch_dir):
        return
    for plan in plans.values():
        given = verdicts.get(plan.plan_id) if verdicts else None
        found = given if given is not None else uptodate.verdicts(orch_dir, plan, specs)
        sync(orch_dir, plan, found, templates)


def sync(orch_dir: Path, plan: Plan, verdicts: Verdicts, templates: Sequence[Path]) -> bool:
    """Rewrite the plan's state files when they disagree with `verdicts`; True if rewritten.

    A damaged or read-only `.orch` is said in one line and the command goes on (a run then
    names the path and what to do before dispatching anything)."""
    try:
        return _sync(orch_dir, plan, verdicts, templates)
    except OSError as exc:
        what = write_failure(exc, orch_dir.parent)
        sys.stderr.write(f"orchlib: state of {plan.plan_id} not reconciled: {what}\n")
        return False


def _sync(orch_dir: Path, plan: Plan, verdicts: Verdicts, templates: Sequence[Path]) -> bool:
    folder = orch_dir / plan.plan_id
    state_file = folder / STATE_FILE
    if not state_file.exists() and all(v is not None for v in verdicts.values()):
        return False  # never ran, nothing stamped: nothing to say yet
    key = _key(plan, verdicts, state_file)
    if _read(folder / SYNC_FILE) == key:
        return False
    # Only on a disagreement or a changed input: a no-op run does not import the state model.
    from orchlib.events import now_iso
    from orchlib.state.files import edit, load

    stamp_of = _stamp_reader(orch_dir, plan)

    def change(current: PlanState) -> tuple[PlanState, str]:
        return agree(plan, current, verdicts, stamp_of, now_iso()), ""

    old = load(folder)
    fixed = agree(plan, old, verdicts, stamp_of, now_iso())
    rewritten = old is None or not same(old, fixed) or _markdown_behind(folder)
    if rewritten:
        edit(folder, plan, templates, change)
    _write(folder / SYNC_FILE, _key(plan, verdicts, state_file))
    return rewritten


def done_stamps(orch_dir: Path, plan: Plan, verdicts: Verdicts) -> dict[str, Stamp]:
    """The stamps of the plan's up-to-date tasks (the only ones that may show DONE)."""
    stamp_of = _stamp_reader(orch_dir, plan)
    found = {}
    for task_id, reason in verdicts.items():
        stamp = stamp_of(task_id) if reason is None else None
        if stamp is not None:
            found[task_id] = stamp
    return found


def _stamp_reader(orch_dir: Path, plan: Plan) -> StampOf:
    """The valid stamp of a task of `plan`, by task id."""
    return lambda task_id: stamps.read(stamps.stamp_path(orch_dir, plan.plan_id, task_id), task_id)


def agree(
    plan: Plan, old: PlanState | None, verdicts: Verdicts, stamp_of: StampOf, now: str
) -> PlanState:
    """`old` made true: up-to-date tasks DONE (from their stamps), others never DONE, tasks
    only in the plan, and a run that no longer holds the lock ended."""
    from orchlib.state.model import plan_status
    from orchlib.state.reconcile import reconcile

    base = reconcile(plan, old, now)
    tasks = {tid: _agreed(r, verdicts.get(tid), stamp_of) for tid, r in base.tasks.items()}
    run = base.run
    if run.started_at and not run.ended_at:  # its process is gone (callers checked the lock)
        run = replace(run, ended_at=now, interrupted=run.interrupted or "ended without a result")
    state = replace(base, tasks=tasks, run=run)
    return replace(state, status=plan_status(state))


def same(old: PlanState, new: PlanState) -> bool:
    """Whether the files already say what `new` says (the write time aside)."""
    return (old.status, old.run, old.phases, old.summary, dict(old.tasks)) == (
        new.status,
        new.run,
        new.phases,
        new.summary,
        dict(new.tasks),
    )


def _agreed(record: TaskRecord, reason: str | None, stamp_of: StampOf) -> TaskRecord:
    from orchlib.state.model import Status

    if reason is None:
        if record.status is Status.DONE and not record.pending_reason:
            return record
        stamp = stamp_of(record.id)
        return done_from_stamp(record, stamp) if stamp is not None else record
    if record.status is Status.DONE:
        return replace(
            record, status=Status.PENDING, percent=0, summary="", finished_at="",
            duration=None, worked=0.0, pending_reason=reason,
        )  # fmt: skip
    if record.status is Status.PENDING and record.held:  # a spent budget's reason stays
        return record
    if record.status is Status.PENDING and (record.attempt or record.pending_reason):
        return record if record.pending_reason == reason else replace(record, pending_reason=reason)
    return record


def done_from_stamp(record: TaskRecord, stamp: Stamp) -> TaskRecord:
    """The record of a task whose stamp makes it up to date."""
    from orchlib.state.model import Status

    attempt, duration = stamp.attempt, stamp.duration_seconds
    return replace(
        record,
        status=Status.DONE,
        percent=100,
        summary=stamp.summary,
        finished_at=stamp.finished_at,
        attempt=attempt if attempt is not None else record.attempt,
        terminal_id=stamp.terminal_id or record.terminal_id,
        duration=float(duration) if duration is not None else record.duration,
        error="",
        last_update="",
        skipped_because=(),
        pending_reason="",
        pid=None,
        pgid=None,
        pid_start="",
        ref={},
    )


def _key(plan: Plan, verdicts: Verdicts, state_file: Path) -> str:
    ident = ""
    # The journal and the markdown count too.
    for name in (STATE_FILE, JOURNAL_FILE, MARKDOWN_FILE):
        path = state_file.with_name(name)
        try:
            st = path.stat()
            ident += f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size};"
        except OSError:
            ident += "-;"
    digest = hashlib.sha256(f"{plan.plan_id}\0{plan.digest}\0{ident}".encode())
    # One update of the joined text: the same digest as one update per task, in fewer calls.
    digest.update("".join(f"\0{t}\t{r or ''}" for t, r in verdicts.items()).encode())
    return digest.hexdigest()


def _markdown_behind(folder: Path) -> bool:
    """Whether orchestration.md is missing or older than state.json: a run's writer renders
    it after state.json (and less often), so a killed run can leave it behind."""
    try:
        markdown = (folder / MARKDOWN_FILE).stat().st_mtime_ns
    except OSError:
        return True
    try:
        return markdown < (folder / STATE_FILE).stat().st_mtime_ns
    except OSError:
        return False


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _write(path: Path, key: str) -> None:
    with contextlib.suppress(OSError):  # a read-only .orch: the next command checks again
        atomic_write(path, key + "\n", durable=False)
