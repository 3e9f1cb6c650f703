"""`doit serve` run as a real process, and a plain HTTP / server-sent-events client for it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Server:
    """`python -m doit serve --port 0` in a checkout; `url` and `token` from what it prints."""

    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "doit", "serve", "--port", "0", *args], cwd=root,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self.printed = self._read_until_url()
        found = re.search(r"(http://[^/\s]+)/\?token=(\S+)", self.printed)
        assert found, self.printed
        self.base, self.token = found.group(1), found.group(2)
        self.host, self.port = self.base[len("http://") :].rsplit(":", 1)
        self.address = self.host if _resolves(self.host) else "127.0.0.1"  # an --allow-host name

    def _read_until_url(self, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.2))
                if "?token=" in seen[-1]:
                    return "".join(seen)
            if self.proc.poll() is not None and lines.empty():
                break
        raise AssertionError(f"doit serve printed no URL: {seen}")

    @property
    def url(self) -> str:
        return f"{self.base}/?token={self.token}"

    def get(self, path: str, headers: dict[str, str] | None = None, auth: bool = True) -> Reply:
        return self.request("GET", path, headers=headers, auth=auth)

    def post(
        self, path: str, data: object, headers: dict[str, str] | None = None, auth: bool = True
    ) -> Reply:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        head = {"Content-Type": "application/json", **(headers or {})}
        return self.request("POST", path, body, head, auth)

    def authorized(self, path: str, headers: dict[str, str] | None, auth: bool) -> dict[str, str]:
        """`headers` plus the token as a Bearer header, unless `auth` is off or it is given."""
        given = {k.lower() for k in headers or {}}
        if not auth or "token=" in path or given & {"authorization", "cookie"}:
            return dict(headers or {})
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def request(
        self, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None, auth: bool = True,
    ) -> Reply:  # fmt: skip
        """One request with the path sent exactly as given (no client-side normalising);
        with the token as a Bearer header unless `auth` is off."""
        conn = http.client.HTTPConnection(self.address, int(self.port), timeout=30)
        try:
            conn.request(method, path, body=body, headers=self.authorized(path, headers, auth))
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def events(self, path: str = "/events", headers: dict[str, str] | None = None) -> Events:
        return Events(f"{self.base}{path}", self.authorized(path, headers, True))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> tuple[int, str]:
        """Send `sig`, wait; the exit code and stderr."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode, err


@dataclass
class Event:
    name: str
    data: Any
    id: str | None = None
    at: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)  # to compare with the state's timestamps


class Events:
    """An open event stream read on a thread; events arrive in `queue`."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.conn.request("GET", url[len(f"http://{parts.netloc}") :],
                          headers={"Accept": "text/event-stream", **headers})  # fmt: skip
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        self.queue: queue.Queue[Event | None] = queue.Queue()
        self.seen: list[Event] = []
        self._returned: set[int] = set()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name, data, event_id, buffer = "message", [], None, b""
        try:
            # read1: whatever has arrived (readline on a chunked response may sit on the end
            # of a chunk until the next one comes).
            while chunk := self.response.read1(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8")
                    if not line:
                        if data:
                            self.queue.put(Event(name, json.loads("\n".join(data)), event_id))
                        name, data, event_id = "message", [], None
                    elif line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line.startswith("id: "):
                        event_id = line[4:]
        except Exception:  # the stream was closed under us, or the server went away
            pass
        self.conn.close()
        self.queue.put(None)

    def until(self, predicate: Any, timeout: float = 30.0) -> Event:
        """The first event (read before or now) that matches and was not returned yet.

        Every event read is kept in `seen`, so waiting for B then A finds an A that came
        before B."""
        for index, item in enumerate(self.seen):
            if index not in self._returned and predicate(item):
                self._returned.add(index)
                return item
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event in {timeout}s; seen: {self.names()}")
            try:
                item = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            if item is None:
                raise AssertionError(f"stream ended; seen: {self.names()}")
            self.seen.append(item)
            if predicate(item):
                self._returned.add(len(self.seen) - 1)
                return item

    def names(self) -> list[str]:
        return [f"{e.name}:{json.dumps(e.data)[:120]}" for e in self.seen]

    def close(self) -> None:
        # Shut the socket down first: the reader thread sits in a read that close() would
        # wait for (until the next keep-alive).
        with contextlib.suppress(OSError, AttributeError):
            self.conn.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        self._thread.join(timeout=5)
        self.conn.close()


@contextlib.contextmanager
def serving(root: Path, *args: str) -> Iterator[Server]:
    server = Server(root, *args)
    try:
        yield server
    finally:
        server.stop()


def http_error(url: str) -> int:
    try:
        urllib.request.urlopen(url, timeout=10)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def _resolves(host: str) -> bool:
    """Whether `host` has an address here (a made-up --allow-host name has none)."""
    try:
        socket.getaddrinfo(host.strip("[]"), None)
    except OSError:
        return False
    return True
