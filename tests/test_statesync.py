"""State files that agree with the stamps (DESIGN §6): `state.statesync` on plain values (the
`.orch` folder, the plan, its verdicts, the template folders), on real files in tmp_path."""

from __future__ import annotations

from pathlib import Path

from test_uptodate import TEMPLATE, P, stamp_all, write_plan

from orchlib.state import files, stamps, statesync, uptodate
from orchlib.state.model import Status
from orchlib.state.templates import template_dirs
from orchlib.state.uptodate import Specs


def statuses(orch: Path) -> dict[str, tuple[Status, str]]:
    state = files.load(orch / P)
    assert state is not None
    return {t: (r.status, r.pending_reason) for t, r in state.tasks.items()}


def test_the_files_follow_the_stamps_and_a_match_is_not_read_again(tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    (tmp_path / "w" / "a.txt").write_text("out\n")
    (tmp_path / "w" / "in.txt").write_text("v1\n")
    orch, specs, templates = tmp_path / ".orch", Specs(TEMPLATE), template_dirs(tmp_path)
    stamp_all(orch, plan, specs)

    def sync() -> bool:
        return statesync.sync(orch, plan, uptodate.verdicts(orch, plan, specs), templates)

    assert sync() is True  # no state.json yet: written from the stamps
    assert statuses(orch) == {t: (Status.DONE, "") for t in ("a", "b", "c")}
    assert "**c** [DONE]" in (orch / P / files.MARKDOWN_FILE).read_text()
    assert sync() is False  # state.sync matches: nothing read, nothing written
    stamps.remove(stamps.stamp_path(orch, P, "b"))
    assert sync() is True
    assert statuses(orch) == {
        "a": (Status.DONE, ""),
        "b": (Status.PENDING, "no completion stamp"),
        "c": (Status.PENDING, "dependency b runs first"),
    }
    done = statesync.done_stamps(orch, plan, uptodate.verdicts(orch, plan, specs))
    assert list(done) == ["a"] and done["a"].task_id == "a"


def test_nothing_to_say_for_a_plan_that_never_ran(tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    orch, specs = tmp_path / ".orch", Specs(TEMPLATE)
    statesync.sync_all(orch, {P: plan}, specs, template_dirs(tmp_path))
    assert not (orch / P / files.STATE_FILE).exists()
