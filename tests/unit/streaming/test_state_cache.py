"""The driver's write-through cache hands the next batch the same prior state a read would."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import pandas as pd

from streaming import state, store
from streaming.state_cache import StateCache
from tests.unit.streaming.test_state import empty_prior, trades

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
BIG = 939_916_338_183_665_488  # a live trade id (not exact as a float)


def live(*rows: tuple) -> pd.DataFrame:
    """Trades with live-sized ids: BIG + the id given (offsets stay the small ids)."""
    frame = trades(*rows)
    return frame.assign(trade_id=frame["trade_id"] + BIG)


def test_cached_rows_give_the_prior_a_read_gives() -> None:
    first = state.build(live((0, 1, "AAPL", "buy", 10, 100.0), (1, 1, "MSFT", "buy", 5, 200.0),
                             (2, 2, "AAPL", "buy", 1, 100.0)),
                        empty_prior(), {}, 0, NOW, opening_cash_cents=1_000_000)
    cache = StateCache(capacity=10)
    cache.remember(first.portfolio)
    rows, missing = cache.split([1, 2, 3])
    assert missing == [3] and (cache.hits, cache.misses) == (2, 1)
    cached = state.Prior.from_rows(store.prior_frame(rows))
    read = state.Prior.from_rows(first.portfolio)  # what the written partitions hold
    columns = ["user_id", "symbol", "quantity", "cost_basis_cents", "realized_pnl_cents", "last_trade_id"]
    pd.testing.assert_frame_equal(cached.holdings[columns].sort_values(columns[:2]).reset_index(drop=True),
                                  read.holdings[columns].sort_values(columns[:2]).reset_index(drop=True),
                                  check_dtype=False)  # Int64 from a read, int64 from the batch
    assert cached.cash.set_index("user_id")["cash_last_trade_id"].to_dict() == {1: BIG + 1, 2: BIG + 2}
    assert cached.guards.set_index("user_id")["last_offset"].to_dict() == {1: 1, 2: 2}

    second = state.build(live((5, 1, "AAPL", "sell", 4, 110.0)), cached, {}, 1, NOW,
                         opening_cash_cents=1_000_000)
    by_read = state.build(live((5, 1, "AAPL", "sell", 4, 110.0)), read, {}, 1, NOW,
                          opening_cash_cents=1_000_000)
    assert second.changed["quantity"].tolist() == [6]
    pd.testing.assert_frame_equal(second.totals, by_read.totals)


def test_least_recently_used_users_leave_first() -> None:
    cache = StateCache(capacity=2)
    for user in (1, 2, 3):
        rows = state.build(trades((user, user, "AAPL", "buy", 1, 10.0)), empty_prior(), {}, 0, NOW,
                           opening_cash_cents=0)
        cache.remember(rows.portfolio)
        if user == 2:
            cache.split([1])  # 1 is used again, so 2 is the oldest when 3 comes
    assert list(cache.users) == [1, 3]
    cache.clear()
    assert cache.split([1]) == ([], [1])


def test_a_cached_user_costs_about_a_kilobyte() -> None:
    """What --state-cache-users costs: users of five holdings each, measured with tracemalloc."""
    batch = trades(*((u * 10 + k, u, sym, "buy", 1, 10.0) for u in range(1, 2_001)
                     for k, sym in enumerate(("AAPL", "MSFT", "NVDA", "AMZN", "XOM"))))
    rows = state.build(batch, empty_prior(), {}, 0, NOW, opening_cash_cents=0)
    cache = StateCache(capacity=10_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache.remember(rows.portfolio)
    per_user = (tracemalloc.get_traced_memory()[0] - before) / 2_000
    tracemalloc.stop()
    print(f"{per_user:.0f} bytes per cached user of 5 holdings")  # shown with -s
    assert 500 < per_user < 5_000
