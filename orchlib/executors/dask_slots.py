"""The worker plugin that gives a worker started without `--resources agent=N` one agent slot.

Its own module: importing `distributed` costs a third of a second, paid only by a run that
reaches a cluster.
"""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin


class AgentSlots(WorkerPlugin):
    """Gives a worker started without `--resources agent=N` one agent slot."""

    name = "orchlib-agent-slots"

    async def setup(self, worker: Any) -> None:
        """Runs on every worker, present and future."""
        if "agent" not in worker.state.total_resources:
            await worker.set_resources(agent=1)
