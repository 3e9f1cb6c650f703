"""Headless chromium driven over the DevTools protocol on a pipe, for the dashboard's tests.

`chromium --dump-dom` cannot wait for a page that keeps an event stream open (virtual time
stops while a fetch is pending), and Playwright is a large download for a few calls. The
DevTools protocol over `--remote-debugging-pipe` needs nothing but the browser: commands
are JSON objects separated by NUL bytes, written to its fd 3, answers read from its fd 4.

    with Chromium(tmp_path) as browser:
        page = browser.open("http://127.0.0.1:8765/")
        page.wait_for("document.querySelectorAll('tbody tr').length == 4")
        page.screenshot(Path("shot.png"))
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--remote-debugging-pipe",
]  # fmt: skip


def find() -> str | None:
    """The chromium executable, if installed (Debian's `chromium` package)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(Exception):
    """The browser answered with an error, went away, or did not answer in time."""


class Chromium:
    """One headless chromium process; `open()` gives pages."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 900) -> None:
        exe = find()
        if exe is None:
            raise BrowserError("chromium is not installed")
        self.width, self.height = width, height
        to_browser, self._out = _high(os.pipe())
        self._in, from_browser = _high(os.pipe())
        # The browser reads commands on fd 3 and writes answers on fd 4.
        script = (
            f'exec "$0" "$@" 3<&{to_browser} {to_browser}<&- 4>&{from_browser} {from_browser}>&-'
        )
        self.proc = subprocess.Popen(
            ["bash", "-c", script, exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        os.close(to_browser)
        os.close(from_browser)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the browser and its helper processes."""
        with contextlib.suppress(OSError, BrowserError):
            self.send("Browser.close", timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait()
        for fd in (self._in, self._out):
            with contextlib.suppress(OSError):
                os.close(fd)

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline, method)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def open(self, url: str) -> Page:
        """A new tab at `url` (the viewport set first, console messages recorded)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attach = {"targetId": target, "flatten": True}
        session = self.send("Target.attachToTarget", attach)["sessionId"]
        page = Page(self, session)
        page.send("Runtime.enable")
        page.send("Page.enable")
        metrics = {"width": self.width, "height": self.height, "deviceScaleFactor": 1,
                   "mobile": False}  # fmt: skip
        page.send("Emulation.setDeviceMetricsOverride", metrics)
        page.send("Page.navigate", {"url": url})
        return page

    def _next(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._in], [], [], max(0.0, left))
            if not ready:
                raise BrowserError(f"{waiting_for}: no answer from chromium in time")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise BrowserError("chromium closed its pipe")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        found: dict[str, Any] = json.loads(raw)
        return found


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved to fds >= 10, so the redirections to 3 and 4 cannot clobber them."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved[0], moved[1]


class Page:
    """A tab: evaluate JavaScript, wait for a condition, take a screenshot."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command for this tab."""
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        result = self.send("Runtime.evaluate", params)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """Evaluate `expression` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError as exc:  # e.g. the page is still loading: no body yet
                value, problem = None, str(exc)
            else:
                problem = ""
            if value:
                return value
            if time.monotonic() > deadline:
                lines = "\n".join([problem, *self.console()])
                raise BrowserError(f"not true within {timeout}s: {expression}\n{lines}")
            time.sleep(0.05)

    def console(self) -> list[str]:
        """The console messages and uncaught errors of this tab so far."""
        lines = []
        for event in self.browser.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                lines.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))
            elif event.get("method") == "Runtime.exceptionThrown":
                lines.append(str(params.get("exceptionDetails", {})))
        return lines

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        """A PNG of the page (all of it, or the viewport)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params)["data"]))
