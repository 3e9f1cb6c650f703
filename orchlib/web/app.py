"""The dashboard's ASGI app: the page, the JSON API of DESIGN §12 and its event streams.

Every request passes `guard.locked` first (Host, token, write conditions). Every response
forbids loading anything from elsewhere (Content-Security-Policy), so the page works
offline and a plan's text can never pull in a script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchlib.errors import OrchError
from orchlib.state.model import Status
from orchlib.state.words import table_json
from orchlib.web import sse
from orchlib.web.files import Source, UnknownTask, chunks, is_ident, summary
from orchlib.web.watch import Watcher

PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
}
CSP = b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
SECURITY_HEADERS = [
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the token in the page's URL goes nowhere
]  # fmt: skip
MAX_BODY = 64 * 1024
LOG_TAIL = 64 * 1024  # what the log stream starts with, unless told otherwise


def create_app(source: Source, watcher: Watcher) -> Starlette:
    """The app, without its lock (`guard.locked` wraps it)."""
    api = _Api(source, watcher)
    routes = [
        *(Route(path, _static(*page)) for path, page in PAGES.items()),
        Route("/api/words", _words),
        Route("/api/plans", api.plans),
        Route("/api/plans/{plan_id}", api.plan),
        Route("/api/plans/{plan_id}/tasks/{task_id}/log", api.log),
        Route("/api/plans/{plan_id}/tasks/{task_id}/log/events", api.log_events),
        Route("/api/plans/{plan_id}/tasks/{task_id}/answer", api.answer, methods=["POST"]),
        Route("/api/plans/{plan_id}/tasks/{task_id}/approve", api.approve, methods=["POST"]),
        Route("/api/plans/{plan_id}/tasks/{task_id}/reject", api.reject, methods=["POST"]),
        Route("/events", api.events),
    ]
    return Starlette(routes=routes, lifespan=api.lifespan)


def secured(app: ASGIApp) -> ASGIApp:
    """`app` with the security headers on every response."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await app(scope, receive, send_secured)

    return wrapped


def _static(name: str, media_type: str) -> Any:
    body = resources.files("orchlib.web").joinpath("static", name).read_bytes()

    async def page(request: Request) -> Response:
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return page


