"""From a batch and the stored rows of its users to the rows the job upserts (no Spark, no Cassandra)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from streaming import state
from tests.unit.streaming.test_accounting import trades as accounting_trades

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DAY = date(2026, 11, 20)


def trades(*rows: tuple) -> pd.DataFrame:
    """Trades as the job hands them over: with the Kafka partition and offset (here in id order)."""
    frame = accounting_trades(*rows)
    return frame.assign(partition=0, offset=frame["trade_id"])


def stored(rows: state.BatchRows) -> pd.DataFrame:
    """What Cassandra would hand back for these users on the next batch."""
    return rows.portfolio.copy()


def empty_prior() -> state.Prior:
    return state.Prior.from_rows(pd.DataFrame(columns=["user_id", "symbol", *state.HOLDING_OUT,
                                                       *state.TOTALS_OUT]))


def test_first_batch_of_a_new_user() -> None:
    batch = trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 1, "MSFT", "buy", 5, 200.0))
    rows = state.build(batch, empty_prior(), {"AAPL": 110.0}, 3, NOW, opening_cash_cents=1_000_000)
    portfolio = rows.portfolio.set_index("symbol")
    assert portfolio.loc["AAPL", ["market_value_cents", "unrealized_pnl_cents"]].tolist() == [110_000, 10_000]
    assert portfolio.loc["MSFT", "market_value_cents"] == 100_000  # no price yet: marked at cost
    total = rows.totals.iloc[0]
    assert total[["cash_cents", "equity_cents", "day_open_equity_cents", "day_pnl_cents"]].tolist() == [
        800_000, 1_010_000, 1_000_000, 10_000]
    assert (total["day"], total["last_batch_id"], total["cash_last_trade_id"]) == (DAY, 3, 2)
    assert rows.trades["day"].tolist() == [DAY, DAY] and len(rows.equity) == 1


def test_next_batch_keeps_untouched_holdings_and_the_day_opening() -> None:
    first = state.build(trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 1, "MSFT", "buy", 5, 200.0)),
                        empty_prior(), {}, 0, NOW, opening_cash_cents=1_000_000)
    prior = state.Prior.from_rows(stored(first))
    second = state.build(trades((3, 1, "AAPL", "sell", 4, 120.0)), prior, {"AAPL": 120.0, "MSFT": 190.0},
                         1, NOW, opening_cash_cents=1_000_000)
    portfolio = second.portfolio.set_index("symbol")
    assert portfolio["quantity"].to_dict() == {"AAPL": 6, "MSFT": 5}
    assert portfolio.loc["AAPL", "realized_pnl_cents"] == 8_000
    total = second.totals.iloc[0]
    assert total["day_open_equity_cents"] == 1_000_000
    cash = 1_000_000 - 100_000 - 100_000 + 4 * 12_000
    assert total[["cash_cents", "equity_cents"]].tolist() == [cash, cash + 6 * 12_000 + 5 * 19_000]
    assert total["day_pnl_cents"] == total["equity_cents"] - 1_000_000
    # only the holding the batch traded is written again (the job upserts `changed` + `totals`)
    assert second.changed[["user_id", "symbol", "quantity"]].values.tolist() == [[1, "AAPL", 6]]
    assert list(second.changed.columns) == ["user_id", "symbol", *state.HOLDING_OUT]


def test_replaying_a_batch_on_its_own_result_changes_no_state() -> None:
    batch = trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 2, "AAPL", "sell", 3, 90.0))
    first = state.build(batch, empty_prior(), {"AAPL": 95.0}, 0, NOW, opening_cash_cents=0)
    again = state.build(batch, state.Prior.from_rows(stored(first)), {"AAPL": 95.0}, 0, NOW,
                        opening_cash_cents=0)
    columns = ["user_id", "symbol", "quantity", "cost_basis_cents", "realized_pnl_cents", "cash_cents",
               "equity_cents", "day_pnl_cents"]
    pd.testing.assert_frame_equal(again.portfolio[columns], first.portfolio[columns])


def test_a_user_idle_for_days_opens_at_the_previous_close_not_at_their_last_stored_equity() -> None:
    from datetime import timedelta

    first = state.build(trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 1, "MSFT", "buy", 5, 200.0)),
                        empty_prior(), {"AAPL": 100.0, "MSFT": 200.0}, 0, NOW, opening_cash_cents=1_000_000)
    assert first.totals.iloc[0]["equity_cents"] == 1_000_000  # bought at the prices it is marked at
    prior = state.Prior.from_rows(stored(first))
    # five days later (a Wednesday after a long weekend): AAPL closed at 130 the day before, MSFT has
    # no known close; today AAPL trades at 131 and MSFT at 190
    later = trades((3, 1, "XOM", "buy", 1, 50.0))
    later["event_time"] = later["event_time"] + timedelta(days=5)
    rows = state.build(later, prior, {"AAPL": 131.0, "MSFT": 190.0, "XOM": 50.0}, 1, NOW + timedelta(days=5),
                       opening_cash_cents=1_000_000, closes={"AAPL": 130.0})
    total = rows.totals.iloc[0]
    cash_before = 1_000_000 - 100_000 - 100_000
    opening = cash_before + 10 * 13_000 + 5 * 19_000  # AAPL at its close, MSFT at today's price
    assert total["day"] == DAY + timedelta(days=5)
    assert total["day_open_equity_cents"] == opening
    # today's moves only: AAPL +1 a share since the close; MSFT no move; buying XOM at its price none
    assert total["day_pnl_cents"] == 10 * 100
    # the old rule opened at the equity stored at the last trade (1,000,000): every move since, today's
    assert total["day_open_equity_cents"] != first.totals.iloc[0]["equity_cents"]

    # the same user's next batch that day keeps the open
    again = trades((4, 1, "XOM", "sell", 1, 51.0))
    again["event_time"] = again["event_time"] + timedelta(days=5)
    prices = {"AAPL": 129.0, "MSFT": 190.0, "XOM": 51.0}
    rows2 = state.build(again, state.Prior.from_rows(stored(rows)), prices, 2, NOW + timedelta(days=5),
                        opening_cash_cents=1_000_000, closes={"AAPL": 130.0})
    assert rows2.totals.iloc[0]["day_open_equity_cents"] == opening
    assert rows2.totals.iloc[0]["day_pnl_cents"] == 10 * -100 + 100  # AAPL -1 a share, XOM sold +1
