"""Marking holdings to prices and the per-user totals and factor-model risk of a batch of users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockafolio.accounting import AccountingError
from stockafolio.reference.model import FactorModel, load_factor_model, total_variance
from streaming.risk import mark_holdings, portfolio_totals

Z = {0.95: 1.6448536269514722, 0.99: 2.3263478740408408}
PDF = {a: np.exp(-z * z / 2) / np.sqrt(2 * np.pi) for a, z in Z.items()}


@pytest.fixture(scope="module")
def model() -> FactorModel:
    return load_factor_model()


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


def test_var_of_a_one_stock_portfolio_is_the_closed_form(model: FactorModel) -> None:
    marked = mark_holdings(holdings((7, "AAPL", 100, 1_000_000, 0)), {"AAPL": 250.0})
    row = portfolio_totals(marked, cash(u7=0), model).iloc[0]
    i = model.positions["AAPL"]
    sigma = 25_000.0 * np.sqrt(total_variance(model.exposures, model.factor_cov, model.idio_var)[i])
    assert row["daily_vol"] == pytest.approx(sigma, rel=1e-12)
    for alpha, name in ((0.95, "95"), (0.99, "99")):
        assert row[f"var_{name}"] == pytest.approx(Z[alpha] * sigma, rel=1e-9)
        assert row[f"es_{name}"] == pytest.approx(sigma * PDF[alpha] / (1 - alpha), rel=1e-9)
    beta = model.exposures[i] @ model.factor_cov[:, 0] / model.factor_cov[0, 0]
    assert row["beta"] == pytest.approx(beta, rel=1e-12)
    assert row["largest_position_weight"] == 1.0
    assert row["sector_weights"] == {model.sectors[model.sector_index[i]]: 1.0}


def test_totals_sector_weights_and_largest_position(model: FactorModel) -> None:
    marked = mark_holdings(holdings((1, "AAPL", 30, 270_000, 500), (1, "XOM", 10, 120_000, -200),
                                    (2, "XOM", 0, 0, 900)), {"AAPL": 100.0, "XOM": 100.0})
    frame = portfolio_totals(marked, cash(u1=1_000_000, u2=50_000, u3=7), model,
                             day_open_equity={1: 1_350_000}).set_index("user_id")
    one = frame.loc[1]
    assert (one["market_value_total_cents"], one["unrealized_pnl_total_cents"]) == (400_000, 10_000)
    money = one[["realized_pnl_total_cents", "equity_cents", "day_pnl_cents"]]
    assert money.tolist() == [300, 1_400_000, 50_000]
    assert one["largest_position_weight"] == pytest.approx(0.75)
    sector_of = {s: model.sectors[model.sector_index[model.positions[s]]] for s in ("AAPL", "XOM")}
    sectors = {sector_of["AAPL"]: 0.75, sector_of["XOM"]: 0.25}
    assert one["sector_weights"] == pytest.approx(sectors)
    for user in (2, 3):  # nothing held (or only a closed position): no risk, day P&L 0 without an opening
        quiet = frame.loc[user, ["var_99", "beta", "largest_position_weight", "day_pnl_cents"]]
        assert quiet.tolist() == [0, 0, 0, 0]
        assert frame.loc[user, "sector_weights"] == {}
    assert frame.loc[3, "equity_cents"] == 7


def test_batch_equals_users_one_at_a_time(model: FactorModel) -> None:
    rng = np.random.default_rng(5)
    n = 600
    rows = holdings(*zip(rng.integers(1, 50, n).tolist(), rng.choice(model.symbols, n).tolist(),
                         rng.integers(-100, 300, n).tolist(), rng.integers(-10**6, 10**7, n).tolist(),
                         rng.integers(-10**5, 10**5, n).tolist(), strict=True))
    prices = dict(zip(model.symbols, rng.uniform(5, 500, len(model.symbols)).round(2).tolist(), strict=True))
    marked = mark_holdings(rows, prices)
    users = cash(**{f"u{u}": 10**6 for u in sorted(set(rows["user_id"]))})
    batch = portfolio_totals(marked, users, model).set_index("user_id")
    for user in users["user_id"][:10]:
        alone = portfolio_totals(marked[marked["user_id"] == user], users[users["user_id"] == user], model)
        pd.testing.assert_series_equal(alone.set_index("user_id").iloc[0].drop("sector_weights"),
                                       batch.loc[user].drop("sector_weights"), rtol=1e-9)


def test_holdings_without_cash_row_or_outside_the_universe_are_refused(model: FactorModel) -> None:
    with pytest.raises(AccountingError, match="user 9 has holdings but no cash row"):
        portfolio_totals(mark_holdings(holdings((9, "AAPL", 1, 100, 0)), {}), cash(u1=0), model)
    with pytest.raises(AccountingError, match="symbol 'NOPE' is not in the risk model's universe"):
        portfolio_totals(mark_holdings(holdings((1, "NOPE", 1, 100, 0)), {}), cash(u1=0), model)


def test_an_empty_batch_of_users_gives_an_empty_frame(model: FactorModel) -> None:
    marked = mark_holdings(holdings(), {})
    frame = portfolio_totals(marked, pd.DataFrame({"user_id": [], "cash_cents": []}, dtype="int64"), model)
    assert frame.empty and "var_99" in frame.columns
