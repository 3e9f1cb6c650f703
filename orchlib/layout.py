"""Where every runtime file of a checkout lives: one pure map of `.orch/`, no I/O.

    .orch/                              ORCH (private, ignored by git)
      doit.sqlite3                      doit's dependency DB (DB_NAME)
      run.lock                          one `doit` run at a time (RUN_LOCK)
      cache/                            plan cache (`plan-<slug>.json`), `mcp/` scratch,
                                        `doit-db.checked`
      drafts/<draftId>/                 `doit draft`'s files
      worktrees/<planId>/<taskId>       isolated tasks' git worktrees
      mcp-run.log                       the assistant's detached `doit`
      git.log                           git's output in the preflight
      <planId>/                         one plan's folder:
        state.json, state.journal, orchestration.md, state.lock, state.sync, notify.log
        stamps/<taskId>.json            completion stamps (doit targets); stamps.cache beside
        stamps/<taskId>.json.approval   a checked stamp waiting for `doit approve`
        logs/<taskId>.<n>.log           transcripts (and `.exit`, `.verify.log`, ... beside)
        logs/<taskId>.race.json         a race's winner, written before its merge
        logs/notify-<n>.out             a notification command's output
        prompts/<taskId>.<n>.md         rendered prompts

Everything here is a name or a join: it imports nothing, so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ORCH = ".orch"
DB_NAME = "doit.sqlite3"
RUN_LOCK = "run.lock"
CACHE = "cache"
DRAFTS = "drafts"
WORKTREES = "worktrees"
MCP_RUN_LOG = "mcp-run.log"
GIT_LOG = "git.log"
MCP_SCRATCH = "mcp"  # under cache/
DB_CHECKED = "doit-db.checked"  # under cache/: the DB's identity when it last passed its check

# A plan folder's files and folders.
STATE_FILE = "state.json"
JOURNAL_FILE = "state.journal"
MARKDOWN_FILE = "orchestration.md"
STATE_LOCK = "state.lock"
SYNC_FILE = "state.sync"
NOTIFY_LOG = "notify.log"
STAMPS_CACHE = "stamps.cache"
STAMPS = "stamps"
LOGS = "logs"
PROMPTS = "prompts"
PLAN_FILES = (STATE_FILE, JOURNAL_FILE, MARKDOWN_FILE, STATE_LOCK)
PLAN_FOLDERS = (STAMPS, LOGS, PROMPTS)

# Names (or name prefixes) of runtime files directly in `.orch/`: a plan folder must not be one.
RUNTIME_NAMES = (CACHE, DRAFTS, WORKTREES)
RUNTIME_PREFIXES = ("doit.", RUN_LOCK)


@dataclass(frozen=True)
class Layout:
    """The runtime paths of the checkout at `root`."""

    root: Path
    orch: Path = field(init=False, repr=False, compare=False)  # `.orch/`, joined once

    def __post_init__(self) -> None:
        object.__setattr__(self, "orch", self.root / ORCH)

    @property
    def db(self) -> Path:
        """doit's dependency DB."""
        return self.orch / DB_NAME

    @property
    def run_lock(self) -> Path:
        """The run lock."""
        return self.orch / RUN_LOCK

    @property
    def cache(self) -> Path:
        """`.orch/cache/`."""
        return self.orch / CACHE

    def plan_cache(self, slug: str) -> Path:
        """The cached plan of one plan file."""
        return self.cache / f"plan-{slug}.json"

    @property
    def mcp_scratch(self) -> Path:
        """The assistant's scratch folder for plans it checks."""
        return self.cache / MCP_SCRATCH

    @property
    def db_checked(self) -> Path:
        """The doit DB's identity when it last passed its check."""
        return self.cache / DB_CHECKED

    @property
    def drafts(self) -> Path:
        """`.orch/drafts/`."""
        return self.orch / DRAFTS

    @property
    def worktrees(self) -> Path:
        """`.orch/worktrees/`."""
        return self.orch / WORKTREES

    def worktree(self, plan_id: str, name: str) -> Path:
        """One task's (or racer's) worktree."""
        return self.worktrees / plan_id / name

    @property
    def git_log(self) -> Path:
        """Git's output while the preflight makes project folders repositories."""
        return self.orch / GIT_LOG

    @property
    def mcp_run_log(self) -> Path:
        """The output of the assistant's detached `doit`."""
        return self.orch / MCP_RUN_LOG

    def plan_dir(self, plan_id: str) -> Path:
        """`.orch/<planId>/`."""
        return self.orch / plan_id

    def state_file(self, plan_id: str) -> Path:
        """The plan's state.json."""
        return self.plan_dir(plan_id) / STATE_FILE

    def stamps(self, plan_id: str) -> Path:
        """The plan's stamps folder."""
        return self.plan_dir(plan_id) / STAMPS

    def stamp(self, plan_id: str, task_id: str) -> Path:
        """A task's completion stamp (its doit target)."""
        return stamp_in(self.orch, plan_id, task_id)

    def approval_stamp(self, plan_id: str, task_id: str) -> Path:
        """Where the stamp of a task waiting for `doit approve` waits, beside its place."""
        return self.stamps(plan_id) / f"{task_id}.json.approval"

    def stamps_cache(self, plan_id: str) -> Path:
        """What the plan's stamps said when last read."""
        return self.plan_dir(plan_id) / STAMPS_CACHE

    def logs(self, plan_id: str) -> Path:
        """The plan's transcripts folder."""
        return self.plan_dir(plan_id) / LOGS

    def log(self, plan_id: str, task_id: str, attempt: int, suffix: str = "log") -> Path:
        """The transcript (or another `suffix` file) of one attempt."""
        return self.orch.joinpath(plan_id, LOGS, f"{task_id}.{attempt}.{suffix}")

    def race_record(self, plan_id: str, task_id: str) -> Path:
        """Where a race's winner is written down before its merge."""
        return self.logs(plan_id) / f"{task_id}.race.json"

    def notify_log(self, plan_id: str) -> Path:
        """Where failed notifications are said."""
        return self.plan_dir(plan_id) / NOTIFY_LOG

    def notify_out(self, plan_id: str, number: int) -> Path:
        """The output of one notification command."""
        return self.logs(plan_id) / f"notify-{number}.out"

    def prompts(self, plan_id: str) -> Path:
        """The plan's rendered prompts folder."""
        return self.plan_dir(plan_id) / PROMPTS

    def prompt(self, plan_id: str, task_id: str, attempt: int) -> Path:
        """The rendered prompt of one attempt."""
        return self.orch.joinpath(plan_id, PROMPTS, f"{task_id}.{attempt}.md")


def stamp_in(orch_dir: Path, plan_id: str, task_id: str) -> Path:
    """A task's completion stamp in the `.orch/` folder `orch_dir` (`Layout.stamp`, without
    building a Layout: the up-to-date rule asks for stamps thousands of times)."""
    return orch_dir.joinpath(plan_id, STAMPS, f"{task_id}.json")


def of_orch(orch_dir: Path) -> Layout:
    """The layout whose `.orch/` is `orch_dir`."""
    return Layout(orch_dir.parent)
