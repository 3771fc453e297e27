"""One micro-batch of valid trades + the prior state of its users -> the rows to upsert, in pandas.

Pure: no Spark, no Cassandra. The job reads `portfolio_by_user` partitions of the touched users
(`Prior.from_rows`) and writes back what `portfolio_rows`, `trade_rows` and `equity_rows` return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from stockafolio import accounting
from streaming import order, risk

HOLDING_OUT = ["quantity", "cost_basis_cents", "avg_cost", "realized_pnl_cents", "last_price",
               "market_value_cents", "unrealized_pnl_cents", "last_trade_id", "last_trade_time"]
TOTALS_OUT = ["cash_cents", "cash_last_trade_id", "market_value_total_cents", "unrealized_pnl_total_cents",
              "realized_pnl_total_cents", "equity_cents", "day", "day_open_equity_cents", "day_pnl_cents",
              "last_batch_id", "updated_at",
              "last_partition", "last_offset"]
GUARD_COLUMNS = ["user_id", "cash_last_trade_id", "last_partition", "last_offset"]
ORDER_REASONS = {order.DUPLICATE: "duplicate", order.OUT_OF_ORDER: "out_of_order"}


@dataclass(frozen=True)
class Prior:
    """The stored state of the touched users: holdings rows, cash and guard, and the day's opening."""

    holdings: pd.DataFrame
    cash: pd.DataFrame
    days: pd.DataFrame  # user_id, day, day_open_equity_cents, equity_cents
    guards: pd.DataFrame  # GUARD_COLUMNS: the user's trade-id guard and where the stream last read them

    @classmethod
    def from_rows(cls, rows: pd.DataFrame) -> Prior:
        """From `portfolio_by_user` rows (statics repeated on every row; symbol null for a partition
        that holds statics only)."""
        held = rows.loc[rows["symbol"].notna(), accounting.HOLDING_COLUMNS]
        users = rows.drop_duplicates("user_id")
        cash = users.loc[users["cash_cents"].notna(), accounting.CASH_COLUMNS]
        cash = cash.assign(cash_last_trade_id=pd.to_numeric(cash["cash_last_trade_id"]).fillna(0))
        days = users[["user_id", "day", "day_open_equity_cents", "equity_cents"]].astype(
            {"day_open_equity_cents": "float64", "equity_cents": "float64"})  # cents: exact below 2**53
        guards = users.reindex(columns=GUARD_COLUMNS)
        return cls(held.reset_index(drop=True), _ints(cash), days.reset_index(drop=True),
                   guards.reset_index(drop=True))


@dataclass(frozen=True)
class BatchRows:
    """`portfolio`: every holding of the touched users with their statics; `changed`: only the holding
    rows the batch touched (HOLDING_OUT, marked); `totals`: one statics row per touched user."""

    portfolio: pd.DataFrame
    changed: pd.DataFrame
    totals: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.DataFrame


def split_by_order(trades: pd.DataFrame, prior: Prior) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the trades to account: new ones and replays, `new` telling which; the refused ones with a
    `reason`), see `streaming.order`. `trades` carries `partition` and `offset`."""
    kind = order.classify(trades, prior.guards)
    refused = np.isin(kind, list(ORDER_REASONS))
    rejected = trades.loc[refused].copy()
    if len(rejected):
        guard = prior.guards.drop_duplicates("user_id").set_index("user_id")["cash_last_trade_id"]
        rejected["reason"] = [
            f"{ORDER_REASONS[k]}: trade {t} of user {u} is not above {_int_or(guard.get(u), 0)}, the user's "
            "last applied trade id, or an earlier trade of the batch (a user's trade ids must rise)"
            for k, t, u in zip(kind[refused], rejected["trade_id"], rejected["user_id"], strict=True)]
    kept = trades.loc[~refused].assign(new=kind[~refused] == order.NEW)
    return kept.reset_index(drop=True), rejected.reset_index(drop=True)


def _int_or(value: object, default: int) -> int:
    return default if value is None or pd.isna(value) else int(value)


def build(trades: pd.DataFrame, prior: Prior, prices: Mapping[str, float],
          batch_id: int, now: datetime, opening_cash_cents: accounting.Opening,
          read: pd.DataFrame | None = None, closes: Mapping[str, float] | None = None) -> BatchRows:
    """Apply the batch (trades `split_by_order` kept; at least one) and value every touched user;
    `now` only stamps `updated_at`. `trades` carries the Kafka `partition` and `offset` of each;
    `read` is `last_read` of the whole batch, refused trades included (default: of `trades`);
    `closes` the previous market day's closing prices (a user's first valuation of a day opens at
    their stored holdings marked at those, see `_day_open`)."""
    read = last_read(trades) if read is None else read
    result = accounting.apply_batch(trades, prior.holdings, prior.cash, opening_cash_cents)
    holdings = _merged(prior.holdings, result.holdings, trades["user_id"].unique())
    cash = _merged_cash(prior.cash, result.cash, trades["user_id"].unique(), opening_cash_cents)
    holdings["avg_cost"] = accounting.average_cost(holdings["quantity"], holdings["cost_basis_cents"])
    marked = risk.mark_holdings(holdings, prices)
    day = batch_day(trades)
    totals = risk.portfolio_totals(marked, cash[["user_id", "cash_cents"]],
                                   _day_open(prior, cash, day, opening_cash_cents, prices, closes or {}))
    totals = totals.assign(cash_last_trade_id=cash["cash_last_trade_id"].to_numpy(), day=day,
                           last_batch_id=batch_id, updated_at=pd.Timestamp(now))
    totals = totals.merge(read, on="user_id", how="left")
    totals["day_open_equity_cents"] = totals["equity_cents"] - totals["day_pnl_cents"]
    portfolio = marked.merge(totals[["user_id", *TOTALS_OUT]], on="user_id")
    touched = marked.merge(result.holdings[accounting.KEY], on=accounting.KEY)
    return BatchRows(portfolio[["user_id", "symbol", *HOLDING_OUT, *TOTALS_OUT]],
                     touched[["user_id", "symbol", *HOLDING_OUT]].reset_index(drop=True), totals,
                     trade_rows(trades), equity_rows(totals, trades))


def last_read(trades: pd.DataFrame) -> pd.DataFrame:
    """user_id, last_partition, last_offset: each user's last record of the batch in Kafka."""
    last = trades.sort_values(["partition", "offset"]).drop_duplicates("user_id", keep="last")
    return pd.DataFrame({"user_id": last["user_id"].to_numpy(dtype=np.int64),
                         "last_partition": last["partition"].to_numpy(dtype=np.int32),
                         "last_offset": last["offset"].to_numpy(dtype=np.int64)})


