"""Plans as doit tasks: `<planId>:<taskId>` per plan task, `<planId>` per plan.

Used both by a checkout's `dodo.py` (through `orchlib.dodo`) and by `python -m orchlib`
(through `PlanLoader`, a doit `TaskLoader2`).
"""

from __future__ import annotations

import contextlib
import gc
import glob
import inspect
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchlib.checkout import Checkout
from orchlib.doitedge import plugins
from orchlib.doitedge.doitapi import DoitTask, InvalidDodoFile, TaskFailed, TaskLoader2
from orchlib.errors import OrchError
from orchlib.layout import DB_NAME, ORCH
from orchlib.plan import Plan, Task, TaskMeta
from orchlib.state import orchdir, stamps, uptodate

DOIT_CONFIG: dict[str, Any] = {
    "dep_file": os.path.join(ORCH, DB_NAME),
    "backend": "sqlite3",
    "continue": True,
    "verbosity": 2,
}

META = "orchlib"  # a plan task's doit meta: its TaskMeta
CHECKOUT = "orchlib.checkout"  # a plan's doit task's meta: the checkout its tasks come from
PRUNING = "orchlib.pruning"  # ...and what the load left out (a `Pruning`)
CREATOR = "orchlib"  # the basename of orchlib.dodo's task creator, `task_orchlib`
SELECTION = "run_selection"  # its parameter: what `doit run` named (None: load every task)
# doit's way to give a task creator a value no command line sets: `@task_params` with an
# option that has no flag, its value given through the loader's `task_opts` (doit's API).
CREATOR_PARAMS = [{"name": SELECTION, "default": None, "type": list}]


def orch_meta(task: Any) -> TaskMeta | None:
    """The plan task a doit task stands for; None for tasks that are not plan tasks."""
    meta = getattr(task, "meta", None) or {}
    found = meta.get(META)
    return found if isinstance(found, TaskMeta) else None


def checkout_for(root: Path) -> Checkout:
    """The checkout at `root`, loaded; plan errors exit 3 with located lines."""
    try:
        with _collector_paused():
            return Checkout.load(root.resolve())
    except OrchError as exc:
        raise PlanLoadError(exc) from None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the plans load, then everything loaded so far
    (doit, orchlib, the plans) frozen out of the collector's later passes.

    Loading a big plan makes tens of thousands of objects that live as long as the run; the
    collector's passes over them were 3-6 ms of a 1,000-task no-op, and every full pass
    of a long run would walk them again (benchmarks/RESULTS.md, issue 25).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


class PlanLoadError(InvalidDodoFile):  # type: ignore[misc]
    """The checkout's plans do not load; doit shows it as a dodo-file error, orchlib's
    commands print `lines` as they are (one located line per problem)."""

    def __init__(self, exc: OrchError) -> None:
        super().__init__(_as_lines(exc))
        self.lines = exc.lines()
        self.exit_code = exc.exit_code


def _as_lines(exc: OrchError) -> str:
    lines = exc.lines()
    if len(lines) == 1:
        return lines[0]
    return f"{len(lines)} problems in the plans:\n" + "\n".join(lines)


@dataclass(frozen=True)
class Pruning:
    """What a pruned `doit run` load decided, per plan: why each task would run (None: up to
    date) and the finished tasks it left out (empty for a load of every task)."""

    verdicts: dict[str, uptodate.Verdicts] = field(default_factory=dict)
    up_to_date: dict[str, list[str]] = field(default_factory=dict)


def pruning_of(cmd: Any) -> Pruning:
    """What the load of the doit command `cmd` left out (nothing: an empty Pruning)."""
    for task in cmd.task_list or ():
        found = (getattr(task, "meta", None) or {}).get(PRUNING)
        if isinstance(found, Pruning):
            return found
    return Pruning()


def checkout_of(cmd: Any) -> Checkout | None:
    """The checkout whose plans the doit command `cmd` loaded as its tasks (None: doit's
    own tasks of a foreign dodo.py)."""
    for task in cmd.task_list or ():
        found = (getattr(task, "meta", None) or {}).get(CHECKOUT)
        if isinstance(found, Checkout):
            return found
    # a checkout without plans has no task to carry it
    return checkout_for(Path.cwd()) if loads_plans(cmd.loader) else None


