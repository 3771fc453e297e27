"""Which simulated users trade most, without running the generator: the generator draws each trade's
user from a Zipf-Mandelbrot law over activity ranks, and maps ranks to user ids through a seeded
affine permutation (`generator/users.py` `Population`). Rank 0 is the most active user. The web app
uses this to give its demo accounts users that actually trade, and the load test's accounts users of
every level of activity; a unit test checks it against the generator's own `Population` for the same
seed."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def most_active_user_ids(n_users: int, seed: int, count: int) -> list[int]:
    """User ids (1-based) of activity ranks 0..count-1 in a generator run with `n_users` and `seed`."""
    if n_users < 1 or count < 0:
        raise ValueError(f"need n_users >= 1 and count >= 0, got {n_users} and {count}")
    return user_ids_of_ranks(n_users, seed, range(min(count, n_users)))


def user_ids_of_ranks(n_users: int, seed: int, ranks: Iterable[int]) -> list[int]:
    """User ids (1-based) of the given activity ranks (0..n_users-1) in a generator run with
    `n_users` and `seed`."""
    users_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1])
    a = int(users_rng.integers(1, 2**31))
    while math.gcd(a, n_users) != 1:
        a += 1
    perm_a, perm_b = a % n_users or 1, int(users_rng.integers(0, n_users))
    return [(rank * perm_a + perm_b) % n_users + 1 for rank in ranks]


def ranks_of_every_level(n_users: int, count: int) -> list[int]:
    """`count` distinct activity ranks spread evenly over the logarithm of the rank: every rank of
    the most active users, then ever sparser down to the least active (rank n_users-1). Under the
    generator's Zipf-Mandelbrot law activity falls with the rank's logarithm, so each level of
    activity, from a trade every few seconds to one in months, gets its share of the ranks."""
    if not 1 <= count <= n_users:
        raise ValueError(f"need 1 <= count <= n_users, got {count} of {n_users}")
    if count == 1:
        return [0]
    ranks, last = [], -1
    for i in range(count):
        spread = int(n_users ** (i / (count - 1))) - 1        # 0 .. n_users-1, log-spaced
        last = max(last + 1, min(spread, n_users - count + i))  # distinct, room left for the rest
        ranks.append(last)
    return ranks
