"""The MCP server of `doit mcp`: the tools of `tools.py` on the official SDK, over stdio.

Every result and every error passes `shown` (the secret filter, DESIGN §13). A failure is
an MCP tool error carrying orchlib's one-line message(s), never a traceback: the SDK logs a
tool error at INFO (below the level set here) and only an unexpected exception with its
traceback, and none reaches it. The SDK's stdio transport moves file descriptor 1 to stderr
while it serves, so a stray print cannot corrupt the protocol stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

import orchlib
from orchlib.assistant.tools import Tools
from orchlib.errors import OrchError, error_line

INSTRUCTIONS = """\
orchlib runs plans of work (plans/*.yaml in this checkout) by dispatching each task to a
coding agent, Makefile-style: finished tasks are skipped on the next run. Write a plan
(validate_plan, then write_plan), start it (run), watch it (status, task_log), answer an
agent's question (answer, then run again), approve or reject a task waiting in APPROVAL
(approve, reject), stop it (stop_run). Task names are PLAN:TASK.
"""


def build(root: Path) -> MCPServer:
    """The server with orchlib's tools, rooted at `root`."""
    tools = Tools(root)
    server: MCPServer = MCPServer(name="orchlib", version=orchlib.__version__,
                                  instructions=INSTRUCTIONS, log_level="WARNING")  # fmt: skip

    @server.tool()
    def list_plans() -> dict[str, Any]:
        """Every plan of the checkout: planId, file, summary, status, done/total and task
        counts by state."""
        return _call(tools, tools.list_plans)

    @server.tool()
    def validate_plan(text: str, format: Literal["yaml", "json"] = "yaml") -> dict[str, Any]:
        """Check a plan's text as `doit` checks plans/ (schema, ids, dependsOn, cycles, plan
        ids used by other plans): {"valid": bool, "errors": ["file:line:col: key: message"]}."""
        return _call(tools, tools.validate_plan, text, format)

    @server.tool()
    def write_plan(plan_id: str, text: str, force: bool = False) -> dict[str, Any]:
        """Write a plan (YAML or JSON text whose planId is plan_id) to plans/<plan_id>.yaml,
        only when it is valid; an existing file is replaced only with force=true."""
        return _call(tools, tools.write_plan, plan_id, text, force)

    @server.tool()
    def run(targets: Sequence[str] = (), executor: str | None = None) -> dict[str, Any]:
        """Start `doit [targets]` in the background (targets: plan ids or PLAN:TASK; none runs
        every plan); returns {"pid"}. Refused while another run is going. Its output goes to
        .orch/mcp-run.log; follow it with status and task_log."""
        return _call(tools, tools.run, list(targets), executor)

    @server.tool()
    def status(target: str | None = None) -> dict[str, Any]:
        """What `doit status --json [target]` prints: each plan's tasks with state, progress,
        attempt, elapsed, cost, last line (the question of a waiting task), and totals."""
        return _call(tools, tools.status, target)

    @server.tool()
    def task_log(task: str, tail: int = 200) -> dict[str, Any]:
        """The last `tail` lines of task PLAN:TASK's latest transcript, decoded to text."""
        return _call(tools, tools.task_log, task, tail)

    @server.tool()
    def answer(task: str, text: str) -> dict[str, Any]:
        """Answer the question of waiting task PLAN:TASK; call run again to resume it."""
        return _call(tools, tools.answer, task, text)

    @server.tool()
    def approve(task: str) -> dict[str, Any]:
        """Approve task PLAN:TASK, waiting in APPROVAL (`approve: true`): its work is merged
        and stamped, its dependents run on the next run."""
        return _call(tools, tools.approve, task)

    @server.tool()
    def reject(task: str, text: str) -> dict[str, Any]:
        """Reject task PLAN:TASK, waiting in APPROVAL: the next run runs it again with `text`
        (what to change) as feedback, using no retry."""
        return _call(tools, tools.reject, task, text)

    @server.tool()
    def stop_run() -> dict[str, Any]:
        """Interrupt the running `doit` as Ctrl-C does (its agents are stopped, their tasks
        show interrupted) and wait until it has ended."""
        return _call(tools, tools.stop_run)

    return server


def serve(root: Path) -> None:
    """Serve the tools on stdin/stdout until the client closes them."""
    build(root).run("stdio")


def _call(tools: Tools, tool: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """The tool's result with every text shown; any failure a ToolError of one-line messages."""
    try:
        found = tool(*args)
    except Exception as exc:  # never a traceback: the assistant gets orchlib's lines
        raise ToolError(tools.door().shown(_message(exc))) from None
    result: dict[str, Any] = tools.door().shown_value(found)
    return result


def _message(exc: Exception) -> str:
    """orchlib's own lines for a failure; an OS error names its file; a bug is one line."""
    if isinstance(exc, OrchError):
        return "\n".join(error_line(line) for line in exc.lines())
    if isinstance(exc, OSError):  # a full disk, a read-only checkout
        return f"orchlib: {exc.filename or ''}: {exc.strerror or exc}"
    return f"orchlib: internal error: {type(exc).__name__}: {exc}"
