"""Changes of the state files, as events: one per task state change, for every browser.

Why the server polls `stat()` instead of using inotify: a run replaces state.json by a
rename at every write, so a watch on the file is gone after the first write; one would
have to watch each plan folder, and `.orch/` for plans that start later, on Linux only. A
`stat()` of each plan's state.json ten times a second costs microseconds, works on every
system, and its 100 ms fit well within the ~1 s the page promises. The file is parsed
only when it was replaced, in a worker thread, so the event loop keeps serving.

Events (the `data` is JSON):
- default (`message`): `{"planId", "taskId", "status"}`, one per change of a task's status;
- `update`: `{"planId", "taskId", "status", "task"}` with the task's whole state.json record,
  whenever anything in it changed (progress, attempt, an answer, ...), sent first;
- `plan`: the plan's line of `GET /api/plans` when it changed, with `"reload": true` when
  its tasks or phases changed (the page then refetches the plan).
"""

from __future__ import annotations

import asyncio
from typing import Any

from orchlib.web.files import Source, summary
from orchlib.web.sse import Subscriber, event

POLL_SECONDS = 0.1

Record = dict[str, Any]


class Watcher:
    """Polls every plan's state.json and publishes the differences to its subscribers."""

    def __init__(self, source: Source, interval: float = POLL_SECONDS) -> None:
        self.source, self.interval = source, interval
        self.stopping = False
        self._seen: dict[str, object] = {}
        self._tasks: dict[str, dict[str, Record]] = {}
        self._shape: dict[str, object] = {}
        self._plans: dict[str, Record] = {}
        self._subscribers: set[Subscriber] = set()
        self.poll()  # what is on disk at start is the baseline, not news

    def task(self, plan_id: str, task_id: str) -> Record | None:
        """The task's record as last read."""
        return self._tasks.get(plan_id, {}).get(task_id)

    def subscribe(self) -> Subscriber:
        """A new browser's queue (on the event loop's thread)."""
        subscriber = Subscriber()
        if self.stopping:
            subscriber.close()
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a browser that went away."""
        self._subscribers.discard(subscriber)

    def close(self) -> None:
        """Stop polling and end every stream (so the server stops at once)."""
        self.stopping = True
        for subscriber in list(self._subscribers):
            subscriber.close()

    async def run(self) -> None:
        """Poll until closed, publishing every change."""
        while not self.stopping:
            for text in await asyncio.to_thread(self.poll):
                for subscriber in list(self._subscribers):
                    subscriber.push(text)
            await asyncio.sleep(self.interval)

    def poll(self) -> list[str]:
        """The events for every change since the last poll."""
        found: list[str] = []
        for plan_id in self.source.plan_ids():
            seen = self.source.state_id(plan_id)
            if plan_id in self._seen and self._seen[plan_id] == seen:
                continue
            self._seen[plan_id] = seen
            data = self.source.state(plan_id)
            if data is not None:
                found.extend(self._diff(plan_id, data))
        return found

    def _diff(self, plan_id: str, data: Record) -> list[str]:
        tasks = _records(data)
        old = self._tasks.get(plan_id, {})
        found: list[str] = []
        for task_id, record in tasks.items():
            before = old.get(task_id)
            if before == record:
                continue
            status = str(record.get("status", ""))
            name = {"planId": plan_id, "taskId": task_id, "status": status}
            found.append(event({**name, "task": record}, "update"))
            if before is None or before.get("status") != status:
                found.append(event(name))
        self._tasks[plan_id] = tasks
        shape = (list(tasks), data.get("phases"))
        line = summary(plan_id, data)
        reload = self._shape.get(plan_id, shape) != shape
        if reload or self._plans.get(plan_id) != line:
            found.append(event({**line, "reload": reload}, "plan"))
        self._shape[plan_id], self._plans[plan_id] = shape, line
        return found


def _records(data: Record) -> dict[str, Record]:
    items = data.get("tasks")
    return {
        t["id"]: t
        for t in (items if isinstance(items, list) else [])
        if isinstance(t, dict) and isinstance(t.get("id"), str)
    }
