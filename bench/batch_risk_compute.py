"""The nightly risk stage's compute for one user group, side by side: `hist_var_group` (each user's
exposure per name times the scenario returns, one product per chunk of users, then the tail of every
row) with three ways of computing the scenario P&L, on the same synthetic group:

- dense float64: a (users x 503) exposure matrix times the returns, in float64 (until 2026-12-07);
- dense float32: the same in float32 (2026-12-07, morning);
- sparse float32 (current): the exposure as a sparse matrix (a user holds ~5 of 503 names).

    python bench/batch_risk_compute.py [--users 80000] [--positions-per-user 4.7] [--reps 3]

The default group is one of the 100 groups of the 100-million-trade night (7.8 M users with
positions). Prints how far each variant's VaR/ES are from dense float64's (relative and in dollars),
medians, and writes bench/results/batch_risk_compute.md. Pure numpy/scipy: no services needed.
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


def dense_pnl(user_codes: np.ndarray, symbol_codes: np.ndarray, values: np.ndarray,
              returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`risk.scenario_pnl` as it was until the sparse product: a dense (users x names) exposure."""
    users, rows = np.unique(user_codes, return_inverse=True)
    names = returns.shape[0]
    exposure = np.bincount(rows * names + symbol_codes, weights=values,
                           minlength=len(users) * names).reshape(len(users), names)
    return users, exposure.astype(returns.dtype, copy=False) @ returns


VARIANTS = {  # name: (scenario P&L function, dtype of the returns)
    "dense float64": (dense_pnl, np.float64),
    "dense float32": (dense_pnl, np.float32),
    "sparse float32 (current)": (risk.scenario_pnl, np.float32),
}


def timed(pnl, positions: pd.DataFrame, symbols: tuple, returns: np.ndarray) -> tuple[float, pd.DataFrame]:
    current, risk.scenario_pnl = risk.scenario_pnl, pnl  # hist_var_group looks it up at call time
    try:
        began = time.perf_counter()
        out = risk.hist_var_group(positions, symbols, returns)
        return time.perf_counter() - began, out
    finally:
        risk.scenario_pnl = current


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
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    out: dict[str, pd.DataFrame] = {}
    for rep in range(args.reps):
        for name, (pnl, dtype) in VARIANTS.items():
            took, out[name] = timed(pnl, positions, symbols, returns.astype(dtype))
            times[name].append(took)
        print(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    exact = out["dense float64"].set_index("user_id")
    errors = []
    for name in list(VARIANTS)[1:]:
        got = out[name].set_index("user_id")
        assert got.index.sort_values().equals(exact.index.sort_values()), name
        got = got.reindex(exact.index)
        for column in ("var_95", "var_99", "es_95", "es_99"):
            want, have = exact[column].to_numpy(), got[column].to_numpy()
            errors.append(f"{name}, {column}: max relative {np.max(np.abs(have - want) / np.abs(want)):.1e}, "
                          f"max absolute ${np.max(np.abs(have - want)):.4f}")
            np.testing.assert_allclose(have, want, rtol=1e-5)
    median = {name: statistics.median(v) for name, v in times.items()}
    users, now = positions["user_id"].nunique(), median["sparse float32 (current)"]
    lines = ["# Nightly risk: compute of one user group", "",
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `python bench/batch_risk_compute.py`; "
             f"{platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
             f"one process (a Spark task does the same per group). {users:,} users, {len(positions):,} "
             f"positions, {NAMES} names x {SCENARIOS} scenarios; BLAS threads: "
             f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; runs alternate between the variants.", "",
             "| scenario P&L | median s | runs (s) |", "|---|---:|---|",
             *(f"| {name} | {median[name]:.2f} | {', '.join(f'{x:.2f}' for x in v)} |"
               for name, v in times.items()), "",
             f"Speed-up of the current variant: {median['dense float32'] / now:.1f}x "
             f"over dense float32, {median['dense float64'] / now:.1f}x over "
             f"dense float64. Each variant against dense float64 over the {users:,} users:", "",
             *(f"- {e}" for e in errors), ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
