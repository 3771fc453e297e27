"""Time `apply_batch` and the risk of the touched users on one 40k-trade micro-batch; prints medians.

    python -m streaming.bench_accounting [--trades 40000] [--users 20000] [--runs 7]

Scenarios: trades spread over many users (typical), and the same batch with one hot position taking
2,000 of the trades (the worst case for the wavefront loop, which runs once per trade of the busiest
position). The prior state holds 10 positions for every user.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from stockafolio.accounting import apply_batch
from stockafolio.reference.model import load_factor_model
from streaming.risk import mark_holdings, portfolio_totals


def main() -> None:
    args = _parser().parse_args()
    model = load_factor_model()
    rng = np.random.default_rng(1)
    trades = _trades(rng, model.symbols, args.trades, args.users)
    holdings, cash = _prior(rng, model.symbols, args.users)
    hot = trades.assign(user_id=np.where(np.arange(len(trades)) < 2_000, 1, trades["user_id"]),
                        symbol=np.where(np.arange(len(trades)) < 2_000, "AAPL", trades["symbol"]))
    prices = dict(zip(model.symbols, rng.uniform(5, 500, len(model.symbols)).round(2), strict=True))
    result = apply_batch(trades, holdings, cash)
    touched = holdings[holdings["user_id"].isin(result.cash["user_id"])]

    def risk() -> None:
        portfolio_totals(mark_holdings(touched, prices), result.cash)

    for name, run in (("accounting, spread", lambda: apply_batch(trades, holdings, cash)),
                      ("accounting, one hot position", lambda: apply_batch(hot, holdings, cash)),
                      (f"mark + risk of the {len(result.cash):,} touched users", risk)):
        print(f"{name}: median {_median(run, args.runs) * 1000:.0f} ms over {args.runs} runs "
              f"({args.trades:,} trades)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=40_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    return parser


def _trades(rng: np.random.Generator, symbols: tuple[str, ...], n: int, users: int) -> pd.DataFrame:
    return pd.DataFrame({
        "trade_id": np.arange(10**6, 10**6 + n), "user_id": rng.integers(1, users + 1, n),
        "symbol": rng.choice(symbols, n), "side": rng.choice(["buy", "sell"], n),
        "quantity": rng.integers(1, 200, n), "price": rng.uniform(5, 500, n).round(2),
        "event_time": pd.Timestamp(datetime(2026, 11, 20, 14, 30, tzinfo=UTC)),
    })


def _prior(rng: np.random.Generator, symbols: tuple[str, ...],
           users: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = users * 10
    holdings = pd.DataFrame({
        "user_id": np.repeat(np.arange(1, users + 1), 10), "symbol": rng.choice(symbols, n),
        "quantity": rng.integers(1, 500, n), "cost_basis_cents": rng.integers(10**4, 10**7, n),
        "realized_pnl_cents": 0, "last_trade_id": rng.integers(1, 10**6, n),
        "last_trade_time": pd.Timestamp(datetime(2026, 11, 19, tzinfo=UTC)),
    }).drop_duplicates(["user_id", "symbol"])
    cash = pd.DataFrame({"user_id": np.arange(1, users + 1), "cash_cents": 10**8, "cash_last_trade_id": 1})
    return holdings, cash


def _median(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    main()
