"""The bus that hands run events to state, console and notifiers, and its `Subscriber`.

The runner publishes; `StateStore`, `Console` and `Notifier` subscribe. Handlers run
synchronously on the publishing thread, one event at a time (the bus holds a lock), so a
handler must be quick: anything slow (a notification) goes to its own worker.

A subscriber takes the events it cares about as methods named after them: a `Subscriber`'s
`on_task_done(event)` gets each `TaskDone` (`Event.handler` names the method), and events
it has no method for pass it by; it imports no list of event classes to test against.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from orchlib.events import Event
from orchlib.records import replace

Handler = Callable[[Event], None]


class Subscriber:
    """A bus subscriber whose methods are named after the events they take (`on_task_done`)."""

    def handle(self, event: Event) -> None:
        """The bus handler: the event's method, if this subscriber has one."""
        self.dispatch(event)

    def dispatch(self, event: Event) -> Any:
        """What the event's method returns; None when this subscriber has no such method."""
        method = getattr(self, event.handler, None)
        return None if method is None else method(event)


def scrubbed(event: Event, clean: Callable[[str], str]) -> Event:
    """`event` with `clean` applied to its text fields (strings and tuples of strings)."""
    changes: dict[str, Any] = {}
    for item in fields(event):
        value = getattr(event, item.name)
        if isinstance(value, str):
            new: Any = clean(value)
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            new = tuple(clean(v) for v in value)
        else:
            continue
        if new != value:
            changes[item.name] = new
    return replace(event, **changes) if changes else event


class Bus:
    """Publishes events to subscribers in order; a failing handler never stops the run.

    `clean`, when given, is applied to every event's text first (the secret filter)."""

    def __init__(self, clean: Callable[[str], str] | None = None) -> None:
        self._clean = clean
        self._handlers: list[Handler] = []
        self._syncs: list[Callable[[], None]] = []
        self._lock = threading.RLock()
        self.errors: list[str] = []

    def subscribe(self, handler: Handler, sync: Callable[[], None] | None = None) -> None:
        """Add a handler; it sees every later event. `sync` makes its effects durable."""
        with self._lock:
            self._handlers.append(handler)
            if sync is not None:
                self._syncs.append(sync)

    def sync(self) -> None:
        """Wait until every handler has made the events so far durable (outside the bus lock)."""
        for sync in list(self._syncs):
            sync()

    def publish(self, event: Event) -> None:
        """Hand the event to every handler, in subscription order."""
        if self._clean is not None:
            event = scrubbed(event, self._clean)
        with self._lock:
            for handler in self._handlers:
                try:
                    handler(event)
                except Exception as exc:  # a broken display must not kill agent runs
                    self.errors.append(f"{getattr(handler, '__qualname__', handler)!s}: {exc!r}")
