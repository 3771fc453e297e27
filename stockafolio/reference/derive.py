"""Derive the committed reference tables from the raw S&P 500 data (never copied into the repo).

    python -m stockafolio.reference.derive [--data DIR] [--out DIR]

Reads `constituents.csv`, `adj_close_daily.csv.gz` and `volume_daily.csv.gz` and writes
`universe.csv`, `factors.csv`, `sector_weights.csv` and `scenarios.npz` (the daily log returns of
every member, gaps filled from the factor model: the nightly's historical scenarios; see
`data/README.md` for their contents and the method). The output is a pure function of the input:
two runs give byte-identical tables and the same scenario arrays (the npz's zip entries carry the
time they were written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from stockafolio.errors import ConfigError, StockafolioError
from stockafolio.reference.model import MARKET, TRADING_DAYS, exposure_matrix, total_variance

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_DATA = PACKAGE_DIR.parents[1].parent / "shared" / "data" / "sp500"
DEFAULT_OUT = PACKAGE_DIR / "data"
INPUTS = ("constituents.csv", "adj_close_daily.csv.gz", "volume_daily.csv.gz")
SCENARIOS = "scenarios.npz"
SCENARIO_SCALE = 10_000  # log returns kept as int16 in units of 1e-4 (0.8 MB compressed, not 2.1 as float32)

MIN_RETURNS = 250  # fewer daily returns than this: the name gets its sector's median risk parameters
LIQUIDITY_DAYS = 252  # volumes are averaged over the last year of the file (2019-01..2020-01)
COV_DECIMALS = 12  # factor covariances are ~1e-5 per day: 12 decimals keep 6-8 significant digits
# Source errors removed by hand: jumps in an *adjusted* series that no market move explains.
BAD_RETURNS = {
    ("DHR", "2016-07-05"): "Fortive spin-off mis-adjusted at source: adjusted close 51.92 -> 78.75",
}

Say = Callable[[str], None]


@dataclass(frozen=True)
class RawData:
    """The input files: members (index symbol; name, sector), prices and volumes (dates x tickers)."""

    members: pd.DataFrame
    prices: pd.DataFrame
    volumes: pd.DataFrame


@dataclass(frozen=True)
class Tables:
    """The derived tables, ready to write."""

    NAMES: ClassVar[tuple[str, ...]] = ("universe.csv", "factors.csv", "sector_weights.csv")
    universe: pd.DataFrame
    factors: pd.DataFrame
    sector_weights: pd.DataFrame

    def files(self) -> dict[str, pd.DataFrame]:
        return {"universe.csv": self.universe, "factors.csv": self.factors,
                "sector_weights.csv": self.sector_weights}


@dataclass(frozen=True)
class Derived:
    """Everything `derive` computes: the tables and the filled log returns (days x members)."""

    tables: Tables
    scenarios: pd.DataFrame


# ---------------------------------------------------------------- input


def read_raw(data_dir: Path) -> RawData:
    """Read the three input files; raises `ConfigError` naming any that is missing."""
    missing = [name for name in INPUTS if not (data_dir / name).is_file()]
    if missing:
        raise ConfigError(f"{data_dir} lacks {', '.join(missing)}; pass the S&P 500 data folder with --data")
    return RawData(_read_members(data_dir / INPUTS[0]), _read_panel(data_dir / INPUTS[1]),
                   _read_panel(data_dir / INPUTS[2]))


def _read_members(path: Path) -> pd.DataFrame:
    members = pd.read_csv(path, usecols=["Symbol", "Security", "GICS Sector"])
    members.columns = ["symbol", "name", "sector"]
    return members.set_index("symbol").sort_index()


def _read_panel(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col="Date", parse_dates=True).astype(float).sort_index()


# ---------------------------------------------------------------- returns and factors


def sector_id(sector: str) -> str:
    """Factor name of a GICS sector: 'Information Technology' -> 'information_technology'."""
    return sector.lower().replace(" ", "_")


def log_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Daily log returns. A return is NaN, never a multi-day return, when either day's price is
    missing or non-positive, and for the known source errors in `BAD_RETURNS`."""
    returns = np.log(prices.where(prices > 0)).diff().iloc[1:]
    for symbol, day in BAD_RETURNS:
        if symbol in returns.columns:
            returns.loc[pd.Timestamp(day), symbol] = np.nan
    return returns


