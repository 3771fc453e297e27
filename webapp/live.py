"""Live pushes over Socket.IO. A socket joins `user:<id>` or `firm` at connect (a logged-in session and
an allowed Origin are required, already before Engine.IO sees the request: webapp.sockets) and never
changes room: no client event is handled at all. An open socket whose session ends (logout, new
password or role, deleted account, in any process) is closed within `RECHECK_S`.

Two background tasks per web process, both emitting only to that process's own sockets:
- `portfolio`: every process reads the whole `portfolio-events` topic (assigned all partitions, no
  consumer group offsets), from the moment its app is built (not only once a socket connects): each
  event first drops the user's cached rows (webapp.cache.UserRows, which serves only while this
  reader is assigned). Then it drops events of users it holds no socket for, and for the rest re-marks
  the user's Q1 partition (same totals and risk as the API) at most once a second per user. Each event is
  therefore emitted once, by the process that holds the user's socket; no message queue is needed
  and no process does work for users watched elsewhere. (A shared consumer group would deliver each
  event to one process, which would then have to publish every touched user's event to all others
  through a Socket.IO message queue: one Kafka produce per touched user per second for users mostly
  not watched at all.)
- `prices` and `firm`: once a second, from Cassandra (Q4, and Q6/Q8 when a firm socket is here), only
  the symbols whose price changed.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import orjson
from flask import current_app, request

with warnings.catch_warnings():
    # python-socketio imports kafka-python (for its optional KafkaManager), which still calls the
    # deprecated importlib.resources.read_text at import time; nothing here uses kafka-python.
    warnings.filterwarnings("ignore", r"(read|open)_text is deprecated", DeprecationWarning)
    from flask_socketio import SocketIO, join_room

from webapp import valuation
from webapp.accounts import Account
from webapp.api import activity_row, batch_row, marked_document
from webapp.auth import current_account
from webapp.market import market_clock
from webapp.store import DataUnavailable, Store

LOG = logging.getLogger(__name__)
socketio = SocketIO()
PERIOD_S = 1.0
RECHECK_S = 5.0   # how often the sessions of this process's open sockets are checked again
FIRM_ROOM = "firm"


class Sessions:
    """sid -> the account each open socket of this process connected with (and its epoch)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, Account] = {}

    def add(self, sid: str, account: Account) -> None:
        with self._lock:
            self._by_sid[sid] = account

    def remove(self, sid: str) -> None:
        with self._lock:
            self._by_sid.pop(sid, None)

    def ended(self, store: Store) -> list[str]:
        """The sockets whose session is no longer the account's (one cached read per account)."""
        with self._lock:
            sockets = list(self._by_sid.items())
        states: dict[str, object] = {}
        out = []
        for sid, a in sockets:
            if a.username not in states:
                states[a.username] = store.session_state(a.username)
            if states[a.username] != (a.role, a.user_id, a.epoch):
                out.append(sid)
        return out


SESSIONS = Sessions()


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


@socketio.on("connect")
def _connect(auth: Any = None) -> None:
    account = current_account()
    if account is None:
        raise ConnectionRefusedError("log in first")
    origin = request.headers.get("Origin")
    settings = current_app.config["STOCKAFOLIO"]
    if origin is not None and origin not in settings.allowed_origins:
        raise ConnectionRefusedError("origin not allowed")
    join_room(FIRM_ROOM if account.role == "firm" else user_room(account.user_id))
    SESSIONS.add(request.sid, account)  # type: ignore[attr-defined]
    if settings.live_tasks:
        start_tasks(current_app._get_current_object())  # type: ignore[attr-defined]


@socketio.on("disconnect")
def _disconnect(reason: Any = None) -> None:
    SESSIONS.remove(request.sid)  # type: ignore[attr-defined]


_started: set[int] = set()


def start_tasks(app) -> None:
    """The push tasks of this process (once): started with the app, so that the event reader keeps
    the per-user cache correct before any socket connects."""
    import os

    if os.getpid() in _started:
        return
    _started.add(os.getpid())
    pusher = Pusher(app.extensions["stockafolio.store"], app.extensions["stockafolio.clock"], socketio)
    socketio.start_background_task(pusher.run_market)
    socketio.start_background_task(run_events, app.config["STOCKAFOLIO"], pusher)


def local_room_size(io: SocketIO, room: str) -> int:
    """Sockets of this process in `room` (python-socketio's manager keeps namespace -> room -> sids)."""
    return len(io.server.manager.rooms.get("/", {}).get(room) or ())


