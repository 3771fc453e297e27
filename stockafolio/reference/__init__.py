"""The S&P 500 reference data Stockafolio ships: the universe of 503 members, a market + GICS sector
factor risk model calibrated on 2015-2020 prices, and index sector weights, with the risk math on it.

The tables in `data/` are derived by `python -m stockafolio.reference.derive`; `model` loads them.
"""

from stockafolio.reference.model import (
    FactorModel,
    PortfolioRisk,
    ReferenceDataError,
    SectorWeight,
    Security,
    covariance_matrix,
    load_factor_model,
    load_sector_weights,
    load_universe,
    portfolio_risk,
    positions_matrix,
    sector_weights,
)

__all__ = [
    "FactorModel",
    "PortfolioRisk",
    "ReferenceDataError",
    "SectorWeight",
    "Security",
    "covariance_matrix",
    "load_factor_model",
    "load_sector_weights",
    "load_universe",
    "portfolio_risk",
    "positions_matrix",
    "sector_weights",
]
