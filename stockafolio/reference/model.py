"""The S&P 500 universe and its factor risk model, read from the committed tables in `data/`, and the
vectorised risk math the generator, the streaming job and the web app share.

Units: every variance and covariance is *daily* (of daily log returns, so of daily P&L per unit of
market value); annualise by multiplying by `TRADING_DAYS` (volatility by its square root). Market
values are in the account currency; risk figures come back in the same currency.

The model: a name's daily return is  beta * market + sector_loading * its_sector + idiosyncratic,
so the covariance of all names is  B F B^T + D  with B the (names x 12) exposures, F the 12 x 12
factor covariance and D the diagonal of idiosyncratic variances (see `data/README.md`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from statistics import NormalDist

import numpy as np

from stockafolio.errors import StockafolioError

TRADING_DAYS = 252
MARKET = "market"
CONFIDENCE_LEVELS = (0.95, 0.99)


class ReferenceDataError(StockafolioError):
    """A committed reference table is missing or does not hold what the loader expects."""


@dataclass(frozen=True)
class Security:
    """One S&P 500 member, one row of `universe.csv` (vols annualised, volume in shares per day)."""

    symbol: str
    name: str
    sector: str
    reference_price: float
    ann_vol: float
    beta: float
    sector_loading: float
    idio_vol: float
    avg_daily_volume: int
    popularity: float
    returns: int
    estimated: bool


@dataclass(frozen=True)
class SectorWeight:
    """One row of `sector_weights.csv`: the index's weight in a sector, by average dollar volume."""

    sector: str
    names: int
    estimated: int
    dollar_volume_musd: float
    weight: float


@dataclass(frozen=True, eq=False)
class FactorModel:
    """The risk model in matrix form; row i of every per-name array is `symbols[i]`.

    `factors[0]` is the market, `factors[1 + k]` the residual factor of GICS sector `sectors[k]`.
    Arrays are read-only and daily: `factor_cov` (12, 12), `exposures` (names, 12), `idio_var`
    (names,); `sector_index` (names,) gives each name's position in `sectors`.
    """

    symbols: tuple[str, ...]
    factors: tuple[str, ...]
    sectors: tuple[str, ...]
    factor_cov: np.ndarray
    exposures: np.ndarray
    idio_var: np.ndarray
    sector_index: np.ndarray

    @cached_property
    def positions(self) -> dict[str, int]:
        """Symbol -> row (and column) position in every per-name array."""
        return {symbol: i for i, symbol in enumerate(self.symbols)}

    def index_of(self, symbols: Sequence[str]) -> np.ndarray:
        """Column positions of `symbols`; raises `KeyError` naming the first unknown symbol."""
        return np.array([self.positions[s] for s in symbols], dtype=np.intp)


@dataclass(frozen=True, eq=False)
class PortfolioRisk:
    """Risk of many portfolios at once; every field is a (users,) array.

    Money fields are in the currency of the market values and are losses as positive numbers:
    `daily_vol` is the standard deviation of 1-day P&L, `var_95`/`var_99` the parametric (normal,
    zero-mean) 1-day value at risk and `es_95`/`es_99` the expected shortfall beyond it. `beta` is to
    the market factor, per unit of net market value (0 for an empty or zero-net portfolio).
    """

    market_value: np.ndarray
    daily_vol: np.ndarray
    beta: np.ndarray
    var_95: np.ndarray
    var_99: np.ndarray
    es_95: np.ndarray
    es_99: np.ndarray


# ---------------------------------------------------------------- loading the committed tables


@cache
def load_universe(data_dir: Path | None = None) -> tuple[Security, ...]:
    """The 503 members sorted by symbol; `data_dir` defaults to the tables shipped in the package."""
    return tuple(_security(row) for row in _read_rows(data_dir, "universe.csv"))


