"""The price process against its calibration: volatilities and correlations over a long simulation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from generator.clock import SESSION_SECONDS
from generator.market import Market, PriceProcess, log_returns, to_cents
from stockafolio.reference import covariance_matrix, load_factor_model, load_universe

SECONDS = 60_000  # 2.6 simulated sessions: vol estimates good to ~0.3 %, correlations to ~0.004
YEAR_SECONDS = SESSION_SECONDS * 252


@pytest.fixture(scope="module")
def returns(market: Market) -> np.ndarray:
    rng = np.random.default_rng(2024)
    return np.concatenate([log_returns(market, rng, 10_000) for _ in range(SECONDS // 10_000)])


def test_annualised_vols_match_the_calibration(returns: np.ndarray) -> None:
    simulated = returns.std(axis=0) * math.sqrt(YEAR_SECONDS)
    calibrated = np.array([s.ann_vol for s in load_universe()])
    np.testing.assert_allclose(simulated, calibrated, rtol=0.03)


def test_correlations_match_the_factor_model(returns: np.ndarray) -> None:
    model = covariance_matrix(load_factor_model())
    sd = np.sqrt(np.diag(model))
    expected = model / np.outer(sd, sd)
    simulated = np.corrcoef(returns, rowvar=False)
    assert np.abs(simulated - expected).max() < 0.035
    off = ~np.eye(len(sd), dtype=bool)
    assert np.mean(simulated[off]) == pytest.approx(np.mean(expected[off]), abs=0.005)


def test_same_sector_names_move_together_more(market: Market, returns: np.ndarray) -> None:
    i, j, k = (market.symbols.index(s) for s in ("XOM", "CVX", "MSFT"))
    corr = np.corrcoef(returns[:, [i, j, k]], rowvar=False)
    assert corr[0, 1] > 0.6 > corr[0, 2] > 0.1


def test_market_factor_vol_matches(market: Market, returns: np.ndarray) -> None:
    """An equal-weighted portfolio is dominated by the market factor (13 % a year)."""
    model = load_factor_model()
    weights = np.full(len(market.symbols), 1 / len(market.symbols))
    expected = math.sqrt(weights @ covariance_matrix(model) @ weights * 252)
    assert (returns @ weights).std() * math.sqrt(YEAR_SECONDS) == pytest.approx(expected, rel=0.03)


def test_prices_stay_positive_even_with_absurd_volatility(market: Market) -> None:
    wild = dataclasses.replace(market, idio_sd=market.idio_sd * 200, drift=market.drift * 200**2)
    process = PriceProcess(wild, np.random.default_rng(1))
    for _ in range(20):
        path = process.advance(5_000)
        assert np.all(path > 0) and np.all(np.isfinite(path))
        assert np.all(to_cents(path) >= 1)


def test_prices_are_martingales_around_the_reference() -> None:
    """The -var/2 drift keeps E[price] at the start price, visible here with 10x the volatility."""
    names = ("AAPL", "XOM", "JPM", "KO", "TSLA", "PCG", "AMZN", "F", "NVDA", "MO")
    base = Market.from_model(load_factor_model(), load_universe(), names)
    loud = dataclasses.replace(base, factor_chol=base.factor_chol * 10, idio_sd=base.idio_sd * 10,
                               drift=base.drift * 100)
    rng = np.random.default_rng(3)
    finals = np.stack([PriceProcess(loud, rng).advance(2_340)[-1] for _ in range(2_000)])
    ratio = finals.mean(axis=0) / loud.reference_prices
    np.testing.assert_allclose(ratio, 1.0, atol=0.01)  # ~5 % vol per path, 2,000 paths


def test_same_seed_same_path(market: Market) -> None:
    a = PriceProcess(market, np.random.default_rng(9)).advance(100)
    b = PriceProcess(market, np.random.default_rng(9)).advance(100)
    assert np.array_equal(a, b)


def test_a_subset_of_symbols_keeps_their_parameters(market: Market) -> None:
    small = Market.from_model(load_factor_model(), load_universe(), ("AAPL", "XOM"))
    i = market.symbols.index("XOM")
    assert small.symbols == ("AAPL", "XOM") and small.idio_sd[1] == market.idio_sd[i]
    assert small.popularity.sum() == pytest.approx(1.0)


def test_covariance_per_second_is_the_daily_model_scaled(market: Market) -> None:
    daily = covariance_matrix(load_factor_model())
    np.testing.assert_allclose(market.covariance_per_second() * SESSION_SECONDS, daily, rtol=1e-9, atol=1e-15)
