"""The door in front of Socket.IO: a WSGI middleware that answers every `/socket.io/` request before
Engine.IO sees it, and a guard on the packets of the sockets it lets in.

- No valid session (webapp.auth.current_account: signed cookie and current session epoch) or a
  foreign Origin: 401/403 at once. Authentication used to wait for the Socket.IO namespace connect,
  so an anonymous WebSocket that never sent one kept its worker thread for as long as it liked.
- Caps on the open sockets of one account, one client address and the whole process (each socket
  holds a worker thread, simple-websocket): 429 beyond them, and the process keeps threads for HTTP.
- A malformed packet (`42[`, `451-[`, a frame that is not Engine.IO) closes its socket and writes one
  log line, at most one a minute per process with the count of the others, never a traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from webapp.settings import SocketLimits
from webapp.store import DataUnavailable

LOG = logging.getLogger(__name__)
PATH = "/socket.io"


class RateLimitedLog:
    """One warning per `period_s`; the ones in between are counted into the next."""

    def __init__(self, logger: logging.Logger, period_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.period_s, self.clock = logger, period_s, clock
        self._lock = threading.Lock()
        self.last, self.suppressed = -1e18, 0

    def warning(self, message: str, *args: Any) -> bool:
        """Logged now (True), or counted for the next line (False)."""
        with self._lock:
            now = self.clock()
            if now - self.last < self.period_s:
                self.suppressed += 1
                return False
            self.last, suppressed, self.suppressed = now, self.suppressed, 0
        self.logger.warning(message + " (%d more since the last such line)", *args, suppressed)
        return True


MALFORMED = RateLimitedLog(LOG)


def describe(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text[:80]}" if text else type(exc).__name__


class OpenSockets:
    """Counts of open sockets by account and client address, and the admission check."""

    def __init__(self, limits: SocketLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self.accounts: Counter[str] = Counter()
        self.addresses: Counter[str] = Counter()
        self.total = 0

    def admit(self, account: str, address: str) -> str | None:
        """Count one more socket, or the reason it is refused."""
        with self._lock:
            if self.total >= self.limits.total:
                return "this server holds as many live connections as it can; try again later"
            if self.accounts[account] >= self.limits.per_account:
                return f"at most {self.limits.per_account} live connections per account"
            if self.addresses[address] >= self.limits.per_address:
                return f"at most {self.limits.per_address} live connections per address"
            self.accounts[account] += 1
            self.addresses[address] += 1
            self.total += 1
            return None

    def release(self, account: str, address: str) -> None:
        with self._lock:
            self.total -= 1
            for counter, key in ((self.accounts, account), (self.addresses, address)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]


class SocketGate:
    """WSGI middleware: `/socket.io/` requests need a session (checked here, before Engine.IO takes
    the request and a WebSocket its thread) and room under the caps; the rest pass through."""

    def __init__(self, app: Flask, inner: Callable, limits: SocketLimits) -> None:
        self.app, self.inner = app, inner
        self.open = OpenSockets(limits)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or ""
        if path != PATH and not path.startswith(PATH + "/"):
            return self.inner(environ, start_response)
        refused = self._check(environ)
        if refused is not None:
            return _answer(start_response, *refused)
        username, address = environ["stockafolio.account"].username, environ.get("REMOTE_ADDR") or "?"
        reason = self.open.admit(username, address)
        if reason is not None:
            return _answer(start_response, 429, reason)
        try:
            return self.inner(environ, start_response)
        except (StopIteration, ConnectionError):  # simple-websocket's "connection taken over" signals
            raise
        except Exception as exc:
            MALFORMED.warning("socket from %s closed: %s", address, describe(exc))
            # the socket was upgraded: no HTTP answer can go on it any more; tell the server to drop it
            raise (StopIteration if "gunicorn.socket" in environ else ConnectionError)() from None
        finally:
            self.open.release(username, address)

    def _check(self, environ: dict) -> tuple[int, str] | None:
        from webapp.auth import current_account

        with self.app.request_context(environ):
            try:
                account = current_account()
            except DataUnavailable:
                return 503, "data temporarily unavailable"
        if account is None:
            return 401, "log in first"
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self.app.config["STOCKAFOLIO"].allowed_origins:
            return 403, "origin not allowed"
        environ["stockafolio.account"] = account
        return None


def _answer(start_response: Callable, status: int, message: str) -> list[bytes]:
    body = message.encode()
    reason = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 429: "TOO MANY REQUESTS", 503: "SERVICE UNAVAILABLE"}
    start_response(f"{status} {reason[status]}", [("Content-Type", "text/plain; charset=utf-8"),
                                                  ("Content-Length", str(len(body))),
                                                  ("Cache-Control", "no-store")])
    return [body]


def guard_packets(server: Any) -> None:
    """Wrap python-socketio's Engine.IO message handler: a packet it cannot decode (or any error in
    handling one) closes that socket with one rate-limited log line instead of a traceback."""
    handle = server.eio.handlers["message"]
    if getattr(handle, "stockafolio_guarded", False):
        return

    def on_message(eio_sid: str, data: Any) -> Any:
        try:
            return handle(eio_sid, data)
        except Exception as exc:
            address = (server.environ.get(eio_sid) or {}).get("REMOTE_ADDR", "?")
            MALFORMED.warning("malformed Socket.IO packet from %s, socket closed: %s", address,
                              describe(exc))
            server.eio.disconnect(eio_sid)
            return None

    on_message.stockafolio_guarded = True  # type: ignore[attr-defined]
    server.eio.on("message", on_message)