def member_returns(raw: RawData) -> pd.DataFrame:
    """Returns of the current members that have any, columns sorted by symbol."""
    returns = log_returns(raw.prices)
    symbols = [s for s in raw.members.index if s in returns.columns]
    return returns[symbols].dropna(axis="columns", how="all")


def factor_returns(returns: pd.DataFrame, sectors: pd.Series) -> pd.DataFrame:
    """Daily factor returns: `market` = equal-weighted mean log return of all names with a return
    that day; one column per sector = the sector's mean minus its OLS projection on the market, so
    each sector factor has zero sample covariance with the market."""
    market = returns.mean(axis="columns").rename(MARKET)
    raw = returns.T.groupby(sectors.reindex(returns.columns)).mean().T
    gamma = raw.apply(lambda column: column.cov(market)) / market.var()
    residual = raw - np.outer(market.to_numpy(), gamma.to_numpy())
    factors = pd.concat([market, residual.rename(columns=sector_id)], axis="columns")
    if factors.isna().to_numpy().any():
        raise ConfigError("some date has no return at all for a sector; the price file looks truncated")
    return factors


# ---------------------------------------------------------------- per-name regressions


def fit_name(y: pd.Series, market: pd.Series, sector: pd.Series) -> dict[str, float]:
    """OLS of the name's return on [1, market, its sector factor] over the days it has a return;
    the idiosyncratic variance is the residual variance (ddof=1, as the factor covariance)."""
    seen = y.notna().to_numpy()
    x = np.column_stack([np.ones(seen.sum()), market.to_numpy()[seen], sector.to_numpy()[seen]])
    coef, *_ = np.linalg.lstsq(x, y.to_numpy()[seen], rcond=None)
    residual = y.to_numpy()[seen] - x @ coef
    return {"beta": coef[1], "sector_loading": coef[2], "idio_var": residual.var(ddof=1)}


def fit_names(returns: pd.DataFrame, factors: pd.DataFrame, sectors: pd.Series) -> pd.DataFrame:
    """Risk parameters of every name with at least `MIN_RETURNS` returns (index symbol)."""
    counts = returns.notna().sum()
    fitted = {s: fit_name(returns[s], factors[MARKET], factors[sector_id(sectors[s])])
              for s in counts.index[counts >= MIN_RETURNS]}
    return pd.DataFrame.from_dict(fitted, orient="index")


def fill_by_sector(frame: pd.DataFrame, sectors: pd.Series) -> pd.DataFrame:
    """Missing values replaced by the median of the same column over the name's sector."""
    medians = frame.groupby(sectors.reindex(frame.index)).transform("median")
    return frame.fillna(medians)


# ---------------------------------------------------------------- the tables


