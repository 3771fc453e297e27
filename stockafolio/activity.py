"""Which simulated users trade most, without running the generator: the generator draws each trade's
user from a Zipf-Mandelbrot law over activity ranks, and maps ranks to user ids through a seeded
affine permutation (`generator/users.py` `Population`). Rank 0 is the most active user. The web app
uses this to give its demo accounts users that actually trade; a unit test checks it against the
generator's own `Population` for the same seed."""

from __future__ import annotations

import math

import numpy as np


def most_active_user_ids(n_users: int, seed: int, count: int) -> list[int]:
    """User ids (1-based) of activity ranks 0..count-1 in a generator run with `n_users` and `seed`."""
    if n_users < 1 or count < 0:
        raise ValueError(f"need n_users >= 1 and count >= 0, got {n_users} and {count}")
    users_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1])
    a = int(users_rng.integers(1, 2**31))
    while math.gcd(a, n_users) != 1:
        a += 1
    perm_a, perm_b = a % n_users or 1, int(users_rng.integers(0, n_users))
    return [(rank * perm_a + perm_b) % n_users + 1 for rank in range(min(count, n_users))]
