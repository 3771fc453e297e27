"""Per-process read caches of the web app, so that a dashboard re-reading data that has not changed
costs neither a Cassandra read nor a driver round trip.

- `UserRows`: one user's own rows (Q1 portfolio, Q2 trades, Q3 equity). Those change only when the
  stream applies a batch that touched the user, and the stream publishes one `portfolio-events`
  record per touched user *after* its Cassandra writes; every web process reads that topic
  (webapp.live.run_events) and drops the user's entries here. So an entry is served until the user's
  next event, bounded by `ttl_s` for writes that publish no event (the nightly reconciliation's
  repairs) or an event this process missed. The cache only serves while the event reader is assigned
  (`enable`); before that, or after Kafka failed it, every read goes to Cassandra.
- `Shared`: rows every caller of a process sees alike (the firm's views), kept `ttl_s`; they change
  once per stream batch (seconds). The prices have their own snapshot (`Store.prices`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class UserRows:
    """user id -> {query key -> rows}, least recently used users evicted beyond `max_users`, and a
    user's least recently used keys beyond `max_keys` (each `?day=` asked for is a key: without that
    bound one user could fill a process's memory by walking the calendar).

    A read that started before an invalidation of its user is not stored (each miss leaves a ticket
    that an invalidation removes), so an event can never be overtaken by the read it invalidates."""

    def __init__(self, max_users: int = 20_000, ttl_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 8) -> None:
        self.max_users, self.ttl_s, self.clock, self.max_keys = max_users, ttl_s, clock, max_keys
        self._lock = threading.Lock()
        # user id -> key (least recently used first) -> (ticket, stored at, value or None while loading,
        # version)
        self._users: OrderedDict[int, OrderedDict[Hashable, tuple[object, float, Any, Hashable]]] = \
            OrderedDict()
        self.enabled = False
        self.hits = self.misses = self.invalidations = 0

    def get(self, user_id: int, key: Hashable, load: Callable[[], T], version: Hashable = None) -> T:
        """The value of `key` for this user: cached unless invalidated, older than ttl_s, or stored
        with another `version` (one slot per key: a new version replaces the old one)."""
        if not self.enabled or self.max_users <= 0:
            return load()
        started = self.clock()
        with self._lock:
            entries = self._users.get(user_id)
            if entries is not None:
                self._users.move_to_end(user_id)
                found = entries.get(key)
                if (found is not None and found[2] is not None and found[3] == version
                        and started - found[1] < self.ttl_s):
                    entries.move_to_end(key)
                    self.hits += 1
                    return found[2]
            else:
                entries = self._users[user_id] = OrderedDict()
                while len(self._users) > self.max_users:
                    self._users.popitem(last=False)
            ticket = object()
            entries[key] = (ticket, started, None, version)
            entries.move_to_end(key)
            while len(entries) > self.max_keys:
                entries.popitem(last=False)
            self.misses += 1
        value = load()  # outside the lock: a Cassandra read
        with self._lock:
            entries = self._users.get(user_id)
            if entries is not None and (entries.get(key) or (None,))[0] is ticket:
                entries[key] = (ticket, started, value, version)
        return value

    def invalidate(self, user_ids: Iterable[int]) -> None:
        with self._lock:
            for user_id in user_ids:
                if self._users.pop(user_id, None) is not None:
                    self.invalidations += 1

    def enable(self, on: bool) -> None:
        """On once the event reader is assigned; off (and emptied) when it cannot read any more."""
        with self._lock:
            if not on:
                self._users.clear()
            self.enabled = on

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"users": len(self._users), "hits": self.hits, "misses": self.misses,
                    "invalidations": self.invalidations, "enabled": int(self.enabled)}


class Expiring:
    """key -> value, each trusted for `ttl_s`, the least recently stored evicted beyond `max_keys`
    (the accounts' session epochs: webapp.store.Store.session_state)."""

    def __init__(self, ttl_s: float, max_keys: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.max_keys, self.clock = ttl_s, max_keys, clock
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        now = self.clock()
        with self._lock:
            found = self._values.get(key)
        if found is not None and now - found[0] < self.ttl_s:
            return found[1]
        value = load()
        with self._lock:
            self._values[key] = (now, value)
            self._values.move_to_end(key)
            while len(self._values) > self.max_keys:
                self._values.popitem(last=False)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._values.pop(key, None)


class Shared:
    """key -> (stored at, value), each served for `ttl_s` (0: not at all). Two threads missing at once
    may both read; the later one wins, which is harmless for data that is the same for everyone."""

    def __init__(self, ttl_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._values: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        if self.ttl_s <= 0:
            return load()
        now = self.clock()
        found = self._values.get(key)
        if found is not None and now - found[0] < self.ttl_s:
            return found[1]
        value = load()
        if len(self._values) > 1_000:  # keys are (query, day, ...): a few per day; never grows unbounded
            self._values.clear()
        self._values[key] = (now, value)
        return value