def risk_parameters(raw: RawData, returns: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """beta, sector_loading, idio_var, returns (count) and estimated for every member."""
    sectors = raw.members["sector"]
    fitted = fit_names(returns, factors, sectors).reindex(raw.members.index)
    params = fill_by_sector(fitted, sectors)
    params["returns"] = returns.notna().sum().reindex(raw.members.index, fill_value=0).astype(int)
    params["estimated"] = fitted["beta"].isna()
    return params


def model_ann_vol(params: pd.DataFrame, sectors: pd.Series, factor_cov: pd.DataFrame) -> np.ndarray:
    """Annualised volatility implied by the model (equals the sample one for a full-history name)."""
    names = [sector_id(s) for s in sectors]
    index = np.array([list(factor_cov.columns).index(n) - 1 for n in names])
    exposures = exposure_matrix(params["beta"].to_numpy(), params["sector_loading"].to_numpy(), index,
                                len(factor_cov) - 1)
    daily = total_variance(exposures, factor_cov.to_numpy(), params["idio_var"].to_numpy())
    return np.sqrt(daily * TRADING_DAYS)


def liquidity(raw: RawData) -> pd.DataFrame:
    """reference_price (last close), avg_daily_volume (shares) and dollar_volume (USD per day) over
    the last `LIQUIDITY_DAYS` dates; names without any are filled with their sector's median."""
    prices = raw.prices.where(raw.prices > 0).reindex(columns=raw.members.index)
    volumes = raw.volumes.reindex(columns=raw.members.index)
    recent = slice(-LIQUIDITY_DAYS, None)
    frame = pd.DataFrame({
        "reference_price": prices.ffill().iloc[-1],
        "avg_daily_volume": volumes.iloc[recent].mean(),
        "dollar_volume": (prices * volumes).iloc[recent].mean(),
    })
    return fill_by_sector(frame, raw.members["sector"])


def universe_table(raw: RawData, params: pd.DataFrame, liquid: pd.DataFrame,
                   factor_cov: pd.DataFrame) -> pd.DataFrame:
    """One row per member, sorted by symbol, rounded for a small committed file."""
    members = raw.members
    return pd.DataFrame({
        "symbol": members.index, "name": members["name"], "sector": members["sector"],
        "reference_price": _round(liquid["reference_price"], 2),
        "ann_vol": _round(model_ann_vol(params, members["sector"], factor_cov), 4),
        "beta": _round(params["beta"], 4), "sector_loading": _round(params["sector_loading"], 4),
        "idio_vol": _round(np.sqrt(params["idio_var"] * TRADING_DAYS), 4),
        "avg_daily_volume": liquid["avg_daily_volume"].round().astype(np.int64),
        "popularity": _round(liquid["dollar_volume"] / liquid["dollar_volume"].sum(), 9),
        "returns": params["returns"], "estimated": params["estimated"].map({True: "true", False: "false"}),
    })


def factor_table(factors: pd.DataFrame, returns: pd.DataFrame, sectors: pd.Series) -> pd.DataFrame:
    """One row per factor: id, GICS sector ('' for the market), names with history, annualised vol,
    then its row of the daily covariance matrix."""
    cov = _factor_cov(factors)
    gics = sorted(sectors.reindex(returns.columns).unique())
    counts = sectors.reindex(returns.columns).value_counts()
    head = pd.DataFrame({
        "factor": cov.columns, "sector": ["", *gics], "names": [returns.shape[1], *counts[gics]],
        "ann_vol": _round(pd.Series(np.sqrt(np.diag(cov) * TRADING_DAYS)), 4),
    })
    return pd.concat([head, cov.reset_index(drop=True)], axis="columns")


def _factor_cov(factors: pd.DataFrame) -> pd.DataFrame:
    return factors.cov().round(COV_DECIMALS) + 0.0


def sector_weight_table(universe: pd.DataFrame, liquid: pd.DataFrame) -> pd.DataFrame:
    """Per GICS sector: members, estimated members, summed average dollar volume (USD millions per
    day) and its share of the total: the market-value proxy the web app compares allocations with."""
    frame = universe[["sector", "estimated"]].assign(
        estimated=universe["estimated"] == "true", dollar_volume=liquid["dollar_volume"])
    grouped = frame.groupby("sector")
    dollar = grouped["dollar_volume"].sum()
    return pd.DataFrame({
        "sector": dollar.index, "names": grouped.size().to_numpy(),
        "estimated": grouped["estimated"].sum().astype(int).to_numpy(),
        "dollar_volume_musd": _round(dollar / 1e6, 1).to_numpy(),
        "weight": _round(dollar / dollar.sum(), 6).to_numpy(),
    })


def _round(values: pd.Series | np.ndarray, decimals: int) -> pd.Series | np.ndarray:
    return np.round(values, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


# ---------------------------------------------------------------- orchestration


def derive(data_dir: Path, say: Say) -> Derived:
    """The tables and the scenarios from the raw data in `data_dir`, reporting progress through
    `say`."""
    raw = read_raw(data_dir)
    say(f"read {len(raw.members)} members, prices for {raw.prices.shape[1]} tickers "
        f"x {raw.prices.shape[0]} dates ({raw.prices.index[0]:%Y-%m-%d}..{raw.prices.index[-1]:%Y-%m-%d})")
    returns = member_returns(raw)
    factors = factor_returns(returns, raw.members["sector"])
    say(f"{returns.shape[1]} members have returns; built {factors.shape[1]} factors "
        f"over {len(factors)} days")
    params = risk_parameters(raw, returns, factors)
    say(f"fitted {int((~params['estimated']).sum())} names; {int(params['estimated'].sum())} "
        f"get sector medians (fewer than {MIN_RETURNS} returns)")
    members = returns.reindex(columns=raw.members.index)
    return Derived(_tables(raw, returns, factors, params),
                   fill_with_model(members, factors, params, raw.members["sector"]))


def fill_with_model(returns: pd.DataFrame, factors: pd.DataFrame, params: pd.DataFrame,
                    sectors: pd.Series) -> pd.DataFrame:
    """Missing log returns replaced by beta x market + sector_loading x the name's sector factor."""
    implied = pd.DataFrame({
        s: params.at[s, "beta"] * factors[MARKET] + params.at[s, "sector_loading"]
        * factors[sector_id(sectors[s])] for s in returns.columns}, index=returns.index)
    return returns.fillna(implied)


def write_scenarios(scenarios: pd.DataFrame, out_dir: Path, say: Say) -> None:
    """`scenarios.npz`: symbols, days (ISO dates) and the log returns (members x days) as int16 in
    units of 1/SCENARIO_SCALE."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scaled = np.round(scenarios.to_numpy().T * SCENARIO_SCALE)
    if np.abs(scaled).max() > np.iinfo(np.int16).max:
        raise StockafolioError("a daily log return beyond +-3.27 does not fit the scenarios' int16")
    np.savez_compressed(out_dir / SCENARIOS, symbols=np.asarray(scenarios.columns, dtype=str),
                        days=np.asarray(scenarios.index.strftime("%Y-%m-%d"), dtype=str),
                        log_returns=scaled.astype(np.int16))
    say(f"wrote {out_dir / SCENARIOS} ({scenarios.shape[1]} members x {scenarios.shape[0]} days, "
        f"{(out_dir / SCENARIOS).stat().st_size:,} bytes)")


def read_scenarios(data_dir: Path | None = None) -> pd.DataFrame:
    """The shipped scenarios (days x members, log returns), as `write_scenarios` wrote them."""
    path = (data_dir or DEFAULT_OUT) / SCENARIOS
    try:
        with np.load(path) as data:
            return pd.DataFrame(data["log_returns"].T.astype(np.float64) / SCENARIO_SCALE,
                                index=pd.to_datetime(data["days"]), columns=list(data["symbols"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"cannot read the scenarios {path}: {exc}") from None


def _tables(raw: RawData, returns: pd.DataFrame, factors: pd.DataFrame, params: pd.DataFrame) -> Tables:
    liquid = liquidity(raw)
    universe = universe_table(raw, params, liquid, _factor_cov(factors))
    return Tables(universe.reset_index(drop=True), factor_table(factors, returns, raw.members["sector"]),
                  sector_weight_table(universe, liquid))


def write_tables(tables: Tables, out_dir: Path, say: Say) -> None:
    """Write each table as CSV with '\\n' line ends (byte-stable across platforms)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.files().items():
        frame.to_csv(out_dir / name, index=False, lineterminator="\n")
        say(f"wrote {out_dir / name} ({len(frame)} rows, {(out_dir / name).stat().st_size:,} bytes)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stockafolio.reference.derive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"folder with {', '.join(INPUTS)} (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder the tables are written to (default: %(default)s)")
    return parser.parse_args(argv)


def _say(message: str) -> None:
    print(f"derive: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: derive and write the tables; 0 on success, 2 with a one-line reason otherwise."""
    args = parse_args(argv)
    try:
        derived = derive(args.data, _say)
        write_tables(derived.tables, args.out, _say)
        write_scenarios(derived.scenarios, args.out, _say)
    except StockafolioError as exc:
        _say(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
