"""The nightly risk stage's compute for one user group, side by side: `hist_var_group` (each user's
exposure per name times the scenario returns, one matrix product per chunk of users, then the tail
of every row) with the scenario returns in float64 (as until 2026-12-07) and in float32 (current), on
the same synthetic group.

    python bench/batch_risk_compute.py [--users 80000] [--positions-per-user 4.7] [--reps 3]

The default group is one of the 100 groups of the 100-million-trade night (7.8 M users with
positions). Prints how far float32's VaR/ES are from float64's (relative and in dollars), medians, and writes
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
    variants = {"float64": returns.astype(np.float64), "float32 (current)": returns.astype(np.float32)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    out: dict[str, pd.DataFrame] = {}
    for rep in range(args.reps):
        for name, scenarios in variants.items():
            took, out[name] = timed(risk.hist_var_group, positions, symbols, scenarios)
            times[name].append(took)
        print(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    merged = out["float64"].merge(out["float32 (current)"], on="user_id", suffixes=("_64", "_32"))
    assert len(merged) == len(out["float64"]) == len(out["float32 (current)"])
    errors = []
    for column in ("var_95", "var_99", "es_95", "es_99"):
        exact, fast = merged[f"{column}_64"].to_numpy(), merged[f"{column}_32"].to_numpy()
        errors.append(f"{column}: max relative {np.max(np.abs(fast - exact) / np.abs(exact)):.1e}, "
                      f"max absolute ${np.max(np.abs(fast - exact)):.4f}")
        np.testing.assert_allclose(fast, exact, rtol=1e-5)
    users, speedup = positions["user_id"].nunique(), (statistics.median(times["float64"])
                                                      / statistics.median(times["float32 (current)"]))
    lines = ["# Nightly risk: compute of one user group", "",
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `python bench/batch_risk_compute.py`; "
             f"{platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
             f"one process (a Spark task does the same per group). {users:,} users, {len(positions):,} "
             f"positions, {NAMES} names x {SCENARIOS} scenarios; BLAS threads: "
             f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}.", "",
             "| implementation | median s | runs (s) |", "|---|---|---|",
             *(f"| {name} | {statistics.median(v):.2f} | {', '.join(f'{x:.2f}' for x in v)} |"
               for name, v in times.items()), "",
             f"Speed-up: {speedup:.1f}x. float32 against float64 over the {users:,} users:", "",
             *(f"- {e}" for e in errors), ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
