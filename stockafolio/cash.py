"""Every simulated user's starting cash, shared by the generator (which spends it) and the streaming
job (which opens a new user's account with it), so both agree to the cent.

The cash is log-normal (median $25k, clipped to $2k-$2M), a pure function of the user and a salt, so it
costs no memory per user; the salt is a pure function of the generator's `--seed` (its own child of
the seed sequence, independent of the number of users), so the job only needs the same `--seed`.
"""

from __future__ import annotations

import numpy as np

CASH_MEDIAN_USD = 25_000.0  # starting cash: log-normal, median and log-sd, clipped
CASH_LOG_SD = 1.0
CASH_RANGE_USD = (2_000.0, 2_000_000.0)
DEFAULT_SEED = 1  # the generator's default --seed
_SALT_CHILD = 3  # the generator spawns children 0-2 of the seed for market, users and trades


def cash_salt(seed: int) -> int:
    """The salt of `starting_cash_cents` for a generator run with `seed`."""
    child = np.random.SeedSequence(seed, spawn_key=(_SALT_CHILD,))
    return int(np.random.default_rng(child).integers(0, 2**63))


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each value (uint64 arithmetic wraps)."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _unit(hashes: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) from 64-bit hashes (53 high bits)."""
    return ((hashes >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def starting_cash_cents(users: np.ndarray, salt: int) -> np.ndarray:
    """Each user's starting cash (int64 cents) by user *index* (user id - 1, as the generator counts)."""
    with np.errstate(over="ignore"):
        h1 = _mix64(np.asarray(users).astype(np.uint64) ^ np.uint64(salt & (2**64 - 1)))
        h2 = _mix64(h1)
    normal = np.sqrt(-2 * np.log(_unit(h1))) * np.cos(2 * np.pi * _unit(h2))
    usd = np.clip(CASH_MEDIAN_USD * np.exp(CASH_LOG_SD * normal), *CASH_RANGE_USD)
    return np.rint(usd * 100).astype(np.int64)


def opening_cash_cents(user_ids: np.ndarray, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The cash (int64 cents) a user *id* starts with in a generator run with `seed`."""
    return starting_cash_cents(np.asarray(user_ids, dtype=np.int64) - 1, cash_salt(seed))
