"""The correlated price process: a factor geometric Brownian motion, one step per simulated second.

Each second every name's log price moves by

    r = B f + e - var / 2 * dt,   f ~ N(0, F dt),  e ~ N(0, D dt),  dt = 1 / SESSION_SECONDS day

with B, F, D the calibrated exposures, daily factor covariance and idiosyncratic variances of
`stockafolio.reference` (market + 11 GICS sector factors). The -var/2 drift keeps each price a
martingale. Prices are exp(log price), so they are positive by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.clock import SESSION_SECONDS
from stockafolio.reference import FactorModel, Security

MIN_PRICE = 0.01  # a trade price rounds to the cent, never below one


@dataclass(frozen=True, eq=False)
class Market:
    """The parameters of the process for a universe; row i of every array is `symbols[i]`."""

    symbols: tuple[str, ...]
    reference_prices: np.ndarray  # (names,) USD, the starting prices
    popularity: np.ndarray  # (names,) sums to 1: how often users trade each name
    exposures: np.ndarray  # (names, factors)
    factor_chol: np.ndarray  # lower Cholesky factor of the per-second factor covariance
    idio_sd: np.ndarray  # (names,) per-second idiosyncratic standard deviation
    drift: np.ndarray  # (names,) per-second log drift, -variance / 2

    @classmethod
    def from_model(cls, model: FactorModel, universe: tuple[Security, ...],
                   symbols: tuple[str, ...] | None = None) -> Market:
        """The market of `symbols` (default: the whole universe), calibrated by `model`."""
        by_symbol = {s.symbol: s for s in universe}
        chosen = symbols or model.symbols
        rows = model.index_of(chosen)
        dt = 1.0 / SESSION_SECONDS
        exposures = model.exposures[rows]
        factor_cov = model.factor_cov * dt
        variance = np.einsum("nf,fg,ng->n", exposures, factor_cov, exposures) + model.idio_var[rows] * dt
        popularity = np.array([by_symbol[s].popularity for s in chosen])
        return cls(
            symbols=tuple(chosen),
            reference_prices=np.array([by_symbol[s].reference_price for s in chosen]),
            popularity=popularity / popularity.sum(),
            exposures=exposures, factor_chol=np.linalg.cholesky(factor_cov),
            idio_sd=np.sqrt(model.idio_var[rows] * dt), drift=-variance / 2,
        )

    def covariance_per_second(self) -> np.ndarray:
        """(names, names) covariance of one second's log returns implied by the parameters."""
        factor_cov = self.factor_chol @ self.factor_chol.T
        return self.exposures @ factor_cov @ self.exposures.T + np.diag(self.idio_sd**2)


def log_returns(market: Market, rng: np.random.Generator, seconds: int) -> np.ndarray:
    """(seconds, names) one-second log returns drawn from the factor model."""
    factors = rng.standard_normal((seconds, market.factor_chol.shape[0])) @ market.factor_chol.T
    idio = rng.standard_normal((seconds, len(market.symbols))) * market.idio_sd
    return factors @ market.exposures.T + idio + market.drift


class PriceProcess:
    """The running process: `advance(seconds)` returns the prices at the end of each of the next
    `seconds` simulated seconds, as a (seconds, names) array, and keeps the last row as the state."""

    def __init__(self, market: Market, rng: np.random.Generator):
        self.market, self._rng = market, rng
        self.log_prices = np.log(market.reference_prices)

    def advance(self, seconds: int) -> np.ndarray:
        path = self.log_prices + np.cumsum(log_returns(self.market, self._rng, seconds), axis=0)
        self.log_prices = path[-1].copy()
        return np.exp(path)


def to_cents(prices: np.ndarray) -> np.ndarray:
    """Prices rounded to whole cents (int64), at least one cent."""
    return np.maximum(np.rint(prices * 100), MIN_PRICE * 100).astype(np.int64)
