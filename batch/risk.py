"""Risk: historical-simulation VaR and ES (1 day, 95 and 99 %) of every user with open positions over
the full S&P 500 price history, and the factor model re-estimated from the same history.

A scenario is one historical day: every name's simple return that day; a name without a price that
day gets the return its factor model implies (beta x market + loading x its sector factor), so the
scenarios cover every name of the universe on every day. By default they are the repository's
reference table `stockafolio/reference/data/scenarios.npz` (derived from the raw history by
`stockafolio.reference.derive`, log returns to 1e-4) with the committed model; `--sp500 DIR` derives
both again from a raw S&P 500 folder at run time, exact.

VaR at level a over n scenarios is the k-th largest loss with k = ceil((1 - a) n); ES is the mean of
those k largest losses. Money is in dollars (risk figures are model outputs, not balances).

Scenario P&L is computed in float32 (returns, exposures and the matrix product; ES averaged in
float64): ~7 significant digits, so a VaR of $100,000 is exact to about a cent, and the product and the
tail selection run ~2x faster than in float64 (bench/results/batch_risk_compute.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from scipy import sparse

from batch.settings import BatchError
from stockafolio.errors import ConfigError
from stockafolio.reference import derive

LEVELS = (0.95, 0.99)
USERS_PER_CHUNK = 4_000  # (users x scenarios) float32 per chunk: 4,000 x 1,258 = 20 MB
SCENARIO_DTYPE = np.float32
HIST_DDL = ("user_id BIGINT, market_value_cents BIGINT, gross_exposure_cents BIGINT, var_95 DOUBLE, "
            "var_99 DOUBLE, es_95 DOUBLE, es_99 DOUBLE, scenarios INT")


@dataclass(frozen=True)
class History:
    """`returns`: (names, days) simple daily returns as float32, no NaN, row i is `symbols[i]`."""

    symbols: tuple[str, ...]
    returns: np.ndarray
    first_day: str
    last_day: str
    model: dict[str, bytes]  # the factor model's CSV files, as `derive` writes them


def load_history(data_dir: Path | None, say: Callable[[str], None]) -> History:
    """The scenario matrix and the model's files: the repository's reference tables, or derived
    again from the raw S&P 500 folder `data_dir`."""
    try:
        if data_dir is None:
            filled = derive.read_scenarios()
            model = {name: (derive.DEFAULT_OUT / name).read_bytes() for name in derive.Tables.NAMES}
            source = "the reference scenarios"
        else:
            derived = derive.derive(data_dir, say)
            filled = derived.scenarios
            model = {name: frame.to_csv(index=False, lineterminator="\n").encode()
                     for name, frame in derived.tables.files().items()}
            source = f"the raw history in {data_dir}"
    except (ConfigError, OSError) as exc:
        raise BatchError(f"the risk stage cannot read its history: {exc}") from None
    say(f"history {filled.index[0]:%Y-%m-%d}..{filled.index[-1]:%Y-%m-%d}: {len(filled)} scenarios x "
        f"{filled.shape[1]} names, from {source}")
    return History(tuple(filled.columns), np.expm1(filled.to_numpy().T).astype(SCENARIO_DTYPE),
                   f"{filled.index[0]:%Y-%m-%d}", f"{filled.index[-1]:%Y-%m-%d}", model)


fill_with_model = derive.fill_with_model  # where the scenarios' gaps are filled (tests call it here)


def scenario_pnl(user_codes: np.ndarray, symbol_codes: np.ndarray, values: np.ndarray,
                 returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(users, pnl): the distinct users (sorted) and their P&L in every scenario (users x days),
    from positions (user, symbol row of `returns`, market value): each user's exposure per name
    (users x names, sparse: a user holds ~5 of 503 names; repeated pairs add up) times the scenario
    returns (names x days), in the dtype of `returns`. The sparse product does ~1/100 of the
    multiply-adds of the dense one: 11x faster per 4,000-user chunk
    (bench/results/batch_risk_compute.md)."""
    users, rows = np.unique(user_codes, return_inverse=True)
    exposure = sparse.csr_array((np.asarray(values, dtype=returns.dtype), (rows, symbol_codes)),
                                shape=(len(users), returns.shape[0]))
    return users, np.asarray(exposure @ returns)


