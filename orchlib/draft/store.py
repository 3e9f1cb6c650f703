"""A draft's files under `.orch/drafts/<draftId>/` and its saved state (for `--answer`).

```
.orch/drafts/<draftId>/draft.json       the goal, the agent, rounds so far, questions, errors
.orch/drafts/<draftId>/plan.yaml        the agent's plan file (ORCH_PLAN_FILE), kept when invalid
.orch/drafts/<draftId>/<n>.prompt.md    the prompt of dispatch n
.orch/drafts/<draftId>/<n>.log          the agent's transcript of dispatch n
.orch/drafts/<draftId>/final.yaml       the plan as it goes into plans/, validated once more
```
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from orchlib.events import now_iso
from orchlib.fsutil import atomic_write, read_json
from orchlib.layout import Layout

_NOT_ID = re.compile(r"[^a-z0-9]+")
WAITING = "waiting"


@dataclass
class DraftState:
    """Everything a later `doit draft --answer` needs to continue a draft."""

    draft_id: str
    goal: str
    agent: str
    source: str = ""
    plan_id: str = ""
    rounds: int = 3
    failed: int = 0
    dispatches: int = 0
    status: str = "drafting"
    errors: list[str] = field(default_factory=list)
    questions: list[dict[str, str]] = field(default_factory=list)
    updated: str = ""

    def open_question(self) -> str | None:
        """The agent's question still waiting for an answer."""
        if self.questions and not self.questions[-1].get("answer"):
            return self.questions[-1]["question"]
        return None

    def answered(self) -> list[tuple[str, str]]:
        """Every question with its answer, oldest first."""
        return [(q["question"], q["answer"]) for q in self.questions if q.get("answer")]


class DraftFiles:
    """Paths of one draft's files."""

    def __init__(self, checkout: Path, draft_id: str) -> None:
        self.checkout = checkout
        self.folder = drafts_dir(checkout) / draft_id

    @property
    def plan(self) -> Path:
        """The plan file the agent writes (ORCH_PLAN_FILE)."""
        return self.folder / "plan.yaml"

    @property
    def final(self) -> Path:
        """The plan as orchlib writes it into plans/, validated before it goes there."""
        return self.folder / "final.yaml"

    @property
    def state(self) -> Path:
        return self.folder / "draft.json"

    def prompt(self, number: int) -> Path:
        return self.folder / f"{number}.prompt.md"

    def log(self, number: int) -> Path:
        return self.folder / f"{number}.log"

    def relative(self, path: Path) -> str:
        """`path` as shown to people and agents: relative to the checkout."""
        return path.relative_to(self.checkout).as_posix()

    def reset(self) -> None:
        """A new draft under an id used before starts from an empty folder."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def save(self, state: DraftState) -> None:
        state.updated = now_iso()
        atomic_write(self.state, json.dumps(dataclasses.asdict(state), indent=2) + "\n")


def drafts_dir(checkout: Path) -> Path:
    """`.orch/drafts/`."""
    return Layout(checkout).drafts


def load(path: Path) -> DraftState | None:
    """The state saved in `path`; None when missing or unreadable."""
    data = read_json(path)
    if data is None:
        return None
    names = {f.name for f in dataclasses.fields(DraftState)}
    try:
        return DraftState(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None


def waiting(checkout: Path, wanted: str = "") -> DraftState | None:
    """The draft waiting for an answer: the one named `wanted` (draft or plan id), else the
    most recently updated."""
    found: list[DraftState] = []
    for path in sorted(drafts_dir(checkout).glob("*/draft.json")):
        state = load(path)
        if state is not None and state.status == WAITING and state.open_question():
            found.append(state)
    if wanted:
        found = [s for s in found if wanted in (s.draft_id, s.plan_id)]
    return max(found, key=lambda s: s.updated, default=None)


def draft_id_for(goal: str, plan_id: str, source: str) -> str:
    """The draft's folder name: the plan id if given, else a slug of the PRD's name or the goal."""
    if plan_id:
        return plan_id
    base = Path(source).stem if source else " ".join(goal.split()[:4])
    slug = _NOT_ID.sub("-", base.lower()).strip("-")[:40].strip("-")
    return slug or "draft"
