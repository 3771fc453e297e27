"""Marking holdings to prices and the per-user money totals of a batch of users (the stream's; factor
risk is the web app's, tests/unit/webapp/test_valuation.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockafolio.accounting import AccountingError
from stockafolio.reference.model import load_factor_model
from streaming.risk import mark_holdings, portfolio_totals


def holdings(*rows: tuple[int, str, int, int, int]) -> pd.DataFrame:
    """(user_id, symbol, quantity, cost_basis_cents, realized_pnl_cents) rows."""
    columns = ["user_id", "symbol", "quantity", "cost_basis_cents", "realized_pnl_cents"]
    return pd.DataFrame(rows, columns=columns)


def cash(**by_user: int) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [int(u[1:]) for u in by_user], "cash_cents": list(by_user.values())})


def test_marking_uses_latest_price_or_average_cost_when_unknown() -> None:
    marked = mark_holdings(holdings((1, "AAPL", 10, 100_000, 0), (1, "MSFT", -5, -150_000, 0)),
                           {"AAPL": 123.45})
    assert marked["market_value_cents"].tolist() == [123_450, -150_000]
    assert marked["unrealized_pnl_cents"].tolist() == [23_450, 0]
    assert np.isnan(marked["last_price"].iloc[1])


def test_totals_and_day_pnl() -> None:
    marked = mark_holdings(holdings((1, "AAPL", 30, 270_000, 500), (1, "XOM", 10, 120_000, -200),
                                    (2, "XOM", 0, 0, 900)), {"AAPL": 100.0, "XOM": 100.0})
    frame = portfolio_totals(marked, cash(u1=1_000_000, u2=50_000, u3=7),
                             day_open_equity={1: 1_350_000}).set_index("user_id")
    one = frame.loc[1]
    assert (one["market_value_total_cents"], one["unrealized_pnl_total_cents"]) == (400_000, 10_000)
    money = one[["realized_pnl_total_cents", "equity_cents", "day_pnl_cents"]]
    assert money.tolist() == [300, 1_400_000, 50_000]
    for user in (2, 3):  # nothing held (or only a closed position): day P&L 0 without an opening
        assert frame.loc[user, "day_pnl_cents"] == 0
    assert frame.loc[3, "equity_cents"] == 7 and frame.loc[2, "realized_pnl_total_cents"] == 900


def test_batch_equals_users_one_at_a_time() -> None:
    symbols = load_factor_model().symbols
    rng = np.random.default_rng(5)
    n = 600
    rows = holdings(*zip(rng.integers(1, 50, n).tolist(), rng.choice(symbols, n).tolist(),
                         rng.integers(-100, 300, n).tolist(), rng.integers(-10**6, 10**7, n).tolist(),
                         rng.integers(-10**5, 10**5, n).tolist(), strict=True))
    prices = dict(zip(symbols, rng.uniform(5, 500, len(symbols)).round(2).tolist(), strict=True))
    marked = mark_holdings(rows, prices)
    users = cash(**{f"u{u}": 10**6 for u in sorted(set(rows["user_id"]))})
    batch = portfolio_totals(marked, users).set_index("user_id")
    for user in users["user_id"][:10]:
        alone = portfolio_totals(marked[marked["user_id"] == user], users[users["user_id"] == user])
        pd.testing.assert_series_equal(alone.set_index("user_id").iloc[0], batch.loc[user])


def test_holdings_without_cash_row_are_refused() -> None:
    with pytest.raises(AccountingError, match="user 9 has holdings but no cash row"):
        portfolio_totals(mark_holdings(holdings((9, "AAPL", 1, 100, 0)), {}), cash(u1=0))


def test_an_empty_batch_of_users_gives_an_empty_frame() -> None:
    marked = mark_holdings(holdings(), {})
    frame = portfolio_totals(marked, pd.DataFrame({"user_id": [], "cash_cents": []}, dtype="int64"))
    assert frame.empty and "day_pnl_cents" in frame.columns
