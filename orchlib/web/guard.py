"""The dashboard's lock (DESIGN §12): the Host header, the token on every request, and
the extra conditions of a write, checked before any route sees the request.

- `Host` must name this machine's loopback, the bound address or an `--allow-host` name:
  a web page elsewhere cannot reach the API through DNS rebinding, whatever the bind (400).
- The token printed at start-up is needed by every request, the page and its event streams
  included: `?token=`, `Authorization: Bearer`, or the HttpOnly, SameSite=Strict cookie set
  when the page is opened with `?token=` (403; a browser gets a page saying where the
  address is). Compared in constant time.
- A write (any method but GET / HEAD) needs `Content-Type: application/json` (415), and an
  `Origin`, when sent, must be the page's own `scheme://host:port` (403): no form of
  another site can post to it.
"""

from __future__ import annotations

import hmac
import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READS = ("GET", "HEAD")
FORBIDDEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>orchlib dashboard: token needed</title>
</head><body><h1>This dashboard needs its token</h1>
<p>Open the address <code>doit serve</code> printed when it started, the line</p>
<pre>orchlib: open http://{host}/?token=...</pre>
<p>(the token changes at every start: start <code>doit serve</code> again to get a new one).
After the first visit this browser keeps it in a cookie for this server.</p>
</body></html>
"""


@dataclass(frozen=True)
class Lock:
    """What a request must match: the token, the host names, the cookie's name."""

    token: str
    hosts: frozenset[str]
    cookie: str

    @classmethod
    def make(cls, token: str, hosts: Iterable[str], port: int) -> Lock:
        """A lock for a server on `port`; each port has its own cookie (cookies ignore ports)."""
        names = frozenset(host_name(h) for h in hosts if h)
        return cls(token, names, f"orchlib_token_{port}")

    def host_allowed(self, host: str) -> bool:
        """Whether a `Host` header (with or without a port) names an allowed host."""
        return bool(host) and host_name(host) in self.hosts

    def matches(self, given: str | None) -> bool:
        """Whether `given` is the token, compared in constant time."""
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


def host_name(host: str) -> str:
    """The name part of a Host header or address, lower-cased: `[::1]:80` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host  # a bare IPv6 address or a name without a port


def locked(app: ASGIApp, lock: Lock) -> ASGIApp:
    """`app` behind `lock`: refused requests never reach it."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not lock.host_allowed(host):
            await _json(send, 400, f"Host {host!r} is not served here: start doit serve "
                                   "with --allow-host NAME for another name")  # fmt: skip
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        by_query = (query.get("token") or [None])[-1]
        by_cookie = cookie_parser(headers.get("cookie", "")).get(lock.cookie)
        if not any(lock.matches(given) for given in (by_query, _bearer(headers), by_cookie)):
            await _refuse(send, scope, headers, host)
            return
        if scope["method"] not in READS:
            refused = _write_refused(scope, headers, host)
            if refused is not None:
                await _json(send, *refused)
                return
        if lock.matches(by_query):  # the page opened from the printed URL: keep it in a cookie
            send = _with_cookie(send, lock)
        await app(scope, receive, send)

    return guarded


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else None


def _write_refused(scope: Scope, headers: dict[str, str], host: str) -> tuple[int, str] | None:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        return 415, "a write needs Content-Type: application/json"
    origin = headers.get("origin")
    own = f"{scope.get('scheme', 'http')}://{host}".lower()
    if origin is not None and origin.strip().lower() != own:
        return 403, f"a write from another origin ({origin}) is refused"
    return None


def _with_cookie(send: Send, lock: Lock) -> Send:
    cookie = f"{lock.cookie}={lock.token}; Path=/; HttpOnly; SameSite=Strict"

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
        await send(message)

    return sending


async def _refuse(send: Send, scope: Scope, headers: dict[str, str], host: str) -> None:
    """403: a page saying where the address is for a browser, one JSON line otherwise."""
    if scope["path"] == "/" or "text/html" in headers.get("accept", ""):
        body = FORBIDDEN_PAGE.format(host=html.escape(host)).encode()
        await _send(send, 403, body, b"text/html; charset=utf-8")
        return
    await _json(send, 403, "needs the token printed by `doit serve` (?token=...)")


async def _json(send: Send, status: int, message: str) -> None:
    await _send(send, status, json.dumps({"error": message}).encode(), b"application/json")


async def _send(send: Send, status: int, body: bytes, media: bytes) -> None:
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
