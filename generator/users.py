"""Simulated users: who trades (skewed activity), what they can afford and what they hold.

Memory is O(users) and fixed at start: per user a cash balance (int64 cents, relative to a starting
cash derived from the user id, so untouched users cost no resident memory) and `slots` position slots
(int16 symbol, int32 quantity). A user holds at most `slots` names at once; a buy of a new name when
every slot is taken adds to a name already held instead. With the defaults (6 slots) that is 44 bytes
per user, 440 MB for 10 million users, whatever the run length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stockafolio.cash import CASH_RANGE_USD, starting_cash_cents  # noqa: F401 (re-exported)

# Behaviour. Retail-like: most trades are a few thousand dollars, users sell about as often as they
# buy once they hold something, and a third of the sells close the whole position.
SELL_PROBABILITY = 0.45  # of a trade by a user who holds something
SHORT_SELL_PROBABILITY = 0.45  # of any trade, when short selling is on
CLOSE_PROBABILITY = 0.35  # of a sell of a long position: sell all of it
NOTIONAL_MEDIAN_USD = 3_000.0  # lot size: log-normal notional, median and log-sd
NOTIONAL_LOG_SD = 1.0
MAX_LOT = 5_000  # shares per trade


@dataclass(frozen=True)
class Population:
    """Who trades how often. A user's activity rank r (0 = most active) is drawn with density
    proportional to (r + offset) ** -exponent (Zipf-Mandelbrot); ranks map to user ids through a
    seeded affine permutation, so the most active users are spread over the id range. With the
    defaults and 10 million users the top 1 % make half of the trades, the top 10 % three quarters,
    and the single most active user about 0.01 % (2 trades/s at 20,000 trades/s)."""

    n_users: int
    exponent: float = 1.0
    offset: float = 1_000.0
    perm_a: int = 1
    perm_b: int = 0

    @classmethod
    def create(cls, n_users: int, rng: np.random.Generator, exponent: float = 1.0,
               offset: float = 1_000.0) -> Population:
        if n_users < 1:
            raise ValueError(f"there must be at least one user, got {n_users}")
        a = int(rng.integers(1, 2**31))
        while math.gcd(a, n_users) != 1:
            a += 1
        return cls(n_users, exponent, offset, a % n_users or 1, int(rng.integers(0, n_users)))

    def ranks(self, uniforms: np.ndarray) -> np.ndarray:
        """Activity ranks (int64, 0..n-1) for uniforms in [0, 1): the inverse CDF of the density."""
        n, q, s = self.n_users, self.offset, self.exponent
        if s == 1.0:
            x = q * np.power((n + q) / q, uniforms) - q
        else:
            lo, hi = q ** (1 - s), (n + q) ** (1 - s)
            x = np.power(lo + uniforms * (hi - lo), 1 / (1 - s)) - q
        return np.minimum(x.astype(np.int64), n - 1)

    def user_of_rank(self, ranks: np.ndarray) -> np.ndarray:
        """User index (0-based; the user id is index + 1) of each rank: a bijection of 0..n-1."""
        return (ranks * self.perm_a + self.perm_b) % self.n_users

    def rank_of_user(self, users: np.ndarray) -> np.ndarray:
        inverse = pow(self.perm_a, -1, self.n_users) if self.n_users > 1 else 0
        return ((users - self.perm_b) % self.n_users * inverse) % self.n_users

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` user indexes drawn by activity."""
        return self.user_of_rank(self.ranks(rng.random(n)))

    def share_of_top(self, fraction: float) -> float:
        """Expected share of all trades made by the most active `fraction` of users."""
        k, n, q, s = fraction * self.n_users, self.n_users, self.offset, self.exponent
        if s == 1.0:
            return math.log((k + q) / q) / math.log((n + q) / q)
        return ((k + q) ** (1 - s) - q ** (1 - s)) / ((n + q) ** (1 - s) - q ** (1 - s))


class Books:
    """Cash and position slots of every user, preallocated (zeros, so pages are only made resident
    as users trade). Quantities are signed: negative only when short selling is on."""

    def __init__(self, n_users: int, slots: int, cash_salt: int, short_selling: bool = False):
        if slots < 1:
            raise ValueError(f"a user needs at least one position slot, got {slots}")
        self.cash_salt, self.short_selling = cash_salt, short_selling
        self.cash_delta = np.zeros(n_users, dtype=np.int64)  # cents, added to the starting cash
        self.symbol = np.zeros((n_users, slots), dtype=np.int16)
        self.quantity = np.zeros((n_users, slots), dtype=np.int32)

    @property
    def nbytes(self) -> int:
        return self.cash_delta.nbytes + self.symbol.nbytes + self.quantity.nbytes

    def cash_cents(self, users: np.ndarray) -> np.ndarray:
        return starting_cash_cents(users, self.cash_salt) + self.cash_delta[users]

    def holdings(self, user: int) -> dict[int, int]:
        """Symbol index -> quantity of one user's non-zero positions."""
        return {int(s): int(q) for s, q in zip(self.symbol[user], self.quantity[user], strict=True) if q}
