"""Mark touched users' portfolios to the latest prices and total them, in one batch of numpy for all
the users of a micro-batch.

Money stays integer cents (market value = quantity * price in cents, exact; unrealized P&L = market
value - cost basis). A holding whose symbol has no latest price yet is marked at its average cost
(market value = cost basis, so no unrealized P&L) rather than dropped. Factor risk (VaR/ES, beta,
sector weights) is the web app's (`webapp/valuation.py`, on read, from live prices): the stream
computed and wrote it for every touched user of every batch (~20 µs a user) and nothing read it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stockafolio.accounting import AccountingError


def mark_holdings(holdings: pd.DataFrame, prices: Mapping[str, float]) -> pd.DataFrame:
    """`holdings` (user_id, symbol, quantity, cost_basis_cents, ...) plus `last_price` (dollars, NaN
    when unknown), `market_value_cents` and `unrealized_pnl_cents`."""
    price = holdings["symbol"].map(pd.Series(prices, dtype=np.float64)).to_numpy(dtype=np.float64)
    known = ~np.isnan(price)
    price_cents = np.rint(np.where(known, price, 0.0) * 100).astype(np.int64)
    quantity = holdings["quantity"].to_numpy(dtype=np.int64)
    basis = holdings["cost_basis_cents"].to_numpy(dtype=np.int64)
    value = np.where(known, quantity * price_cents, basis)
    return holdings.assign(last_price=price, market_value_cents=value, unrealized_pnl_cents=value - basis)


def portfolio_totals(marked: pd.DataFrame, cash: pd.DataFrame,
                     day_open_equity: Mapping[int, int] | None = None) -> pd.DataFrame:
    """One row per user of `cash` (user_id, cash_cents; every user of `marked` must have one) with
    the money totals and day P&L. `marked` must hold *all* the positions of those users (as returned
    by `mark_holdings`). `day_open_equity` maps a user to their equity at the start of the UTC day in
    cents; a user without one has a day P&L of 0 (their first valuation of the day opens it)."""
    users = cash["user_id"].to_numpy(dtype=np.int64)
    row = _rows_of(users, marked["user_id"].to_numpy(dtype=np.int64))
    totals = _money_totals(marked, row, len(users), cash["cash_cents"].to_numpy(dtype=np.int64))
    opening = pd.Series(day_open_equity or {}, dtype="float64").reindex(users).to_numpy()
    totals["day_pnl_cents"] = np.where(np.isnan(opening), 0, totals["equity_cents"] - np.nan_to_num(opening)
                                       ).astype(np.int64)
    return pd.DataFrame({"user_id": users, **totals})


def _rows_of(users: np.ndarray, holding_users: np.ndarray) -> np.ndarray:
    """Row of `users` for every holding; refuses holdings of a user without a cash row."""
    order = np.argsort(users, kind="stable")
    at = np.searchsorted(users, holding_users, sorter=order).clip(max=max(len(users) - 1, 0))
    row = order[at] if len(users) else np.zeros(len(holding_users), dtype=np.intp)
    missing = (users[row] != holding_users) if len(users) else np.ones(len(holding_users), dtype=bool)
    if missing.any():
        raise AccountingError(f"user {holding_users[missing][0]} has holdings but no cash row")
    return row


def _money_totals(marked: pd.DataFrame, row: np.ndarray, n_users: int,
                  cash: np.ndarray) -> dict[str, np.ndarray]:
    def total(column: str) -> np.ndarray:
        sums = np.zeros(n_users, dtype=np.int64)
        np.add.at(sums, row, marked[column].to_numpy(dtype=np.int64))
        return sums

    value = total("market_value_cents")
    return {"cash_cents": cash, "market_value_total_cents": value,
            "unrealized_pnl_total_cents": total("unrealized_pnl_cents"),
            "realized_pnl_total_cents": total("realized_pnl_cents"), "equity_cents": cash + value}