def loads_plans(task_loader: Any) -> bool:
    """Whether `task_loader` loads a checkout's plans: orchlib's own loader, or doit's for a
    dodo.py that imports orchlib.dodo."""
    if isinstance(task_loader, PlanLoader):
        return True
    creator = (getattr(task_loader, "namespace", None) or {}).get(f"task_{CREATOR}")
    return getattr(creator, "__module__", "") == "orchlib.dodo"


@contextlib.contextmanager
def run_selection(task_loader: Any, selection: list[str] | None) -> Iterator[None]:
    """While `doit run` loads its tasks, leave out finished tasks whose whole upstream is
    finished: `selection` (the task names given, always kept) reaches the task creator as
    its `run_selection` (doit's `task_opts`); None loads every task (`--always`, wildcards)."""
    before = task_loader.task_opts
    if selection is not None:
        task_loader.task_opts = {**(before or {}), CREATOR: {SELECTION: selection}}
    try:
        yield
    finally:
        task_loader.task_opts = before


def selection_of(task_loader: Any) -> list[str] | None:
    """The run selection given to `task_loader` (None: load every task)."""
    found = (task_loader.task_opts or {}).get(CREATOR, {}).get(SELECTION)
    return list(found) if found is not None else None


def closure(tasks: dict[str, Any], selected: Iterable[str]) -> list[Any]:
    """The selected doit tasks and everything they depend on."""
    seen: dict[str, Any] = {}
    stack = list(selected)
    while stack:
        name = stack.pop()
        if name in seen or name not in tasks:
            continue
        seen[name] = tasks[name]
        stack.extend(tasks[name].task_dep)
    return list(seen.values())


def only_selected(control: Any) -> None:
    """`doit -s`: the selected tasks run without the tasks they depend on.

    A plan (`-s shop`) selects all its tasks, so they keep their order among themselves;
    `-s shop:t3` runs t3 alone, whatever the state of its dependencies.
    """
    chosen: set[str] = set()
    for name in control.selected_tasks:
        task = control.tasks[name]
        chosen.add(name)
        if task.has_subtask:
            chosen.update(task.task_dep)
    for name in chosen:
        task = control.tasks[name]
        if not task.has_subtask:
            task.task_dep = [dep for dep in task.task_dep if dep in chosen]


def selected_plan_tasks(control: Any) -> list[Any]:
    """The plan tasks a doit run selected (with their dependencies), in plan order."""
    chosen = [t for t in closure(control.tasks, control.selected_tasks) if orch_meta(t)]
    chosen.sort(key=lambda t: (orch_meta(t).plan, orch_meta(t).index))  # type: ignore[union-attr]
    return chosen


def doit_tasks(co: Checkout, selection: list[str] | None = None) -> list[DoitTask]:
    """Every plan task as a doit task, plus plan groups; with a run's `selection`, only the
    tasks with work and those named."""
    tasks: list[DoitTask] = []
    ctx = _Context(co)
    pruning = Pruning()
    for plan in co.plans.values():
        keep = None if selection is None else _kept(co, plan, selection, pruning)
        subtasks = [
            plan_task(ctx, plan, t, keep)
            for t in plan.tasks.values()
            if keep is None or t.id in keep
        ]
        doc = plan.summary or f"plan {plan.plan_id}"
        names = [t.name for t in subtasks]
        tasks.append(DoitTask(plan.plan_id, None, task_dep=names, has_subtask=True, doc=doc,
                              meta={CHECKOUT: co, PRUNING: pruning}))  # fmt: skip
        tasks.extend(subtasks)
    return tasks


def _kept(co: Checkout, plan: Plan, selection: list[str], pruning: Pruning) -> set[str]:
    """Task ids a pruned run needs; the rest are recorded in `pruning` as up to date."""
    named = {n.split(":", 1)[1] for n in selection if n.startswith(f"{plan.plan_id}:")}
    verdicts = pruning.verdicts[plan.plan_id] = uptodate.verdicts(co.orch_dir, plan, co.specs)
    keep = {t for t, reason in verdicts.items() if reason is not None} | (named & set(plan.tasks))
    pruning.up_to_date[plan.plan_id] = [t for t in plan.tasks if t not in keep]
    return keep


