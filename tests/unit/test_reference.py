"""The committed S&P 500 reference tables, their derivation and the risk math on the factor model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stockafolio.reference import derive
from stockafolio.reference.model import (
    FactorModel,
    covariance_matrix,
    load_factor_model,
    load_sector_weights,
    load_universe,
    portfolio_risk,
    positions_matrix,
    sector_weights,
    security_vols,
)

DATA = derive.DEFAULT_DATA
TABLES = ("universe.csv", "factors.csv", "sector_weights.csv")
needs_raw = pytest.mark.skipif(not (DATA / "adj_close_daily.csv.gz").is_file(),
                               reason=f"raw S&P 500 data not present at {DATA}")
Z = {0.95: 1.6449, 0.99: 2.3263}


@pytest.fixture(scope="module")
def model() -> FactorModel:
    return load_factor_model()


def _one_name(model: FactorModel, symbol: str, value: float) -> np.ndarray:
    values = np.zeros((1, len(model.symbols)))
    values[0, model.positions[symbol]] = value
    return values


def _random_books(model: FactorModel, users: int, seed: int = 7) -> np.ndarray:
    """Sparse long/short books: each user holds about 10 names worth -50k..+200k each."""
    rng = np.random.default_rng(seed)
    held = rng.random((users, len(model.symbols))) < 10 / len(model.symbols)
    return np.where(held, rng.uniform(-5e4, 2e5, held.shape), 0.0)


# ---------------------------------------------------------------- the committed tables


def test_universe_has_every_member_once_sorted() -> None:
    universe = load_universe()
    symbols = [s.symbol for s in universe]
    assert len(universe) == 503
    assert symbols == sorted(set(symbols))
    assert {"AAPL", "BRK.B", "MSFT"} <= set(symbols)


def test_eleven_sectors_everywhere(model: FactorModel) -> None:
    sectors = {s.sector for s in load_universe()}
    assert len(sectors) == 11
    assert set(model.sectors) == sectors == {w.sector for w in load_sector_weights()}
    assert len(model.factors) == 12 and model.factors[0] == "market"


def test_popularity_and_sector_weights_sum_to_one() -> None:
    assert math.isclose(sum(s.popularity for s in load_universe()), 1.0, abs_tol=1e-6)
    assert math.isclose(sum(w.weight for w in load_sector_weights()), 1.0, abs_tol=1e-5)
    assert all(s.popularity > 0 for s in load_universe())


def test_sector_weights_agree_with_popularity() -> None:
    by_sector: dict[str, float] = {}
    for s in load_universe():
        by_sector[s.sector] = by_sector.get(s.sector, 0.0) + s.popularity
    for w in load_sector_weights():
        assert w.weight == pytest.approx(by_sector[w.sector], abs=1e-5)


def test_no_negative_or_missing_parameters() -> None:
    for s in load_universe():
        numbers = (s.ann_vol, s.idio_vol, s.beta, s.sector_loading, s.reference_price, s.popularity)
        assert all(math.isfinite(x) for x in numbers), s
        assert s.ann_vol > 0 and s.idio_vol > 0 and s.reference_price > 0 and s.avg_daily_volume > 0, s


def test_estimated_means_too_little_history() -> None:
    universe = load_universe()
    assert all(s.estimated == (s.returns < derive.MIN_RETURNS) for s in universe)
    assert sum(s.estimated for s in universe) == 152  # 150 without prices + FOX, FOXA (~210 days)


def test_factor_covariance_is_positive_definite_and_market_orthogonal(model: FactorModel) -> None:
    cov = model.factor_cov
    assert np.array_equal(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0
    assert np.all(cov[0, 1:] == 0)  # sector factors are residuals of the market


def test_model_vol_matches_the_table(model: FactorModel) -> None:
    table = np.array([s.ann_vol for s in load_universe()])
    np.testing.assert_allclose(security_vols(model) * math.sqrt(252), table, rtol=2e-3)


def test_arrays_are_read_only(model: FactorModel) -> None:
    with pytest.raises(ValueError, match="read-only"):
        model.exposures[0, 0] = 2.0


# ---------------------------------------------------------------- the derivation


@needs_raw
def test_derivation_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    assert derive.main(["--data", str(DATA), "--out", str(tmp_path)]) == 0
    for name in TABLES:
        committed = derive.DEFAULT_OUT / name
        assert (tmp_path / name).read_bytes() == committed.read_bytes(), f"{name} differs; rerun derive"


@needs_raw
def test_model_reproduces_sample_vol_of_liquid_names(model: FactorModel) -> None:
    prices = pd.read_csv(DATA / "adj_close_daily.csv.gz", index_col="Date",
                         usecols=["Date", "AAPL", "MSFT", "JPM", "XOM", "KO"])
    sample = np.log(prices).diff().std() * math.sqrt(252)
    modelled = security_vols(model)[model.index_of(list(sample.index))] * math.sqrt(252)
    np.testing.assert_allclose(modelled, sample.to_numpy(), rtol=0.01)


def test_missing_input_is_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert derive.main(["--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "constituents.csv" in capsys.readouterr().err


def test_log_returns_never_span_a_gap_or_a_bad_price() -> None:
    prices = pd.DataFrame({"X": [10.0, np.nan, 11.0, 12.0, 0.0, 13.0]},
                          index=pd.date_range("2019-01-01", periods=6))
    returns = derive.log_returns(prices)["X"]
    assert returns.isna().tolist() == [True, True, False, True, True]
    assert returns.iloc[2] == pytest.approx(math.log(12 / 11))


# ---------------------------------------------------------------- risk math


@pytest.mark.parametrize("alpha", [0.95, 0.99])
def test_one_stock_var_and_es_closed_form(model: FactorModel, alpha: float) -> None:
    value = 250_000.0
    risk = portfolio_risk(model, _one_name(model, "AAPL", value))
    i = model.positions["AAPL"]
    sigma = math.sqrt(covariance_matrix(model)[i, i])
    z = Z[alpha]
    density = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    var, es = (risk.var_95, risk.es_95) if alpha == 0.95 else (risk.var_99, risk.es_99)
    assert var[0] == pytest.approx(value * z * sigma, rel=1e-4)
    # z has 4 decimals, so pdf(z) is good to z * 5e-5 relative
    assert es[0] == pytest.approx(value * sigma * density / (1 - alpha), rel=3e-4)
    assert risk.market_value[0] == value and risk.daily_vol[0] == pytest.approx(value * sigma)


@pytest.mark.parametrize("symbol", ["AAPL", "XOM", "PCG", "ABNB"])
@pytest.mark.parametrize("value", [1e5, -3e4])
def test_beta_of_one_name_is_its_beta(model: FactorModel, symbol: str, value: float) -> None:
    beta = next(s.beta for s in load_universe() if s.symbol == symbol)
    assert portfolio_risk(model, _one_name(model, symbol, value)).beta[0] == pytest.approx(beta, rel=1e-12)


def test_batch_equals_a_loop_over_users(model: FactorModel) -> None:
    books = _random_books(model, users=40)
    batch = portfolio_risk(model, books)
    cov = covariance_matrix(model)
    for u, book in enumerate(books):
        single = portfolio_risk(model, book[None, :])
        for field in ("market_value", "daily_vol", "beta", "var_95", "var_99", "es_95", "es_99"):
            assert getattr(batch, field)[u] == pytest.approx(getattr(single, field)[0], rel=1e-12)
        assert batch.daily_vol[u] == pytest.approx(math.sqrt(book @ cov @ book), rel=1e-10)


def test_empty_portfolio_has_no_risk(model: FactorModel) -> None:
    risk = portfolio_risk(model, np.zeros((3, len(model.symbols))))
    for field in ("market_value", "daily_vol", "beta", "var_99", "es_99"):
        assert np.all(getattr(risk, field) == 0)


def test_values_of_the_wrong_shape_are_refused(model: FactorModel) -> None:
    with pytest.raises(ValueError, match=r"\(users, 503\)"):
        portfolio_risk(model, np.zeros((2, 10)))


def test_positions_matrix_scatters_and_adds(model: FactorModel) -> None:
    matrix = positions_matrix(model, np.array([0, 2, 2]), ["MSFT", "KO", "KO"], np.array([1.0, 2.0, 3.0]), 3)
    assert matrix.shape == (3, 503) and matrix.sum() == 6.0
    assert matrix[2, model.positions["KO"]] == 5.0
    with pytest.raises(KeyError, match="NOPE"):
        positions_matrix(model, np.array([0]), ["NOPE"], np.array([1.0]), 1)


def test_sector_weights_of_a_two_name_book(model: FactorModel) -> None:
    book = _one_name(model, "AAPL", 3.0) + _one_name(model, "XOM", 1.0)
    weights = sector_weights(model, book)[0]
    assert weights[model.sectors.index("Information Technology")] == 0.75
    assert weights[model.sectors.index("Energy")] == 0.25 and weights.sum() == 1.0


@needs_raw
def test_shipped_scenarios_are_the_derived_ones_to_a_basis_point(tmp_path: Path) -> None:
    """The nightly's default history (no raw data in a user's clone) against a fresh derivation."""
    assert derive.main(["--data", str(DATA), "--out", str(tmp_path)]) == 0
    shipped, fresh = derive.read_scenarios(), derive.read_scenarios(tmp_path)
    pd.testing.assert_frame_equal(shipped, fresh)
    exact = derive.derive(DATA, lambda _: None).scenarios
    assert list(shipped.columns) == list(exact.columns) and (shipped.index == exact.index).all()
    assert np.abs(shipped.to_numpy() - exact.to_numpy()).max() <= 0.5 / derive.SCENARIO_SCALE + 1e-12


def test_scenarios_load_without_the_raw_data() -> None:
    scenarios = derive.read_scenarios()
    assert scenarios.shape == (1258, 503) and not scenarios.isna().any().any()
    assert set(scenarios.columns) == {s.symbol for s in load_universe()}