@cache
def load_sector_weights(data_dir: Path | None = None) -> tuple[SectorWeight, ...]:
    """The 11 GICS sectors with the index's weight in each (weights sum to 1)."""
    return tuple(_sector_weight(row) for row in _read_rows(data_dir, "sector_weights.csv"))


@cache
def load_factor_model(data_dir: Path | None = None) -> FactorModel:
    """The factor model built from `factors.csv` and the exposures in `universe.csv`."""
    rows = _read_rows(data_dir, "factors.csv")
    factors = tuple(row["factor"] for row in rows)
    cov = np.array([[float(row[f]) for f in factors] for row in rows])
    _check_factors(factors, cov)
    return _build_model(load_universe(data_dir), factors, tuple(row["sector"] for row in rows[1:]), cov)


def _read_rows(data_dir: Path | None, name: str) -> list[dict[str, str]]:
    try:
        text = (data_dir / name).read_text() if data_dir else _packaged(name)
    except FileNotFoundError:
        raise ReferenceDataError(f"{name} is missing; regenerate it with: "
                                 "python -m stockafolio.reference.derive") from None
    return list(csv.DictReader(io.StringIO(text)))


def _packaged(name: str) -> str:
    return resources.files(__package__).joinpath("data", name).read_text()


def _security(row: dict[str, str]) -> Security:
    floats = ("reference_price", "ann_vol", "beta", "sector_loading", "idio_vol", "popularity")
    return Security(
        symbol=row["symbol"], name=row["name"], sector=row["sector"],
        **{key: float(row[key]) for key in floats},
        avg_daily_volume=int(row["avg_daily_volume"]), returns=int(row["returns"]),
        estimated=_flag(row["estimated"]),
    )


def _sector_weight(row: dict[str, str]) -> SectorWeight:
    return SectorWeight(sector=row["sector"], names=int(row["names"]), estimated=int(row["estimated"]),
                        dollar_volume_musd=float(row["dollar_volume_musd"]), weight=float(row["weight"]))


def _flag(text: str) -> bool:
    if text not in ("true", "false"):
        raise ReferenceDataError(f"estimated must be 'true' or 'false', got {text!r}")
    return text == "true"


def _check_factors(factors: tuple[str, ...], cov: np.ndarray) -> None:
    if factors[:1] != (MARKET,) or cov.shape != (len(factors), len(factors)):
        raise ReferenceDataError(f"factors.csv must start with {MARKET!r} and hold a square "
                                 f"covariance; got factors {factors} and shape {cov.shape}")
    if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() <= 0:
        raise ReferenceDataError("factors.csv covariance is not symmetric positive definite")


def _build_model(universe: tuple[Security, ...], factors: tuple[str, ...], sectors: tuple[str, ...],
                 cov: np.ndarray) -> FactorModel:
    sector_index = _sector_index(universe, sectors)
    exposures = exposure_matrix(np.array([s.beta for s in universe]),
                                np.array([s.sector_loading for s in universe]), sector_index, len(sectors))
    idio_var = np.array([s.idio_vol for s in universe]) ** 2 / TRADING_DAYS
    arrays = [_frozen(a) for a in (cov, exposures, idio_var, sector_index)]
    return FactorModel(tuple(s.symbol for s in universe), factors, sectors, *arrays)


def _sector_index(universe: tuple[Security, ...], sectors: tuple[str, ...]) -> np.ndarray:
    unknown = sorted({s.sector for s in universe} - set(sectors))
    if unknown:
        raise ReferenceDataError(f"universe.csv sectors {unknown} have no factor in factors.csv")
    return np.array([sectors.index(s.sector) for s in universe], dtype=np.intp)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


# ---------------------------------------------------------------- pure numpy risk math


def exposure_matrix(beta: np.ndarray, loading: np.ndarray, sector_index: np.ndarray,
                    n_sectors: int) -> np.ndarray:
    """(names, 1 + n_sectors) exposures: beta on the market column, the loading on the name's sector."""
    exposures = np.zeros((len(beta), 1 + n_sectors))
    exposures[:, 0] = beta
    exposures[np.arange(len(beta)), 1 + sector_index] = loading
    return exposures