def var_es(pnl: np.ndarray, levels: tuple[float, ...] = LEVELS) -> dict[str, np.ndarray]:
    """Per row of `pnl` (users x scenarios): var_<95|99> and es_<95|99> as positive losses.
    One selection per row finds the largest tail's scenarios (`np.partition` at one index), then only
    that tail (63 of 1,258 values at 95 %) is sorted. A float32 `pnl` is selected as integer keys
    (`_ordered_keys`): the same order, ~1.5x faster to partition than the floats themselves."""
    n = pnl.shape[1]
    tails = {level: max(1, math.ceil(round((1 - level) * n, 9))) for level in levels}
    widest = max(tails.values())
    keys = _ordered_keys(pnl) if pnl.dtype == np.float32 else pnl
    worst = np.sort(np.partition(keys, widest - 1, axis=1)[:, :widest], axis=1)  # most negative first
    if keys is not pnl:
        worst = _ordered_keys(worst).view(np.float32)
    out: dict[str, np.ndarray] = {}
    for level, k in tails.items():
        name = f"{round(level * 100)}"
        out[f"var_{name}"] = -worst[:, k - 1].astype(np.float64)
        out[f"es_{name}"] = -worst[:, :k].mean(axis=1, dtype=np.float64)
    return out


def _ordered_keys(values: np.ndarray) -> np.ndarray:
    """int32 keys in the order of the float32 `values` (no NaN), and back: a float32's bits read as
    an int32 already order the non-negative floats; flipping the 31 low bits of a negative one
    reverses the order of the negatives, which is theirs. The map is its own inverse."""
    bits = np.ascontiguousarray(values).view(np.int32)
    return bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))


def hist_var_group(positions: pd.DataFrame, symbols: tuple[str, ...], returns: np.ndarray) -> pd.DataFrame:
    """HIST_DDL rows for the users of `positions` (user_id, symbol, value in dollars), by chunks."""
    index = pd.Index(symbols)
    codes = index.get_indexer(positions["symbol"])
    if (codes < 0).any():
        unknown = positions["symbol"].to_numpy()[codes < 0][0]
        raise BatchError(f"symbol {unknown!r} is not in the S&P 500 history")
    users = positions["user_id"].to_numpy(dtype=np.int64)
    values = positions["value"].to_numpy(dtype=np.float64)
    frames = []
    order = np.argsort(users, kind="stable")  # each user's positions contiguous: chunks are slices
    users, codes, values = users[order], codes[order], values[order]
    starts = np.unique(users, return_index=True)[1]
    bounds = [*starts[::USERS_PER_CHUNK], len(users)] if len(users) else [0]
    for first, last in itertools.pairwise(bounds):
        ids, pnl = scenario_pnl(users[first:last], codes[first:last], values[first:last], returns)
        frames.append(pd.DataFrame({"user_id": ids, **var_es(pnl)}))
    risk = pd.concat(frames) if frames else pd.DataFrame(columns=["user_id"])
    totals = positions.assign(gross=positions["value"].abs()).groupby("user_id")[["value", "gross"]].sum()
    out = risk.merge(totals, left_on="user_id", right_index=True)
    return pd.DataFrame({
        "user_id": out["user_id"].astype(np.int64),
        "market_value_cents": np.rint(out["value"] * 100).astype(np.int64),
        "gross_exposure_cents": np.rint(out["gross"] * 100).astype(np.int64),
        **{c: out[c].astype(np.float64) for c in ("var_95", "var_99", "es_95", "es_99")},
        "scenarios": np.full(len(out), returns.shape[1], dtype=np.int32),
    })


def hist_var(positions: DataFrame, history: History, groups: int) -> DataFrame:
    """Spark: HIST_DDL per user of `positions` (user_id, symbol, value): positions hash-partitioned by
    user into `groups` partitions, one pandas call per partition (`mapInPandas`, no sort)."""
    symbols, returns = history.symbols, history.returns

    def call(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frames = list(batches)
        if frames:
            yield hist_var_group(pd.concat(frames, ignore_index=True), symbols, returns)

    return positions.select("user_id", "symbol", "value").repartition(groups, "user_id").mapInPandas(
        call, HIST_DDL)


def model_files(history: History) -> dict[str, bytes]:
    """The model the scenarios go with, as the CSV bytes `derive` writes (the committed ones, or
    re-estimated with `--sp500`)."""
    return history.model
