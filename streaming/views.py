"""The firm and market views, in pandas: pure functions from what Spark's stateful aggregation emits
(absolute per-minute totals) and what Cassandra holds to the rows the market query upserts.

- Q5 `symbol_stats_by_day_symbol` and Q6 `firm_activity_by_day`: the aggregation's rows as they are
  (per minute and symbol, and per minute firm-wide with the distinct users), absolute.
- Q7a `symbol_totals_by_day`: a day's totals are the sum of its minutes, kept without re-reading the
  day: stored day totals + (new minute totals - stored minute totals) over the minutes a batch updated.
- Q4 `latest_price_by_market`: the newest tick per symbol of a batch of price ticks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FIRM = ""  # the aggregation key of the firm-wide rows (every other key is a symbol)
COUNTS = ["trades", "volume", "notional_cents", "buy_trades", "sell_trades", "buy_volume", "sell_volume"]
Q5_COLUMNS = ["day", "symbol", "minute", "last_price", "vwap", *COUNTS]
Q6_COLUMNS = ["day", "minute", "trades", "volume", "notional_cents", "buy_trades", "sell_trades",
              "active_users"]
TOTALS = ["trades", "volume", "notional_cents", "buy_volume", "sell_volume"]
Q7A_COLUMNS = ["day", "symbol", *TOTALS]


def minute_rows(aggregates: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Aggregation rows (minute, key, COUNTS, last_price, active_users) -> (Q5 rows, Q6 rows)."""
    minute = pd.to_datetime(aggregates["minute"], utc=True)
    frame = aggregates.assign(minute=minute, day=minute.dt.date)
    frame[COUNTS] = frame[COUNTS].astype(np.int64)
    frame["vwap"] = vwap(frame["notional_cents"], frame["volume"])
    firm = frame["key"] == FIRM
    q5 = frame.loc[~firm].rename(columns={"key": "symbol"})[Q5_COLUMNS]
    q6 = frame.loc[firm, Q6_COLUMNS].astype({"active_users": np.int64})
    return q5.reset_index(drop=True), q6.reset_index(drop=True)


def vwap(notional_cents: pd.Series, volume: pd.Series) -> np.ndarray:
    """Volume-weighted average price in dollars (NaN without volume)."""
    volume = volume.to_numpy(dtype=np.float64)
    notional = notional_cents.to_numpy(dtype=np.float64)
    return np.divide(notional, volume * 100, out=np.full(len(volume), np.nan), where=volume > 0)


def day_totals(stored_days: pd.DataFrame, stored_minutes: pd.DataFrame, new_minutes: pd.DataFrame
               ) -> pd.DataFrame:
    """Q7a rows of every (day, symbol) in `new_minutes` (Q5 rows a batch updated): `stored_days` (Q7a
    rows, may be empty) plus, per updated minute, its new totals minus `stored_minutes` (the Q5 rows
    those minutes had before the batch; a minute absent there counts from zero)."""
    key = ["day", "symbol", "minute"]
    before = _key_frame(stored_minutes, key).set_index(key)[TOTALS]
    after = _key_frame(new_minutes, key).set_index(key)[TOTALS]
    delta = after.sub(before.reindex(after.index).fillna(0)).groupby(level=["day", "symbol"]).sum()
    prior = _key_frame(stored_days, ["day", "symbol"]).set_index(["day", "symbol"])[TOTALS]
    out = delta.add(prior.reindex(delta.index).fillna(0))
    return out.astype(np.int64).reset_index()[Q7A_COLUMNS]


def _key_frame(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """`frame` with comparable keys: days as dates, minutes as UTC timestamps, totals as integers."""
    out = frame.reindex(columns=[*key, *TOTALS]).copy()
    out["day"] = pd.to_datetime(out["day"].astype("object").map(str)).dt.date if len(out) else out["day"]
    if "minute" in key and len(out):
        out["minute"] = pd.to_datetime(out["minute"], utc=True)
    return out.astype({c: np.int64 for c in TOTALS}) if len(out) else out