class _Context:
    """Per-load constants: the checkout, whether paths can be relative, targets taken."""

    def __init__(self, co: Checkout) -> None:
        self.co = co
        self.relative = Path.cwd().resolve() == co.root
        self.targets: set[str] = set()

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.co.root) if self.relative else str(path)


def plan_task(ctx: _Context, plan: Plan, task: Task, keep: set[str] | None = None) -> DoitTask:
    """One plan task: target = its stamp (and literal outputs), uptodate = the stamp check."""
    co = ctx.co
    stamp = co.stamp_path(plan.plan_id, task.id)
    targets = [ctx.rel(stamp), *_literal_outputs(ctx, plan, task)]
    deps = [d for d in task.depends_on if keep is None or d in keep]
    root = str(plan.projects[task.project].root)
    meta = TaskMeta(plan.plan_id, task.id, root, plan.phase_of(task.id), task.index)
    return DoitTask(
        f"{plan.plan_id}:{task.id}",
        [(_outside_orchlib_run, [plan.plan_id, task.id])],
        targets=targets,
        task_dep=[f"{plan.plan_id}:{dep}" for dep in deps],
        uptodate=[UpToDate(co, plan.plan_id, task.id)],
        clean=[(clean_stamp, [str(stamp)])],
        subtask_of=plan.plan_id,
        doc=task.title,
        verbosity=2,
        meta={META: meta},
    )


def _literal_outputs(ctx: _Context, plan: Plan, task: Task) -> list[str]:
    root = plan.projects[task.project].root
    found = []
    for out in task.outputs:
        path = ctx.rel(root / out)
        if not glob.has_magic(out) and path not in ctx.targets:
            ctx.targets.add(path)
            found.append(path)
    return found


class UpToDate:
    """doit `uptodate` check of a plan task (`uptodate.why_not_done`); remembers why it is
    not up to date."""

    # doit asks `inspect.signature` of every check before it calls it: no arguments, said
    # at once (8 µs a task otherwise).
    __signature__ = inspect.Signature()

    def __init__(self, co: Checkout, plan_id: str, task_id: str) -> None:
        self.co, self.plan_id, self.task_id = co, plan_id, task_id
        self.reason: str | None = None

    def __call__(self) -> bool:
        plan = self.co.plans[self.plan_id]
        task = plan.tasks[self.task_id]
        self.reason = uptodate.why_not_done(self.co.orch_dir, plan, task, self.co.specs)
        return self.reason is None

    def __repr__(self) -> str:
        return f"orchlib: {self.reason or 'up to date'}"


def clean_stamp(path: str) -> None:
    """A plan task's clean action: its stamp goes (`doit clean`)."""
    stamps.remove(Path(path))


def _outside_orchlib_run(plan_id: str, task_id: str) -> TaskFailed:
    return TaskFailed(
        f"{plan_id}:{task_id}: plan tasks run only through orchlib's run command; "
        "install orchlib in this environment (pip install -e .) or use `python -m orchlib`"
    )


def prepare_orch_dir(root: Path) -> None:
    """`.orch/` made and doit's DB readable before doit opens it; else one line, exit 3."""
    try:
        orchdir.prepare(root)
    except OrchError as exc:
        raise InvalidDodoFile(str(exc)) from None


class PlanLoader(TaskLoader2):  # type: ignore[misc]
    """doit task loader for `python -m orchlib`: the checkout is the working directory."""

    def setup(self, opt_values: dict[str, Any]) -> None:
        """The checkout is the current directory; doit's plugin lookups from one scan."""
        plugins.install()

    def load_doit_config(self) -> dict[str, Any]:
        """orchlib's doit defaults (sqlite3 DB in .orch/, continue on failure)."""
        prepare_orch_dir(Path.cwd())
        return dict(DOIT_CONFIG)

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[DoitTask]:
        """Every plan of the checkout in the current directory (a run's selection pruned)."""
        return doit_tasks(checkout_for(Path.cwd()), selection_of(self))