class Coalescer:
    """At most one emit per key per `period_s`; the newest value wins while waiting."""

    def __init__(self, period_s: float = PERIOD_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s, self.clock = period_s, clock
        self.pending: dict[Any, Any] = {}
        self.last: dict[Any, float] = {}

    def offer(self, key: Any, value: Any) -> None:
        self.pending[key] = value

    def due(self) -> list[tuple[Any, Any]]:
        now, out = self.clock(), []
        for key in list(self.pending):
            if now - self.last.get(key, -1e18) >= self.period_s:
                out.append((key, self.pending.pop(key)))
                self.last[key] = now
        return out


class Pusher:
    """Builds and emits the three events; the loops call `market_tick` and `portfolio_tick`."""

    def __init__(self, store: Store, clock: Callable, io: SocketIO) -> None:
        self.store, self.clock, self.io = store, clock, io
        self.sent_prices: dict[str, float] = {}
        self.sent_minute: Any = None
        self.users = Coalescer()
        self.warned_at = -1e18
        self.rechecked_at = time.monotonic()

    def market_tick(self) -> None:
        prices, as_of = self.store.prices()
        changed = {s: p for s, p in prices.items() if self.sent_prices.get(s) != p}
        if changed:
            self.io.emit("prices", {"as_of": valuation.iso(as_of), "prices": changed})
            self.sent_prices.update(changed)
        if local_room_size(self.io, FIRM_ROOM):
            self._firm()

    def recheck_sessions(self, sessions: Sessions = SESSIONS) -> None:
        """Close the sockets whose session ended since they connected (checked every RECHECK_S)."""
        if time.monotonic() - self.rechecked_at < RECHECK_S:
            return
        self.rechecked_at = time.monotonic()
        for sid in sessions.ended(self.store):
            sessions.remove(sid)
            self.io.server.disconnect(sid)

    def _firm(self) -> None:
        clock = market_clock(self.store.prices()[1], self.clock())
        activity = self.store.firm_activity(clock.day)[:1]  # Q6 is newest first
        batches = self.store.batches(1)
        event = {"as_of": valuation.iso(clock.now), "day": clock.day.isoformat(),
                 "minute": activity_row(activity[0]) if activity else None,
                 "health": batch_row(batches[0]) if batches else None}
        if (event["minute"], event["health"]) != self.sent_minute:
            self.io.emit("firm", event, to=FIRM_ROOM)
            self.sent_minute = (event["minute"], event["health"])

    def offer_events(self, events: list[tuple[bytes | None, bytes | None]]) -> None:
        """(key, value) records of `portfolio-events`: every named user's cached rows are dropped, and
        the users with a socket here get a push. The key is the user id (the stream keys events by
        it), so only watched users' events are decoded."""
        users: list[int] = []
        for key, raw in events:
            user_id = _user_of(key, raw)
            if user_id is None:
                continue
            users.append(user_id)
            if local_room_size(self.io, user_room(user_id)):
                try:
                    batch = orjson.loads(raw or b"").get("last_batch_id")
                except (orjson.JSONDecodeError, AttributeError):
                    batch = None
                self.users.offer(user_id, batch)
        if users:
            self.store.changed(users)

    def offer_event(self, raw: bytes | None, key: bytes | None = None) -> None:
        self.offer_events([(key, raw)])

    def portfolio_tick(self) -> None:
        for user_id, batch_id in self.users.due():
            rows = self.store.portfolio(user_id)
            prices, as_of = self.store.prices()
            doc = marked_document(self.store, rows, prices, as_of, user_id, self.clock())
            batch = rows[0].get("last_batch_id") if rows else batch_id
            self.io.emit("portfolio", {"user_id": user_id, "as_of": doc["as_of"], "totals": doc["totals"],
                                       "risk": doc["risk"], "last_batch_id": batch}, to=user_room(user_id))

    def run_market(self) -> None:
        while True:
            self._guarded(self.market_tick)
            self._guarded(self.recheck_sessions)
            self.io.sleep(PERIOD_S)

    def _guarded(self, tick: Callable[[], None]) -> None:
        try:
            tick()
        except DataUnavailable as exc:
            if time.monotonic() - self.warned_at > 60:  # once a minute while Cassandra is away
                LOG.warning("live pushes paused: %s", exc)
                self.warned_at = time.monotonic()
        except Exception:
            LOG.exception("live push failed; continuing")


def _user_of(key: bytes | None, raw: bytes | None) -> int | None:
    """The event's user id: its key, else (a record keyed otherwise) the JSON body's user_id."""
    if key:
        try:
            return int(key)
        except ValueError:
            pass
    try:
        return int(orjson.loads(raw or b"")["user_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def run_events(settings, pusher: Pusher) -> None:
    """Read `portfolio-events` from its end, on every partition, without committing offsets. The store's
    per-user cache serves only while this reader is assigned (it is what invalidates it)."""
    from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

    from stockafolio.settings import kafka_client_config

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "stockafolio-web-live",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         **kafka_client_config(settings.kafka_auth)})
    assigned, next_try = False, 0.0
    while True:
        try:
            if not assigned and time.monotonic() >= next_try:
                next_try = time.monotonic() + 10
                meta = consumer.list_topics(settings.events_topic, timeout=0.5).topics[settings.events_topic]
                if meta.error is None and meta.partitions:
                    consumer.assign([TopicPartition(settings.events_topic, p, OFFSET_END)
                                     for p in meta.partitions])
                    assigned = True
                    pusher.store.events_live(True)
            messages = consumer.consume(1000, timeout=0.2) if assigned else []
            pusher.offer_events([(m.key(), m.value()) for m in messages if m.error() is None])
        except KafkaException as exc:
            LOG.warning("portfolio-events not readable (%s); retrying", exc)
            pusher.store.events_live(False)
            pusher.io.sleep(5)
        pusher._guarded(pusher.portfolio_tick)
        if not assigned:
            pusher.io.sleep(0.5)
