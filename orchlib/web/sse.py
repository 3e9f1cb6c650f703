"""Server-sent events: their wire format, one browser's queue, and a log followed as events."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

from orchlib.redact import Pieces, Secrets

RETRY_MS = 1000  # the browser reconnects after 1 s, then refetches what it shows
KEEPALIVE = 15.0  # a comment line now and then: proxies and browsers drop silent streams
QUEUE_MAX = 50_000  # a browser this far behind is dropped; it reconnects and refetches
LOG_POLL = 0.2  # seconds between looks at a growing log
LOG_EVENT_MAX = 256 * 1024  # bytes of log per event


def event(data: object, name: str | None = None, event_id: str | None = None) -> str:
    """One SSE message; the JSON text of `data` never holds a raw line break."""
    head = f"event: {name}\n" if name else ""
    head += f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


class Subscriber:
    """The events waiting for one browser; filled on the event loop's thread only."""

    def __init__(self) -> None:
        self._items: deque[str] = deque()
        self._ready = asyncio.Event()
        self.closed = False

    def push(self, text: str) -> None:
        """Queue an event; a subscriber that falls too far behind is closed."""
        if len(self._items) >= QUEUE_MAX:
            self.close()
            return
        self._items.append(text)
        self._ready.set()

    def close(self) -> None:
        """End this subscriber's stream (server shutting down, or too far behind)."""
        self.closed = True
        self._ready.set()

    async def take(self, timeout: float) -> list[str]:
        """Every queued event, waiting up to `timeout` for the first."""
        if not self._items and not self.closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        return items


async def stream(subscriber: Subscriber, done: Callable[[], None]) -> AsyncIterator[str]:
    """The text of an event stream for one subscriber, until it is closed."""
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while not subscriber.closed:
            batch = await subscriber.take(KEEPALIVE)
            if subscriber.closed:
                return
            yield "".join(batch) if batch else ": keep-alive\n\n"
    finally:
        done()


async def follow_log(
    handle: BinaryIO,
    start: int,
    over: Callable[[], bool],
    stopping: Callable[[], bool],
    secrets: Secrets | None = None,
) -> AsyncIterator[str]:
    """An open log as `log` events from byte `start` (each event's id is the offset reached,
    so a reconnecting browser resumes there) until the attempt is `over()`; then one `end`
    event. The file stays the one opened (and checked), and is closed at the end. Secret
    values read `[secret:NAME]` (an end that may begin one waits for the next read)."""
    with handle:
        async for text in _follow(handle, start, over, stopping, secrets):
            yield text


async def _follow(
    handle: BinaryIO,
    start: int,
    over: Callable[[], bool],
    stopping: Callable[[], bool],
    secrets: Secrets | None,
) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pieces = Pieces(secrets or Secrets())
    offset, quiet_since = start, time.monotonic()
    yield f"retry: {RETRY_MS}\n\n"
    while not stopping():
        ended = over()  # asked before reading: the last output before the end is not missed
        data = await asyncio.to_thread(_read, handle, offset, LOG_EVENT_MAX)
        if data:
            offset += len(data)
            text = pieces.feed(decoder.decode(data))
            done = offset - len(decoder.getstate()[0]) - len(pieces.held.encode())
            yield event({"text": text, "offset": done}, "log", str(done))
            quiet_since = time.monotonic()
            continue
        if ended:
            if pieces.held:
                yield event({"text": pieces.feed("", final=True), "offset": offset}, "log")
            yield event({"offset": offset}, "end")
            return
        if time.monotonic() - quiet_since > KEEPALIVE:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(LOG_POLL)


def _read(handle: BinaryIO, offset: int, limit: int) -> bytes:
    try:
        return os.pread(handle.fileno(), limit, offset)
    except (OSError, ValueError):  # ValueError: closed under us at shutdown
        return b""
