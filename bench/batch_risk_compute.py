"""The nightly risk stage's compute for one user group, side by side: the current `hist_var_group`
(each user's exposure per name times the scenario returns, one matrix product per chunk of users)
against the previous one (a row of 1,258 scenario P&Ls per position, summed per user with
`np.add.reduceat`, chunks selected with `np.isin` over the whole group), on the same synthetic group.

    python bench/batch_risk_compute.py [--users 80000] [--positions-per-user 4.7] [--reps 3]

The default group is one of the 100 groups of the 100-million-trade night (7.8 M users with
positions). Checks that both give the same VaR/ES, prints medians and writes
bench/results/batch_risk_compute.md. Pure numpy: no services needed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from batch import risk  # noqa: E402

RESULT = REPO / "bench" / "results" / "batch_risk_compute.md"
NAMES, SCENARIOS = 503, 1258


def previous(positions: pd.DataFrame, symbols: tuple[str, ...], returns: np.ndarray) -> pd.DataFrame:
    """VaR/ES as `hist_var_group` computed them before 2026-11-22 14:00 UTC (the baseline)."""
    codes = pd.Index(symbols).get_indexer(positions["symbol"])
    users = positions["user_id"].to_numpy(dtype=np.int64)
    values = positions["value"].to_numpy(dtype=np.float64)
    frames = []
    distinct = np.unique(users)
    for chunk in np.array_split(distinct, max(1, -(-len(distinct) // risk.USERS_PER_CHUNK))):
        rows = np.isin(users, chunk)
        order = np.argsort(users[rows], kind="stable")
        ids, starts = np.unique(users[rows][order], return_index=True)
        contributions = values[rows][order, None] * returns[codes[rows][order]]
        frames.append(pd.DataFrame({"user_id": ids,
                                    **risk.var_es(np.add.reduceat(contributions, starts, axis=0))}))
    return pd.concat(frames, ignore_index=True)


def group(users: int, per_user: float, rng: np.random.Generator) -> tuple[pd.DataFrame, tuple, np.ndarray]:
    symbols = tuple(f"S{i:03d}" for i in range(NAMES))
    count = rng.poisson(per_user - 1, users) + 1
    owner = np.repeat(np.arange(1, users + 1, dtype=np.int64) * 7919, count)
    names = rng.integers(0, NAMES, len(owner))
    positions = (pd.DataFrame({"user_id": owner, "symbol": np.asarray(symbols)[names],
                               "value": rng.lognormal(8, 1.2, len(owner))})
                 .drop_duplicates(["user_id", "symbol"]).sample(frac=1.0, random_state=1))
    returns = rng.normal(0, 0.02, (NAMES, SCENARIOS))
    return positions, symbols, returns


def timed(fn, *args) -> tuple[float, pd.DataFrame]:
    began = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - began, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/batch_risk_compute.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=80_000, help="users in the group (default %(default)s)")
    parser.add_argument("--positions-per-user", type=float, default=4.7, help="(default %(default)s)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each, alternating (default %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULT, help="(default %(default)s)")
    args = parser.parse_args(argv)
    positions, symbols, returns = group(args.users, args.positions_per_user, np.random.default_rng(7))
    print(f"{positions['user_id'].nunique():,} users, {len(positions):,} positions, {NAMES} names x "
          f"{SCENARIOS} scenarios", flush=True)
    times: dict[str, list[float]] = {"previous": [], "current": []}
    for rep in range(args.reps):
        old_s, old = timed(previous, positions, symbols, returns)
        new_s, new = timed(risk.hist_var_group, positions, symbols, returns)
        times["previous"].append(old_s)
        times["current"].append(new_s)
        print(f"rep {rep + 1}: previous {old_s:.2f} s, current {new_s:.2f} s", flush=True)
    merged = old.merge(new, on="user_id", suffixes=("_old", "_new"))
    assert len(merged) == len(old) == len(new)
    for column in ("var_95", "var_99", "es_95", "es_99"):
        np.testing.assert_allclose(merged[f"{column}_new"], merged[f"{column}_old"], rtol=1e-9)
    users, speedup = positions["user_id"].nunique(), (statistics.median(times["previous"])
                                                      / statistics.median(times["current"]))
    lines = ["# Nightly risk: compute of one user group", "",
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `python bench/batch_risk_compute.py`; "
             f"{platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
             f"one process (a Spark task does the same per group). {users:,} users, {len(positions):,} "
             f"positions, {NAMES} names x {SCENARIOS} scenarios; both give the same VaR/ES (rtol 1e-9).", "",
             "| implementation | median s | runs (s) |", "|---|---|---|",
             *(f"| {name} | {statistics.median(v):.2f} | {', '.join(f'{x:.2f}' for x in v)} |"
               for name, v in times.items()), "",
             f"Speed-up: {speedup:.1f}x.", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
