"""Historical-simulation VaR / ES on hand-made scenarios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from batch import risk


def test_var_es_takes_the_kth_worst_loss() -> None:
    pnl = -np.arange(1, 101, dtype=float)[None, :]  # losses 1..100: 5 % tail = 5 worst (96..100)
    got = risk.var_es(pnl)
    assert got["var_95"][0] == 96 and got["es_95"][0] == pytest.approx(98.0)
    assert got["var_99"][0] == 100 and got["es_99"][0] == 100


def test_var_es_in_float32_selects_on_integer_keys_with_the_float_order() -> None:
    rng = np.random.default_rng(11)
    pnl = rng.normal(0, 1000, (50, 300)).astype(np.float32)
    pnl[0, :5] = [-0.0, 0.0, -1e-30, 1e-30, -3e38]  # signed zeros, tiny and huge values
    got = risk.var_es(pnl)
    want = risk.var_es(pnl.astype(np.float64))  # float64 takes the plain partition
    for name in ("var_95", "var_99", "es_95", "es_99"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6)
    assert got["es_99"][0] > 9e37  # the huge loss is in row 0's 1 % tail (its 3 worst of 300)
    keys = risk._ordered_keys(pnl[0])
    assert np.array_equal(np.argsort(keys, kind="stable"), np.argsort(pnl[0], kind="stable"))
    assert np.array_equal(risk._ordered_keys(keys).view(np.float32), pnl[0])


def test_scenario_pnl_sums_positions_per_user() -> None:
    returns = np.array([[0.1, -0.2], [0.0, 0.5]])  # 2 names x 2 scenarios
    users, pnl = risk.scenario_pnl(
        np.array([7, 3, 7]), np.array([0, 1, 1]), np.array([100.0, 10.0, -20.0]), returns
    )
    assert users.tolist() == [3, 7]
    np.testing.assert_allclose(pnl, [[0.0, 5.0], [10.0, -20.0 - 10.0]])


def test_scenario_pnl_adds_up_a_repeated_pair_and_equals_the_dense_product() -> None:
    rng = np.random.default_rng(5)
    returns = rng.normal(0, 0.02, (30, 50)).astype(np.float32)
    users, names = rng.integers(0, 40, 300), rng.integers(0, 30, 300)
    values = rng.lognormal(6, 1, 300)
    values[1], names[1], users[1] = 11.0, names[0], users[0]  # one (user, name) pair twice
    got_users, pnl = risk.scenario_pnl(users, names, values, returns)
    dense = np.zeros((users.max() + 1, 30))
    np.add.at(dense, (users, names), values)
    assert pnl.dtype == np.float32 and got_users.tolist() == sorted(set(users.tolist()))
    np.testing.assert_allclose(pnl, dense[got_users] @ returns.astype(np.float64), rtol=1e-4, atol=1e-2)


def test_hist_var_group_in_cents_and_dollars() -> None:
    returns = np.tile(np.linspace(-0.1, 0.1, 100), (2, 1))  # both names: the same 100 scenarios
    positions = pd.DataFrame(
        {"user_id": [1, 1, 2], "symbol": ["A", "B", "A"], "value": [600.0, 400.0, -50.0]}
    )
    got = risk.hist_var_group(positions, ("A", "B"), returns).set_index("user_id")
    assert got.loc[1, "market_value_cents"] == 100_000 and got.loc[2, "gross_exposure_cents"] == 5_000
    assert got.loc[1, "var_99"] == pytest.approx(1000 * 0.1) and got.loc[2, "var_99"] == pytest.approx(
        50 * 0.1
    )
    assert got.loc[1, "scenarios"] == 100


def test_unknown_symbol_is_a_clear_error() -> None:
    positions = pd.DataFrame({"user_id": [1], "symbol": ["ZZZ"], "value": [1.0]})
    with pytest.raises(risk.BatchError, match="ZZZ"):
        risk.hist_var_group(positions, ("A",), np.zeros((1, 3)))


def test_missing_returns_come_from_the_factor_model() -> None:
    index = pd.date_range("2020-01-01", periods=2)
    returns = pd.DataFrame({"A": [0.01, np.nan]}, index=index)
    factors = pd.DataFrame({"market": [0.02, 0.03], "energy": [0.0, -0.01]}, index=index)
    params = pd.DataFrame({"beta": [2.0], "sector_loading": [1.0]}, index=["A"])
    filled = risk.fill_with_model(returns, factors, params, pd.Series({"A": "Energy"}))
    assert filled["A"].tolist() == pytest.approx([0.01, 2 * 0.03 - 0.01])