def batch_day(trades: pd.DataFrame) -> date:
    """The UTC day of the batch: that of its latest trade (the same on a replay, unlike the clock)."""
    return pd.Timestamp(utc_naive(trades["event_time"]).max()).date()


def trade_rows(trades: pd.DataFrame) -> pd.DataFrame:
    """`trades_by_user_day` rows for every valid trade of the batch (replays rewrite the same keys);
    times naive UTC (as the driver writes them), days as dates (numpy's, not a date per row from
    pandas: that was the largest part of this step)."""
    frame = trades[accounting.TRADE_COLUMNS].drop_duplicates(["user_id", "trade_id"])
    times = utc_naive(frame["event_time"])
    days = times.astype("datetime64[D]").astype(object)
    return frame.assign(event_time=times, day=days).reset_index(drop=True)


def equity_rows(totals: pd.DataFrame, trades: pd.DataFrame) -> pd.DataFrame:
    """`equity_by_user_day` rows: each touched user's value at the minute of the batch's last trade."""
    minute = pd.Timestamp(utc_naive(trades["event_time"]).max()).floor("min")
    columns = ["user_id", "equity_cents", "cash_cents", "day_pnl_cents"]
    return totals[columns].assign(day=minute.date(), minute=minute,
                                  market_value_cents=totals["market_value_total_cents"])


def utc_naive(times: pd.Series) -> np.ndarray:
    """Times as naive UTC datetime64[us] (a naive column is UTC already, as the job's frames are)."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times.to_numpy(dtype="datetime64[us]")


def _merged(prior: pd.DataFrame, changed: pd.DataFrame, users: np.ndarray) -> pd.DataFrame:
    """Every holding of `users`: the changed rows over the prior ones."""
    mine = prior.loc[prior["user_id"].isin(users), accounting.HOLDING_COLUMNS]
    both = _concat([mine, changed[accounting.HOLDING_COLUMNS]])
    return _ints(both.drop_duplicates(accounting.KEY, keep="last")).reset_index(drop=True)


def _merged_cash(prior: pd.DataFrame, changed: pd.DataFrame, users: np.ndarray,
                 opening_cash_cents: accounting.Opening) -> pd.DataFrame:
    start = pd.DataFrame({"user_id": users, "cash_cents": accounting.opening_cash(users, opening_cash_cents),
                          "cash_last_trade_id": 0})
    both = _concat([start, prior.loc[prior["user_id"].isin(users)], changed])
    return _ints(both.drop_duplicates("user_id", keep="last")).reset_index(drop=True)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate, leaving out empty frames (whose dtypes would otherwise leak into the result)."""
    return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)


def _day_open(prior: Prior, cash: pd.DataFrame, day: date, opening_cash_cents: accounting.Opening,
              prices: Mapping[str, float], closes: Mapping[str, float]) -> dict[int, int]:
    """Equity at the start of `day` per user: kept while the stored day is `day`; for a user stored
    on an earlier day (idle since, maybe for days), their stored cash and holdings (what they held at
    the previous close, having not traded since) marked at the previous market day's `closes`, a name
    without a known close at the latest price (it counts no move), else at cost; for a new user their
    opening cash. Never the equity stored at their last trade: every move since would count as
    today's."""
    stored = prior.days.set_index("user_id").reindex(cash["user_id"])
    same_day = stored["day"].map(_as_date) == day
    at_close = _at_close(prior, {**prices, **closes}).reindex(stored.index)
    opening = np.where(same_day, stored["day_open_equity_cents"], at_close)
    new = pd.Series(accounting.opening_cash(stored.index, opening_cash_cents), index=stored.index)
    opening = pd.Series(opening, index=stored.index, dtype="float64").fillna(new)
    return {int(u): int(v) for u, v in opening.items()}


def _at_close(prior: Prior, prices: Mapping[str, float]) -> pd.Series:
    """Stored cash plus stored holdings marked at `prices`, per user with stored cash (float cents)."""
    cash = prior.cash.set_index("user_id")["cash_cents"].astype("float64")
    if prior.holdings.empty:
        return cash
    marked = risk.mark_holdings(_ints(prior.holdings), prices)
    value = marked.groupby("user_id")["market_value_cents"].sum().astype("float64")
    return cash.add(value.reindex(cash.index), fill_value=0.0)


def _as_date(value: object) -> date | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    return value if isinstance(value, date) else pd.Timestamp(str(value)).date()


def _ints(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns that came back from Cassandra as floats (nullable) made int64 again."""
    names = [c for c in frame.columns if c.endswith(("_cents", "_id", "quantity"))]
    return frame.astype({c: "int64" for c in names}) if len(frame) else frame
