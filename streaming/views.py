"""The firm and market views, in pandas: pure functions from a micro-batch's new trades and the stored
rows they touch to the rows the portfolio query upserts.

- Q5 `symbol_stats_by_day_symbol`: per minute and symbol, counts, volumes, notional in cents, the
  minute's last price (its latest trade by event time, then trade id) and VWAP.
- Q6 `firm_activity_by_day`: per minute firm-wide, the same counts and the distinct users who traded.
- Q7a `symbol_totals_by_day`: per day and symbol, the totals.

Every row is the stored row plus what the batch adds (`batch_deltas`, then `moved`): the batch's
trades are those the accounting takes as new (`streaming.order`), each counted once. A row carries the
micro-batch that last moved it (`applied_batch`): a replay of that batch leaves the row as it is.

A user counts as active in a minute at their first trade of it: a trade whose minute is later than
their previous trade's (the stored one, then the batch's earlier ones, in Kafka order). A user's trades
come in time order (the generator's are; the trade ids that order them rise with time), so this is
the exact count of distinct users per minute without keeping the set of users.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COUNTS = ["trades", "volume", "notional_cents", "buy_trades", "sell_trades", "buy_volume", "sell_volume"]
LAST = ["last_price", "last_trade_time", "last_trade_id"]
Q5_KEY = ["day", "symbol", "minute"]
Q6_KEY = ["day", "minute"]
Q7A_KEY = ["day", "symbol"]
Q6_COUNTS = ["trades", "volume", "notional_cents", "buy_trades", "sell_trades", "active_users"]
TOTALS = ["trades", "volume", "notional_cents", "buy_volume", "sell_volume"]
GUARD = "applied_batch"
Q5_COLUMNS = [*Q5_KEY, "vwap", *COUNTS, *LAST, GUARD]
Q6_COLUMNS = [*Q6_KEY, *Q6_COUNTS, GUARD]
Q7A_COLUMNS = [*Q7A_KEY, *TOTALS, GUARD]
_NEVER = np.datetime64("NaT")


def batch_deltas(trades: pd.DataFrame, previous_minute: pd.Series
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(Q5, Q6, Q7a) increments of a batch's new `trades` (TRADE_COLUMNS with `partition` and
    `offset`, event times naive UTC); `previous_minute`: each user's stored last trade minute, indexed
    by user id (absent: none). Q5 rows carry the minute's latest trade (LAST); Q6 rows the users
    active for the first time in the minute."""
    if trades.empty:
        return _empty(Q5_KEY + COUNTS + LAST), _empty(Q6_KEY + Q6_COUNTS), _empty(Q7A_KEY + TOTALS)
    t = trades.sort_values(["user_id", "partition", "offset"], kind="stable").reset_index(drop=True)
    times = pd.to_datetime(t["event_time"]).astype("datetime64[us]")
    minute = times.dt.floor("min")
    buy = (t["side"] == "buy").to_numpy()
    quantity = t["quantity"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame({
        "day": minute.dt.date, "symbol": t["symbol"].to_numpy(), "minute": minute,
        "trades": 1, "volume": quantity,
        "notional_cents": quantity * np.round(t["price"].to_numpy(dtype=np.float64) * 100).astype(np.int64),
        "buy_trades": buy.astype(np.int64), "sell_trades": (~buy).astype(np.int64),
        "buy_volume": np.where(buy, quantity, 0), "sell_volume": np.where(buy, 0, quantity),
        "last_price": t["price"].to_numpy(dtype=np.float64), "last_trade_time": times,
        "last_trade_id": t["trade_id"].to_numpy(dtype=np.int64),
        "active_users": _first_in_minute(t["user_id"].to_numpy(dtype=np.int64), minute, previous_minute)})
    latest = frame.sort_values(["last_trade_time", "last_trade_id"]).groupby(Q5_KEY)[LAST].last()
    q5 = frame.groupby(Q5_KEY)[COUNTS].sum().join(latest).reset_index()
    q6 = frame.groupby(Q6_KEY)[Q6_COUNTS].sum().reset_index()
    q7a = frame.groupby(Q7A_KEY)[TOTALS].sum().reset_index()
    return q5, q6, q7a


def _first_in_minute(users: np.ndarray, minute: pd.Series, previous: pd.Series) -> np.ndarray:
    """1 where a trade (rows sorted by user, then Kafka order) is its user's first of a minute later
    than every earlier one of theirs, stored or in the batch."""
    minutes = minute.to_numpy(dtype="datetime64[us]")
    stored = previous.reindex(users).to_numpy(dtype="datetime64[us]") if len(previous) else \
        np.full(len(users), _NEVER, dtype="datetime64[us]")
    as_int = minutes.astype(np.int64)
    floor = np.where(np.isnat(stored), np.iinfo(np.int64).min, stored.astype(np.int64))
    starts = np.r_[True, users[1:] != users[:-1]]
    earlier = np.r_[np.iinfo(np.int64).min, as_int[:-1]]
    earlier[starts] = np.iinfo(np.int64).min
    group = np.cumsum(starts)
    running = pd.Series(earlier).groupby(group).cummax().to_numpy(dtype=np.int64)
    return (as_int > np.maximum(running, floor)).astype(np.int64)


def moved(stored: pd.DataFrame, delta: pd.DataFrame, key: list[str], counts: list[str], guard: str,
          last: bool = False) -> pd.DataFrame:
    """The rows `delta` touches, moved: stored counts + the delta, tagged `guard`; a stored row already
    tagged `guard` (this batch, replayed) stays as stored. With `last`, the stored last trade stands
    where it is later than the batch's. `stored` has `key`, `counts`, GUARD (and LAST); keys absent
    from it count from zero."""
    if delta.empty:
        return delta.assign(**{GUARD: pd.Series(dtype=object)})
    before = delta[key].merge(stored, on=key, how="left")
    done = (before[GUARD] == guard).to_numpy()
    out = delta.reset_index(drop=True).copy()
    for name in counts:
        prior = pd.to_numeric(before[name]).fillna(0).to_numpy(dtype=np.int64)
        out[name] = np.where(done, prior, prior + out[name].to_numpy(dtype=np.int64))
    if last:
        stored_time = pd.to_datetime(before["last_trade_time"]).astype("datetime64[us]").to_numpy()
        stored_id = pd.to_numeric(before["last_trade_id"]).fillna(-1).to_numpy(dtype=np.int64)
        new_time = out["last_trade_time"].to_numpy(dtype="datetime64[us]")
        new_id = out["last_trade_id"].to_numpy(dtype=np.int64)
        keep = ~np.isnat(stored_time) & (done | (stored_time > new_time)
                                         | ((stored_time == new_time) & (stored_id > new_id)))
        out["last_price"] = np.where(keep, pd.to_numeric(before["last_price"]).to_numpy(dtype=np.float64),
                                     out["last_price"].to_numpy(dtype=np.float64))
        out["last_trade_time"] = np.where(keep, stored_time, new_time)
        out["last_trade_id"] = np.where(keep, stored_id, new_id)
    out[GUARD] = guard
    return out


def q5_rows(stored: pd.DataFrame, delta: pd.DataFrame, guard: str) -> pd.DataFrame:
    rows = moved(stored, delta, Q5_KEY, COUNTS, guard, last=True)
    rows["vwap"] = vwap(rows["notional_cents"], rows["volume"]) if len(rows) else pd.Series(dtype=float)
    return rows.reindex(columns=Q5_COLUMNS)


def q6_rows(stored: pd.DataFrame, delta: pd.DataFrame, guard: str) -> pd.DataFrame:
    return moved(stored, delta, Q6_KEY, Q6_COUNTS, guard).reindex(columns=Q6_COLUMNS)


def q7a_rows(stored: pd.DataFrame, delta: pd.DataFrame, guard: str) -> pd.DataFrame:
    return moved(stored, delta, Q7A_KEY, TOTALS, guard).reindex(columns=Q7A_COLUMNS)


def vwap(notional_cents: pd.Series, volume: pd.Series) -> np.ndarray:
    """Volume-weighted average price in dollars (NaN without volume)."""
    volume = volume.to_numpy(dtype=np.float64)
    notional = notional_cents.to_numpy(dtype=np.float64)
    return np.divide(notional, volume * 100, out=np.full(len(volume), np.nan), where=volume > 0)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