async def _words(request: Request) -> Response:
    """Each status's word and tone, from the table every screen reads (state/words.py)."""
    return JSONResponse(table_json())


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Api:
    """The handlers; they share the source and the watcher."""

    def __init__(self, source: Source, watcher: Watcher) -> None:
        self.source, self.watcher = source, watcher

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        poller = asyncio.create_task(self.watcher.run())
        try:
            yield
        finally:
            self.watcher.close()
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def plans(self, request: Request) -> Response:
        lines = []
        for plan_id in await asyncio.to_thread(self.source.plan_ids):
            data = await asyncio.to_thread(self.source.state, plan_id)
            if data is not None:
                lines.append({**summary(plan_id, data), "updatedAt": data.get("updatedAt", "")})
        return JSONResponse(lines)

    async def plan(self, request: Request) -> Response:
        plan_id = request.path_params["plan_id"]
        data = await asyncio.to_thread(self.source.state, plan_id) if is_ident(plan_id) else None
        if data is None:
            return _error(404, f"no plan {plan_id!r}")
        return JSONResponse(data)

    async def log(self, request: Request) -> Response:
        found = await self._log_file(request)
        if isinstance(found, Response):
            return found
        handle, attempt = found
        size = os.fstat(handle.fileno()).st_size
        tail = _number(request.query_params.get("tail"))
        start = 0 if tail is None else max(0, size - tail)
        headers = {"X-Orch-Attempt": str(attempt), "X-Orch-Log-Size": str(size),
                   "X-Orch-Log-Start": str(start), "Cache-Control": "no-cache"}  # fmt: skip
        return StreamingResponse(
            chunks(handle, start, size, self.source.checkout.secrets),
            media_type="text/plain; charset=utf-8",
            headers=headers,
        )

    async def log_events(self, request: Request) -> Response:
        found = await self._log_file(request)
        if isinstance(found, Response):
            return found
        handle, attempt = found
        plan_id, task_id = request.path_params["plan_id"], request.path_params["task_id"]
        tail = _number(request.query_params.get("tail"))
        resume = _number(request.headers.get("last-event-id"))
        size = os.fstat(handle.fileno()).st_size
        start = (
            resume if resume is not None else max(0, size - (LOG_TAIL if tail is None else tail))
        )

        def over() -> bool:
            # Only a record at or past this attempt can end it: the watcher may not have
            # seen the attempt start yet (then the stream waits, as for a live one).
            record = self.watcher.task(plan_id, task_id) or {}
            latest = record.get("attempt")
            latest = latest if isinstance(latest, int) else 0
            return latest > attempt or (
                latest == attempt and record.get("status") != Status.IN_PROGRESS.value
            )

        def stopping() -> bool:
            return self.watcher.stopping

        secrets = self.source.checkout.secrets
        return _event_stream(sse.follow_log(handle, min(start, size), over, stopping, secrets))

    async def events(self, request: Request) -> Response:
        subscriber = self.watcher.subscribe()
        return _event_stream(sse.stream(subscriber, lambda: self.watcher.unsubscribe(subscriber)))

    async def answer(self, request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            return _error(400, 'send JSON {"answer": "..."}')
        text = body.get("answer")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "the answer is empty")
        plan_id, task_id = request.path_params["plan_id"], request.path_params["task_id"]
        try:
            message = await asyncio.to_thread(self.source.answer, plan_id, task_id, text)
        except UnknownTask as exc:
            return _error(404, str(exc))
        except OrchError as exc:  # no open question, plans invalid now, lock busy
            return _error(409, exc.lines()[0])
        return JSONResponse({"planId": plan_id, "taskId": task_id, "message": message})

    async def approve(self, request: Request) -> Response:
        """`doit approve` from the page (DESIGN §16): the same code as the command."""
        return await self._decide(request, None)

    async def reject(self, request: Request) -> Response:
        """`doit reject` from the page: JSON {"feedback": "what to change"}."""
        return await self._decide(request, "feedback")

    async def _decide(self, request: Request, key: str | None) -> Response:
        body = await _json_body(request)
        if body is None:
            return _error(400, "send a JSON object" + (f' {{"{key}": "..."}}' if key else ""))
        text = body.get(key) if key else ""
        if key and (not isinstance(text, str) or not text.strip()):
            return _error(400, f'send JSON {{"{key}": "what to change"}}')
        plan_id, task_id = request.path_params["plan_id"], request.path_params["task_id"]
        try:
            message = await asyncio.to_thread(self.source.decide, plan_id, task_id, str(text))
        except UnknownTask as exc:
            return _error(404, str(exc))
        except OrchError as exc:  # not waiting for approval, a run is going, a conflict
            return _error(409, exc.lines()[0])
        return JSONResponse({"planId": plan_id, "taskId": task_id, "message": message})

    async def _log_file(self, request: Request) -> tuple[Any, int] | Response:
        plan_id, task_id = request.path_params["plan_id"], request.path_params["task_id"]
        attempt = _number(request.query_params.get("attempt"))
        for key in ("attempt", "tail"):
            if key in request.query_params and _number(request.query_params[key]) is None:
                return _error(400, f"{key} must be a whole number")
        if attempt == 0:
            return _error(400, "attempt numbers start at 1")
        review = request.query_params.get("review") == "1"  # the reviewer's transcript (§16)
        found = await asyncio.to_thread(self.source.log_file, plan_id, task_id, attempt, review)
        if found is None:
            which = f"attempt {attempt}" if attempt else "any attempt"
            return _error(404, f"no log of {plan_id}:{task_id} ({which})")
        return found


def _event_stream(text: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(text, media_type="text/event-stream", headers=headers)


def _number(value: str | None) -> int | None:
    """A whole number >= 0 from a query parameter or header, None when absent or not one."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


async def _json_body(request: Request) -> dict[str, Any] | None:
    raw = b""
    async for part in request.stream():  # read at most MAX_BODY: a client cannot fill memory
        raw += part
        if len(raw) > MAX_BODY:
            return None
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
