"""The login limit, one for every web process and host: failed logins are counted in Cassandra (Q12,
`login_failures_by_key_window`), per client address + user name and per client address alone.

A sliding window estimated from two fixed ones: the failures of the current window plus those of the
previous window weighted by the share of it that still lies within `window_s` of now. Only failures
count; once a key is at its limit every attempt (the right password too) gets 429 without a password
check or a write, so a refused attempt costs two small partition reads and no scrypt hash, and a
key's partition never holds much more than its limit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from webapp.settings import RateLimits


class FailureStore(Protocol):
    def login_failures(self, key: str, window: int) -> tuple[int, int]: ...
    def note_login_failure(self, key: str, window: int, ttl_s: int) -> None: ...


def estimate(current: int, previous: int, elapsed: float) -> float:
    """Failures within one window of now: all of the current window's, and the previous window's
    in proportion to the part of it not yet slid past (`elapsed`: 0..1 of the current window)."""
    return current + previous * (1.0 - elapsed)


def keys(address: str, username: str, limits: RateLimits) -> list[tuple[str, int]]:
    """(key, limit) pairs for one attempt; the user name as typed, lower-cased, at most 64 chars."""
    name = username.strip().lower()[:64]
    return [(f"user:{address}|{name}", limits.login), (f"addr:{address}", limits.login_ip)]


@dataclass(frozen=True)
class LoginLimit:
    store: FailureStore
    limits: RateLimits
    clock: Callable[[], float] = time.time  # wall clock: every host must agree on the windows

    def _window(self) -> tuple[int, float, float]:
        """(window number, elapsed share of it, seconds left in it)."""
        now, size = self.clock(), self.limits.window_s
        window = math.floor(now / size)
        left = (window + 1) * size - now
        return window, 1.0 - left / size, left

    def blocked(self, address: str, username: str) -> int | None:
        """Seconds to wait when a key of this attempt is at its limit, else None."""
        window, elapsed, left = self._window()
        for key, limit in keys(address, username, self.limits):
            if estimate(*self.store.login_failures(key, window), elapsed) >= limit:
                return max(1, math.ceil(left))
        return None

    def failed(self, address: str, username: str) -> None:
        window, _, _ = self._window()
        for key, _limit in keys(address, username, self.limits):
            self.store.note_login_failure(key, window, 2 * self.limits.window_s)