def total_variance(exposures: np.ndarray, factor_cov: np.ndarray, idio_var: np.ndarray) -> np.ndarray:
    """Each name's variance under the model, the diagonal of B F B^T + D, without building it."""
    return np.einsum("nf,fg,ng->n", exposures, factor_cov, exposures) + idio_var


def covariance_matrix(model: FactorModel) -> np.ndarray:
    """The full (names, names) daily covariance B F B^T + D implied by the model."""
    b = model.exposures
    return b @ model.factor_cov @ b.T + np.diag(model.idio_var)


def security_vols(model: FactorModel) -> np.ndarray:
    """Each name's daily volatility under the model."""
    return np.sqrt(total_variance(model.exposures, model.factor_cov, model.idio_var))


def positions_matrix(model: FactorModel, users: np.ndarray, symbols: Sequence[str], values: np.ndarray,
                     n_users: int) -> np.ndarray:
    """Scatter (user row, symbol, market value) triples into the (n_users, names) matrix the risk
    functions take; repeated pairs add up. Raises `KeyError` for a symbol outside the universe."""
    matrix = np.zeros((n_users, len(model.symbols)))
    np.add.at(matrix, (np.asarray(users, dtype=np.intp), model.index_of(symbols)), values)
    return matrix


def portfolio_variance(model: FactorModel, values: np.ndarray) -> np.ndarray:
    """Daily P&L variance of each row of `values` (users, names): x F x^T + v^2 . D with x = v B."""
    x = _factor_exposure(model, values)
    return np.einsum("uf,fg,ug->u", x, model.factor_cov, x) + np.square(values) @ model.idio_var


def portfolio_beta(model: FactorModel, values: np.ndarray) -> np.ndarray:
    """Beta to the market factor, cov(P&L, market) / var(market) / net market value, 0 where that is 0."""
    covariance = _factor_exposure(model, values) @ model.factor_cov[:, 0]
    net = values.sum(axis=1)
    return np.divide(covariance / model.factor_cov[0, 0], net, out=np.zeros_like(net), where=net != 0)


def sector_weights(model: FactorModel, values: np.ndarray) -> np.ndarray:
    """(users, sectors) share of net market value in each sector (`model.sectors` order), 0 if empty."""
    by_sector = values @ np.eye(len(model.sectors))[model.sector_index]
    net = values.sum(axis=1, keepdims=True)
    return np.divide(by_sector, net, out=np.zeros_like(by_sector), where=net != 0)


def normal_var_es(sigma: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean normal VaR and ES at confidence `alpha`: z*sigma and sigma*pdf(z)/(1-alpha)."""
    z = NormalDist().inv_cdf(alpha)
    density = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return z * sigma, sigma * density / (1 - alpha)


def portfolio_risk(model: FactorModel, values: np.ndarray) -> PortfolioRisk:
    """Market value, daily volatility, beta, 1-day VaR and ES at 95 and 99 % of every row of `values`,
    a (users, names) matrix of market values in `model.symbols` order (negative for short)."""
    values = _check_values(model, values)
    sigma = np.sqrt(np.maximum(portfolio_variance(model, values), 0.0))
    (var_95, es_95), (var_99, es_99) = (normal_var_es(sigma, a) for a in CONFIDENCE_LEVELS)
    return PortfolioRisk(values.sum(axis=1), sigma, portfolio_beta(model, values), var_95, var_99,
                         es_95, es_99)


def _factor_exposure(model: FactorModel, values: np.ndarray) -> np.ndarray:
    return values @ model.exposures


def _check_values(model: FactorModel, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(model.symbols):
        raise ValueError(f"market values must be a (users, {len(model.symbols)}) matrix in "
                         f"model.symbols order, got shape {values.shape}")
    return values
