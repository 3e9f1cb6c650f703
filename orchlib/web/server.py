"""Run the dashboard: bind, print the URL with its token, serve with uvicorn until stopped."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass
from typing import TextIO

import uvicorn

from orchlib.checkout import Checkout
from orchlib.errors import ConfigError
from orchlib.web.app import create_app, secured
from orchlib.web.files import Source
from orchlib.web.guard import Lock, locked
from orchlib.web.watch import Watcher

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeOptions:
    """What `doit serve` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8765
    allow_hosts: tuple[str, ...] = ()  # more names the Host header may carry

    def hosts(self) -> tuple[str, ...]:
        """Every name a request's Host may carry: loopback, the bound address, the allowed."""
        return (*LOOPBACK_HOSTS, self.host, *self.allow_hosts)

    def shown(self) -> str:
        """The host of the printed URL: off loopback, the first --allow-host name (the one
        other machines reach it by; 0.0.0.0 is no address to open)."""
        return self.allow_hosts[0] if self.allow_hosts and not is_loopback(self.host) else self.host


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); ConfigError in one line if impossible."""
    try:
        family = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"orchlib: cannot listen on {host}:{port}: {reason}") from None


def url(host: str, port: int, token: str) -> str:
    """The page's address with the token every request needs."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/?token={token}"


class _Server(uvicorn.Server):
    """uvicorn's server that ends the event streams first, so Ctrl+C stops it at once."""

    def __init__(self, config: uvicorn.Config, watcher: Watcher) -> None:
        super().__init__(config)
        self._watcher = watcher

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._watcher.close()
        await super().shutdown(sockets=sockets)


def serve(checkout: Checkout, options: ServeOptions, out: TextIO, err: TextIO) -> int:
    """Serve the dashboard until SIGINT (exit 130) or SIGTERM."""
    sock = listen(options.host, options.port)
    token = secrets.token_urlsafe(18)
    source = Source(checkout)
    watcher = Watcher(source)
    port = sock.getsockname()[1]
    app = locked(create_app(source, watcher), Lock.make(token, options.hosts(), port))
    config = uvicorn.Config(
        secured(app), log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    if not is_loopback(options.host):
        names = ", ".join(dict.fromkeys((options.host, *options.allow_hosts)))
        err.write(
            f"orchlib: warning: listening on {options.host}, not only on this machine (plain "
            f"HTTP: the token is the only lock); it answers to loopback and {names}; "
            "add other names with --allow-host NAME\n"
        )
    plans = len(source.plan_ids())
    counted = f"{plans} plan" + ("" if plans == 1 else "s")
    out.write(f"orchlib: dashboard of {checkout.root} ({counted}), Ctrl+C to stop\n")
    out.write(f"orchlib: open {url(options.shown(), port, token)}\n")
    out.flush()
    try:
        _Server(config, watcher).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it shut down for
        return 130
    finally:
        sock.close()
    return 0
