"""Firm/market view math: a batch's deltas on hand-checked cases, guarded moves, and many batches (with
replays) against the views computed from all trades at once, one trade at a time."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from streaming import market, views

DAY = date(2026, 11, 20)
# naive UTC, as the job's frames and the Cassandra driver hold times
T0 = datetime(2026, 11, 20, 14, 30, 5)  # noqa: DTZ001
M1, M2 = T0.replace(second=0), T0.replace(minute=31, second=0)


def trade(trade_id: int, user: int, symbol: str, side: str, quantity: int, price: float, at: datetime,
          offset: int | None = None) -> dict:
    return {"trade_id": trade_id, "user_id": user, "symbol": symbol, "side": side, "quantity": quantity,
            "price": price, "event_time": pd.Timestamp(at), "partition": 0,
            "offset": trade_id if offset is None else offset}


def frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    out["event_time"] = out["event_time"].astype("datetime64[us]")
    return out


def no_minutes() -> pd.Series:
    return pd.Series(dtype="datetime64[us]")


def test_deltas_of_a_batch() -> None:
    # AAPL 14:30: buy 10 @ 100.00 (user 1), sell 30 @ 101.00 (user 2, at the same second, higher id:
    # the minute's last); 14:31: user 1 buys MSFT
    trades = frame([trade(1, 1, "AAPL", "buy", 10, 100.0, T0), trade(2, 2, "AAPL", "sell", 30, 101.0, T0),
                    trade(3, 1, "MSFT", "buy", 5, 400.0, T0 + timedelta(minutes=1))])
    q5, q6, q7a = views.batch_deltas(trades, no_minutes())
    aapl = q5.set_index("symbol").loc["AAPL"]
    assert [aapl[c] for c in views.COUNTS] == [2, 40, 100_000 + 303_000, 1, 1, 10, 30]
    assert (aapl["last_price"], aapl["last_trade_id"]) == (101.0, 2)
    assert q6.set_index("minute")["active_users"].to_dict() == {pd.Timestamp(M1): 2, pd.Timestamp(M2): 1}
    assert q7a.set_index("symbol")["volume"].to_dict() == {"AAPL": 40, "MSFT": 5}
    assert set(q7a["day"]) == {DAY}


def test_a_user_already_active_in_the_minute_is_not_counted_again() -> None:
    trades = frame([trade(5, 1, "AAPL", "buy", 1, 10.0, T0), trade(6, 1, "AAPL", "buy", 1, 10.0, T0),
                    trade(7, 2, "AAPL", "buy", 1, 10.0, T0)])
    stored = pd.Series([np.datetime64(M1, "us")], index=[1])  # user 1's last stored trade: 14:30
    _, q6, _ = views.batch_deltas(trades, stored)
    assert q6["active_users"].tolist() == [1]  # user 2 only


def test_a_replayed_batch_leaves_rows_it_already_moved() -> None:
    trades = frame([trade(1, 1, "AAPL", "buy", 10, 100.0, T0)])
    _, _, q7a = views.batch_deltas(trades, no_minutes())
    stored = pd.DataFrame({"day": [DAY], "symbol": ["AAPL"], "trades": [3], "volume": [30],
                           "notional_cents": [1], "buy_volume": [30], "sell_volume": [0],
                           "applied_batch": ["q:7"]})
    assert views.q7a_rows(stored, q7a, "q:7")["volume"].tolist() == [30]   # the batch, again
    assert views.q7a_rows(stored, q7a, "q:8")["volume"].tolist() == [40]   # the next one


def test_the_stored_last_trade_stands_when_it_is_later() -> None:
    trades = frame([trade(1, 1, "AAPL", "buy", 10, 100.0, T0)])  # 14:30:05
    q5, _, _ = views.batch_deltas(trades, no_minutes())
    later = {"day": DAY, "symbol": "AAPL", "minute": pd.Timestamp(M1), "trades": 1, "volume": 1,
             "notional_cents": 9_000, "buy_trades": 1, "sell_trades": 0, "buy_volume": 1, "sell_volume": 0,
             "last_price": 90.0, "last_trade_time": pd.Timestamp(T0 + timedelta(seconds=20)),
             "last_trade_id": 0, "applied_batch": "q:1"}
    stored = pd.DataFrame([later]).astype({"minute": "datetime64[us]", "last_trade_time": "datetime64[us]"})
    row = views.q5_rows(stored, q5, "q:2").iloc[0]
    assert (row["last_price"], row["trades"], row["volume"]) == (90.0, 2, 11)
    assert row["vwap"] == (9_000 + 100_000) / 11 / 100
    assert list(views.q5_rows(stored, q5, "q:2").columns) == views.Q5_COLUMNS


def test_previous_minutes_come_from_the_holding_of_the_last_trade() -> None:
    holdings = pd.DataFrame({"user_id": [1, 1, 2], "symbol": ["AAPL", "MSFT", "AAPL"],
                             "last_trade_id": pd.array([9, 4, None], dtype="Int64"),
                             "last_trade_time": pd.to_datetime([T0 + timedelta(minutes=3), T0, None])})
    minutes = market.previous_minutes(holdings)
    assert minutes.to_dict() == {1: pd.Timestamp(M1 + timedelta(minutes=3))}


# ------------------------------------------------------------------ many batches, replays included

def expected(trades: pd.DataFrame) -> tuple[dict, dict, dict]:
    """Q5, Q6, Q7a from all trades, one at a time (active users as sets)."""
    q5: dict = defaultdict(lambda: defaultdict(int))
    q6: dict = defaultdict(lambda: defaultdict(int))
    q7: dict = defaultdict(lambda: defaultdict(int))
    users: dict = defaultdict(set)
    last: dict = {}
    for t in trades.sort_values(["event_time", "trade_id"]).itertuples():
        minute = t.event_time.floor("min")
        side = "buy" if t.side == "buy" else "sell"
        for row in (q5[(minute, t.symbol)], q6[minute], q7[t.symbol]):
            row["trades"] += 1
            row["volume"] += t.quantity
            row["notional_cents"] += t.quantity * round(t.price * 100)
            row[f"{side}_volume"] += t.quantity
            row[f"{side}_trades"] += 1
        last[(minute, t.symbol)] = t.price
        users[minute].add(t.user_id)
    out5 = {k: (v["trades"], v["volume"], v["notional_cents"], last[k]) for k, v in q5.items()}
    out6 = {k: (v["trades"], v["volume"], len(users[k])) for k, v in q6.items()}
    out7 = {k: (v["trades"], v["volume"], v["buy_volume"], v["sell_volume"]) for k, v in q7.items()}
    return out5, out6, out7


def upsert(stored: pd.DataFrame, rows: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    both = pd.concat([stored, rows], ignore_index=True) if len(stored) else rows
    return both.drop_duplicates(key, keep="last").reset_index(drop=True)


def test_batches_and_replays_add_up_to_the_views_of_all_trades() -> None:
    rng = np.random.default_rng(7)
    n, users = 600, 12
    rows, clock = [], {u: T0 for u in range(1, users + 1)}
    for i in range(n):  # each user's trades rise in time; users interleave
        u = int(rng.integers(1, users + 1))
        clock[u] += timedelta(seconds=int(rng.integers(0, 40)))
        symbol, side = str(rng.choice(["AAPL", "MSFT", "XOM"])), str(rng.choice(["buy", "sell"]))
        rows.append(trade(i + 1, u, symbol, side, int(rng.integers(1, 50)),
                          round(float(rng.uniform(10, 500)), 2), clock[u], offset=i))
    trades = frame(rows)
    s5 = pd.DataFrame(columns=views.Q5_COLUMNS)
    s6 = pd.DataFrame(columns=views.Q6_COLUMNS)
    s7 = pd.DataFrame(columns=views.Q7A_COLUMNS)
    last_minute: dict[int, np.datetime64] = {}
    for b, first in enumerate(range(0, n, 70)):
        batch = trades.iloc[first:first + 70]
        previous = pd.Series(last_minute, dtype="datetime64[us]")
        for attempt in range(2 if b % 3 == 0 else 1):  # every third batch is replayed once
            q5, q6, q7a = views.batch_deltas(batch, previous)
            guard = f"q:{b}"
            s7 = upsert(s7, views.q7a_rows(s7, q7a, guard), views.Q7A_KEY)
            s5 = upsert(s5, views.q5_rows(_typed(s5), q5, guard), views.Q5_KEY)
            if attempt == 0 and b % 3 == 0:
                continue  # the job died before Q6: the replay finds Q5 and Q7a moved already
            s6 = upsert(s6, views.q6_rows(_typed(s6), q6, guard), views.Q6_KEY)
        for user, at in zip(batch["user_id"], batch["event_time"], strict=True):
            last_minute[int(user)] = np.datetime64(at.floor("min"), "us")
    want5, want6, want7 = expected(trades)
    got5 = {(pd.Timestamp(r.minute), r.symbol): (r.trades, r.volume, r.notional_cents, r.last_price)
            for r in s5.itertuples()}
    got6 = {pd.Timestamp(r.minute): (r.trades, r.volume, r.active_users) for r in s6.itertuples()}
    got7 = {r.symbol: (r.trades, r.volume, r.buy_volume, r.sell_volume) for r in s7.itertuples()}
    assert (got5, got6, got7) == (want5, want6, want7)


def _typed(stored: pd.DataFrame) -> pd.DataFrame:
    out = stored.copy()
    for name in ("minute", "last_trade_time"):
        if name in out:
            out[name] = pd.to_datetime(out[name]).astype("datetime64[us]")
    return out
