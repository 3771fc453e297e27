"""Every user's holdings and cash rebuilt from the archive with the stream's own accounting rule
(`stockafolio.accounting`, integer cents, average cost), vectorised per group of users.

Trades are hash-partitioned by user into groups; each group's trades (all of them, every day) go to one
call of `accounting.replay` (what `apply_batch` gives on an empty prior state, on plain arrays). A
user's trades are never split between groups, so the result is exactly the stream's state after the
same trades, whatever order they arrive in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time
from functools import partial

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stockafolio.accounting import first_copies, price_cents, replay, signed_quantity

REBUILT_DDL = ("user_id BIGINT, symbol STRING, quantity BIGINT, cost_basis_cents BIGINT, "
               "realized_pnl_cents BIGINT, last_trade_id BIGINT, last_trade_time TIMESTAMP, "
               "cash_cents BIGINT, cash_last_trade_id BIGINT, day_trades BIGINT, day_notional_cents BIGINT")
REBUILT_COLUMNS = [c.split()[0] for c in REBUILT_DDL.split(", ")]
CODED_DDL = (REBUILT_DDL.replace("symbol STRING", "symbol SMALLINT")
             .replace("last_trade_time TIMESTAMP", "last_trade_time BIGINT"))
TRADES_PER_GROUP = 1_000_000  # ~100 MB of pandas per group: bounded memory per Python worker


def groups_for(trades: int) -> int:
    return max(2, -(-trades // TRADES_PER_GROUP))


def opening(opening_cash_cents: int | None, seed: int):
    """A new user's cash as the stream opens it: the constant when given, else the generator's
    per-user starting cash for `seed` (`stockafolio.cash`)."""
    if opening_cash_cents is not None:
        return opening_cash_cents
    from stockafolio import cash  # the per-user opening cash shared with the generator and the stream

    return partial(cash.opening_cash_cents, seed=seed)


def rebuild_group(frame: pd.DataFrame, opening_cash_cents=0,
                  day_start_ms: int | None = None) -> pd.DataFrame:
    """The absolute state of the users in `frame` (their trades, TRADE_COLUMNS): one row per
    (user, symbol) they ever traded, with the user's cash and cash guard repeated on each row
    (as the static columns of `portfolio_by_user`), and the user's activity on the day that starts
    at `day_start_ms` (`day_trades`, `day_notional_cents`: on the user's first row, 0 on the others;
    all 0 without a day)."""
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in REBUILT_COLUMNS})
    codes, names = pd.factorize(frame["symbol"])
    ids, quantity = frame["trade_id"].to_numpy(), frame["quantity"].to_numpy(dtype=np.int64)
    times = pd.to_datetime(frame["event_time"], utc=True).dt.tz_convert(None).to_numpy("datetime64[ms]")
    rows = _replayed(ids, frame["user_id"].to_numpy(), codes,
                     signed_quantity(frame["side"].to_numpy(), quantity, ids), frame["price"].to_numpy(),
                     times.astype(np.int64), opening_cash_cents, day_start_ms)
    return rows.assign(symbol=np.asarray(names, dtype=object)[rows["symbol"]],
                       last_trade_time=rows["last_trade_time"].to_numpy().astype("datetime64[ms]"))


def _replayed(ids, users, codes, delta, price, millis, opening_cash_cents, day_start_ms) -> pd.DataFrame:
    """REBUILT_COLUMNS with the symbol as its code and the last trade time in epoch milliseconds."""
    # each (user, trade id) once, in id order, so the day's totals count a trade once (replay's own pass over
    # the then sorted, unique ids is ~15 ms per million)
    first = first_copies(np.asarray(ids), np.asarray(users))
    ids, users, codes, delta, price, millis = (np.asarray(a)[first]
                                               for a in (ids, users, codes, delta, price, millis))
    cents = price_cents(price)
    held, cash = replay(ids, users, codes, delta, cents, millis, opening_cash_cents)
    owner = held["user_id"].to_numpy()
    at = np.searchsorted(cash["user_id"].to_numpy(), owner)  # both sorted by user
    day_trades, day_notional = np.zeros(len(held), dtype=np.int64), np.zeros(len(held), dtype=np.int64)
    today = np.zeros(len(ids), dtype=bool) if day_start_ms is None else millis >= day_start_ms
    if today.any():
        active, who = np.unique(users[today], return_inverse=True)
        notional = np.zeros(len(active), dtype=np.int64)
        np.add.at(notional, who, np.abs(delta[today].astype(np.int64)) * cents[today])
        first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # each user's first row
        slot = np.minimum(np.searchsorted(active, owner[first]), len(active) - 1)
        found = active[slot] == owner[first]
        day_trades[first[found]] = np.bincount(who, minlength=len(active))[slot[found]]
        day_notional[first[found]] = notional[slot[found]]
    return held.assign(cash_cents=cash["cash_cents"].to_numpy()[at],
                       cash_last_trade_id=cash["cash_last_trade_id"].to_numpy()[at],
                       day_trades=day_trades, day_notional_cents=day_notional)[REBUILT_COLUMNS]


def rebuild(trades: DataFrame, groups: int, opening_cash_cents=0,
            symbols: Sequence[str] | None = None, day: date | None = None) -> DataFrame:
    """Spark: the rebuilt state of every user in `trades` (REBUILT_DDL). Trades are hash-partitioned by
    user into `groups` partitions (no sort), and each partition is one call of
    `stockafolio.accounting.replay` (`mapInPandas` over the whole partition), so a user's trades are
    always together.

    Only numbers travel through the shuffle and into pandas: the symbol as a small integer code (its
    index in `symbols`, every symbol of `trades`; found with one scan when not given), the side folded
    into a signed quantity, the time as epoch milliseconds (the stream keeps milliseconds too); names
    and timestamps come back after the accounting. A side other than buy/sell fails the job naming
    the trade, as `apply_batch` would. With `day` (UTC), each user's first row carries their trades and
    notional that day (`rebuild_group`): the top users come from the snapshot, with no group-by over
    every user of the day (41 s at 100 M trades)."""
    if symbols is None:
        symbols = sorted(r[0] for r in trades.select("symbol").distinct().collect())
    names = trades.sparkSession.createDataFrame(list(enumerate(symbols)), "code SMALLINT, symbol STRING")
    side, quantity = F.col("side"), F.col("quantity").cast("bigint")
    delta = (F.when(side == "buy", quantity).when(side == "sell", -quantity)
             .otherwise(F.raise_error(F.concat(F.lit("side must be 'buy' or 'sell', got "),
                                               F.coalesce(side, F.lit("null")), F.lit(" (trade "),
                                               F.col("trade_id").cast("string"), F.lit(")")))))
    coded = (trades.join(F.broadcast(names), "symbol", "left")
             .select("trade_id", "user_id", "code", delta.alias("delta"), "price",
                     F.unix_millis("event_time").alias("millis")))
    start = None if day is None else int(datetime.combine(day, time(0), tzinfo=UTC).timestamp() * 1000)
    fn = partial(_partition_call, opening_cash_cents=opening_cash_cents, day_start_ms=start)
    out = coded.repartition(groups, "user_id").mapInPandas(fn, CODED_DDL)
    named = F.element_at(F.array(*[F.lit(s) for s in symbols]), F.col("symbol").cast("int") + 1)
    return (out.withColumn("symbol", named)
            .withColumn("last_trade_time", F.timestamp_millis("last_trade_time")).select(*REBUILT_COLUMNS))


def _partition_call(batches: Iterator[pd.DataFrame], opening_cash_cents,
                    day_start_ms) -> Iterator[pd.DataFrame]:
    frames = list(batches)
    if frames:
        f = pd.concat(frames, ignore_index=True)
        if f["code"].isna().any():
            raise ValueError("a trade's symbol is missing from the symbol list given to rebuild()")
        yield _replayed(f["trade_id"].to_numpy(), f["user_id"].to_numpy(), f["code"].to_numpy(),
                        f["delta"].to_numpy(), f["price"].to_numpy(), f["millis"].to_numpy(),
                        opening_cash_cents, day_start_ms)
