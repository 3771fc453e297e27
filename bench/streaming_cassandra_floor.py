"""Cassandra's floor for the streaming job: its CPU per trade when it absorbs exactly the reads and writes
the job sends, with nothing else running.

    bin/stockafolio run --no-pipeline        # the stack, without its own pipeline
    PYTHONPATH=. python bench/streaming_cassandra_floor.py [--users 10000000] [--batches 30]
        [--batch-trades 20000] [--cache-users 500000] [--out bench/results/streaming_cassandra_floor]

Each micro-batch is the job's own driver path, without Spark and Kafka: trades drawn like the
generator's (its Zipf-Mandelbrot activity over `--users`, `generator.users.Population`), the touched
users' prior rows from the job's state cache (`streaming.state_cache`, `--cache-users`) and, for the
others, `store.PriorReader` (IN reads of 100 users); the market views moved by the batch's new
trades (`streaming.market.MarketViews`, `--no-views` leaves them out); `state.build`;
`store.PortfolioWriter.group` and `.send` (whole users packed into UNLOGGED requests).
`--per-user-requests` sends one request per user instead (the job before the packing),
`--cache-users 0` reads every touched user (the job before the cache). Cassandra's CPU time (from
/proc, its process and threads) over the measured batches, divided by their trades, is the figure;
the client's own CPU is reported apart and excluded. The first `--warmup` batches are not measured.
A fresh keyspace, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from generator.users import Population  # noqa: E402
from stack import process  # noqa: E402
from stack.cli import LOCAL_REPLICATION  # noqa: E402
from stack.config import StackConfig  # noqa: E402
from stockafolio import cash, cql, migrations  # noqa: E402
from stockafolio.reference import load_factor_model  # noqa: E402
from stockafolio.settings import Endpoints  # noqa: E402
from streaming import market, state, store  # noqa: E402
from streaming.job import EQUITY_DDL, TRADES_DDL, _columns  # noqa: E402
from streaming.state_cache import StateCache  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def trades_of(rng: np.random.Generator, population: Population, symbols: list[str], n: int,
              first_id: int, first_offset: int) -> pd.DataFrame:
    users = population.sample(rng, n) + 1
    return pd.DataFrame({
        "trade_id": np.arange(first_id, first_id + n, dtype=np.int64), "user_id": users.astype(np.int64),
        "symbol": np.asarray(symbols, dtype=object)[rng.integers(0, len(symbols), n)],
        "side": np.where(rng.random(n) < 0.6, "buy", "sell"), "quantity": rng.integers(1, 200, n),
        "price": rng.integers(500, 50_000, n) / 100.0,
        "event_time": pd.Timestamp(datetime.now(UTC)).tz_localize(None),
        "partition": (users % 6).astype(np.int32), "offset": np.arange(first_offset, first_offset + n)})


class PerUserWriter(store.PortfolioWriter):
    """The job before the packing: one UNLOGGED request per user."""

    def send(self, users) -> int:
        requests = 0
        window: list = []
        for rows in users:
            requests += self._send_chunks(rows, window)
        store.wait(window)
        return requests


def main() -> None:
    args = _parser().parse_args()
    config = StackConfig.from_env()
    endpoints = Endpoints.load(config.var)
    pid = process.running_pid(config.run_dir, "cassandra")
    if pid is None:
        raise SystemExit("Cassandra is not running: start the stack with bin/stockafolio run --no-pipeline")
    ks = f"bench_floor_{os.getpid()}"
    cluster, session = cql.connect(endpoints.cassandra, timeout_s=60)
    migrations.apply(session, ks, migrations.load(REPO / "cassandra" / "migrations"), LOCAL_REPLICATION)
    model = load_factor_model()
    spec = store.WriteSpec(ks, endpoints.cassandra, tuple(state.HOLDING_OUT), tuple(state.TOTALS_OUT),
                           tuple(_columns(TRADES_DDL)), tuple(_columns(EQUITY_DDL)))
    writer = (PerUserWriter if args.per_user_requests else store.PortfolioWriter)(session, spec)
    reader, cache = store.PriorReader(session, ks), StateCache(args.cache_users)
    views = None if args.no_views else market.MarketViews(session, ks)
    rng = np.random.default_rng(11)
    population = Population.create(args.users, np.random.default_rng(1))
    opening = lambda users: cash.opening_cash_cents(users, seed=1)  # noqa: E731
    symbols, prices = list(model.symbols), {s: 100.0 for s in model.symbols}
    measured = {"trades": 0, "users": 0, "reads": 0, "requests": 0, "cassandra_s": 0.0, "client_s": 0.0,
                "wall_s": 0.0}
    try:
        for batch_id in range(args.warmup + args.batches):
            first = batch_id * args.batch_trades
            trades = trades_of(rng, population, symbols, args.batch_trades, 10**12 + first, first)
            began, c0, p0 = time.perf_counter(), cpu_seconds(pid), time.process_time()
            users = sorted(int(u) for u in trades["user_id"].unique())
            cached, missing = cache.split(users)
            read = reader.read_rows(missing) if missing else []
            prior = state.Prior.from_rows(store.prior_frame(cached + read))
            kept, _refused = state.split_by_order(trades, prior)
            if views:
                views.apply(kept.loc[kept["new"]], market.previous_minutes(prior.holdings),
                            f"bench:{batch_id}")
            rows = state.build(kept, prior, prices, batch_id, datetime.now(UTC), opening,
                               state.last_read(trades))
            grouped = writer.group(rows.changed, rows.totals, rows.trades, rows.equity)
            requests = writer.send(grouped)
            cache.remember(rows.portfolio)
            if batch_id >= args.warmup:
                measured["trades"] += len(trades)
                measured["users"] += len(users)
                measured["reads"] += len(missing)
                measured["requests"] += requests
                measured["cassandra_s"] += cpu_seconds(pid) - c0
                measured["client_s"] += time.process_time() - p0
                measured["wall_s"] += time.perf_counter() - began
            print(f"batch {batch_id}: {len(trades):,} trades, {len(users):,} users, {len(missing):,} read, "
                  f"{requests:,} requests, Cassandra {cpu_seconds(pid) - c0:.2f} CPU-s", flush=True)
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {ks}")
        cluster.shutdown()
    _report(args, measured)


def _report(args: argparse.Namespace, m: dict) -> None:
    per_trade = m["cassandra_s"] / m["trades"] * 1e6
    line = (f"| {args.label} | {args.users:,} | {args.batch_trades:,} | {args.cache_users:,} | "
            f"{'per user' if args.per_user_requests else 'packed'} | {m['users'] / m['trades']:.3f} | "
            f"{m['reads'] / m['trades']:.3f} | {m['requests'] / m['trades']:.3f} | **{per_trade:.0f}** | "
            f"{m['client_s'] / m['trades'] * 1e6:.0f} | {m['trades'] / m['wall_s']:,.0f} | "
            f"{os.getloadavg()[0]:.1f} |")
    print(line)
    if args.out:
        with open(f"{args.out}.rows", "a") as out:
            out.write(f"{datetime.now(UTC):%Y-%m-%d %H:%M} {line}\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=10_000_000, help="simulated users (%(default)s)")
    p.add_argument("--batch-trades", type=int, default=20_000, help="trades per micro-batch (%(default)s)")
    p.add_argument("--batches", type=int, default=30, help="measured micro-batches (%(default)s)")
    p.add_argument("--warmup", type=int, default=5, help="batches before measuring (%(default)s)")
    p.add_argument("--cache-users", type=int, default=500_000, help="state cache size (%(default)s)")
    p.add_argument("--per-user-requests", action="store_true", help="one request per user (the old writes)")
    p.add_argument("--no-views", action="store_true", help="leave the market views out")
    p.add_argument("--label", default="run", help="row label in the report")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "streaming_cassandra_floor"),
                   help="appends a Markdown row to OUT.rows (empty: print only)")
    return p


if __name__ == "__main__":
    main()
