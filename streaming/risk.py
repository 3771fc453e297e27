"""Mark touched users' portfolios to the latest prices and compute their factor-model risk, in one
batch of numpy for all the users of a micro-batch.

Money stays integer cents where it is accounting (market value = quantity * price in cents, exact;
unrealized P&L = market value - cost basis); risk figures are float dollars from
`stockafolio.reference.model.portfolio_risk` (1-day parametric VaR/ES at 95/99 %, daily volatility,
beta to the market). A holding whose symbol has no latest price yet is marked at its average cost
(market value = cost basis, so no unrealized P&L) rather than dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stockafolio.accounting import AccountingError
from stockafolio.reference.model import FactorModel, portfolio_risk, positions_matrix, sector_weights

RISK_FIELDS = ("daily_vol", "beta", "var_95", "var_99", "es_95", "es_99")


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


def portfolio_totals(marked: pd.DataFrame, cash: pd.DataFrame, model: FactorModel,
                     day_open_equity: Mapping[int, int] | None = None) -> pd.DataFrame:
    """One row per user of `cash` (user_id, cash_cents; every user of `marked` must have one) with
    the totals, day P&L and risk. `marked` must hold *all* the positions of those users (as returned
    by `mark_holdings`). `day_open_equity` maps a user to their equity at the start of the UTC day in
    cents; a user without one has a day P&L of 0 (their first valuation of the day opens it)."""
    users = cash["user_id"].to_numpy(dtype=np.int64)
    row = _rows_of(users, marked["user_id"].to_numpy(dtype=np.int64))
    values = _values_matrix(model, marked, row, len(users))
    totals = _money_totals(marked, row, len(users), cash["cash_cents"].to_numpy(dtype=np.int64))
    opening = pd.Series(day_open_equity or {}, dtype="float64").reindex(users).to_numpy()
    totals["day_pnl_cents"] = np.where(np.isnan(opening), 0, totals["equity_cents"] - np.nan_to_num(opening)
                                       ).astype(np.int64)
    risk = portfolio_risk(model, values)
    frame = pd.DataFrame({"user_id": users, **totals, **{f: getattr(risk, f) for f in RISK_FIELDS}})
    frame["largest_position_weight"] = largest_position_weight(values)
    frame["sector_weights"] = sector_weight_maps(model, values)
    return frame


def _rows_of(users: np.ndarray, holding_users: np.ndarray) -> np.ndarray:
    """Row of `users` for every holding; refuses holdings of a user without a cash row."""
    order = np.argsort(users, kind="stable")
    at = np.searchsorted(users, holding_users, sorter=order).clip(max=max(len(users) - 1, 0))
    row = order[at] if len(users) else np.zeros(len(holding_users), dtype=np.intp)
    missing = (users[row] != holding_users) if len(users) else np.ones(len(holding_users), dtype=bool)
    if missing.any():
        raise AccountingError(f"user {holding_users[missing][0]} has holdings but no cash row")
    return row


def _values_matrix(model: FactorModel, marked: pd.DataFrame, row: np.ndarray, n_users: int) -> np.ndarray:
    """(users, names) market values in dollars, the matrix `portfolio_risk` takes."""
    try:
        return positions_matrix(model, row, marked["symbol"].tolist(),
                                marked["market_value_cents"].to_numpy(dtype=np.float64) / 100, n_users)
    except KeyError as exc:
        raise AccountingError(f"symbol {exc.args[0]!r} is not in the risk model's universe") from None


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


def largest_position_weight(values: np.ndarray) -> np.ndarray:
    """Largest |market value| over gross market value (sum of |values|) per user, 0 when empty."""
    gross = np.abs(values).sum(axis=1)
    return np.divide(np.abs(values).max(axis=1, initial=0.0), gross, out=np.zeros(len(values)),
                     where=gross != 0)


def sector_weight_maps(model: FactorModel, values: np.ndarray) -> list[dict[str, float]]:
    """Per user, sector -> share of net market value, only the sectors held (a CQL map column)."""
    weights = sector_weights(model, values)
    if not len(weights):
        return []
    users, sectors = np.nonzero(weights)  # row-major: grouped by user
    cuts = np.searchsorted(users, np.arange(1, len(weights)))
    names = np.split(np.array(model.sectors, dtype=object)[sectors], cuts)
    shares = np.split(weights[users, sectors], cuts)
    return [dict(zip(n.tolist(), w.tolist(), strict=True)) for n, w in zip(names, shares, strict=True)]
