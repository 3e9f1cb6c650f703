"""Checking and writing a plan an assistant wrote, exactly as `doit` checks plans/.

The text is written to one scratch file under `.orch/cache/` and checked there by the
validator `doit draft` uses (`draft.validate.check`: `load_plan` plus the checks across the
checkout's plans, such as a plan id already used). The scratch file's name in the located
lines is then replaced by the name the text stands for, so an assistant reads
`plans/shop.yaml:14:7: tasks[2].dependsOn[0]: unknown task 't9' (known: t1, t2)`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from orchlib.draft import validate
from orchlib.errors import ConfigError, PlanError
from orchlib.fsutil import atomic_write
from orchlib.layout import Layout
from orchlib.plan.file import display, load_plan, locate

FORMATS = ("yaml", "json")
# A plan id that is safe as a file name: no separator, no leading dot, not too long.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SCRATCH = Layout(Path()).mcp_scratch  # relative to the checkout


@dataclass
class PlanDesk:
    """Where one server checks plans: the checkout's root and a lock on the scratch file."""

    root: Path
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def problems(self, text: str, fmt: str, name: str, plan_id: str = "") -> list[str]:
        """Every problem of `text` as a plan file called `name`, one located line each."""
        if fmt not in FORMATS:
            raise ConfigError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
        scratch = self.root / SCRATCH / f"plan.{fmt}"
        with self.lock:
            atomic_write(scratch, text, durable=False)
            lines = self._check(scratch, plan_id)
            shown_as = display(scratch, self.root)
        return [_renamed(line, shown_as, name) for line in lines]

    def _check(self, path: Path, plan_id: str) -> list[str]:
        try:
            plan = load_plan(path, self.root)
        except PlanError as exc:
            return exc.lines()
        if plan_id and plan.plan_id != plan_id:  # before a clash that would then not matter
            where = locate(path, self.root, ["planId"])
            return [f"{where}: planId: must be {plan_id!r}, the plan_id it is written as"]
        return validate.check(path, self.root, "")[1]

    def validate(self, text: str, fmt: str = "yaml") -> dict[str, object]:
        """`{"valid": bool, "errors": [...]}` for the plan text given."""
        errors = self.problems(text, fmt, f"plan.{fmt}")
        return {"valid": not errors, "errors": errors}

    def write(self, plan_id: str, text: str, force: bool = False) -> dict[str, object]:
        """Write `text` as plans/<plan_id>.yaml when it is a valid plan with that id."""
        if not SAFE_ID.fullmatch(plan_id):
            raise ConfigError(
                f"plan_id {plan_id!r}: use letters, digits, '_', '.', '-' (not first), "
                "at most 100 characters"
            )
        target = validate.target(self.root, plan_id)
        name = target.relative_to(self.root).as_posix()
        if (target.exists() or target.is_symlink()) and not force:
            raise ConfigError(f"{name} exists; pass force=true to replace it")
        errors = self.problems(text, "yaml", name, plan_id)
        if errors:
            raise PlanError([f"{name} is not written: the plan is invalid", *errors])
        atomic_write(target, text)
        return {"path": name, "planId": plan_id}


def _renamed(line: str, scratch: str, name: str) -> str:
    """The line with the scratch file's name, where it locates the problem, as `name`."""
    return name + line[len(scratch) :] if line.startswith(f"{scratch}:") else line
