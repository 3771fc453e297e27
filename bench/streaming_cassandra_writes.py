"""What one Cassandra node sustains for the streaming job's `portfolio_by_user` write pattern.

    python bench/streaming_cassandra_writes.py [--users 17000] [--rows 38000] [--reps 3]

Side by side, medians of `--reps`, in a throwaway keyspace made from the real migrations (dropped at
the end): (a) the Spark connector writing every row of the touched users (what the job did), (b) the
driver writing the same rows (prepared statement, `execute_concurrent`), (c) the driver writing only
the changed rows (~1.2 changed holdings per user + one static-columns row per user), (d) one UNLOGGED
batch per user (one partition mutation per user) with the same changed rows, and the whole write of a
micro-batch, the other two per-user tables included: (e) (d) plus the connector writing
`trades_by_user_day` (one row per trade) and `equity_by_user_day` (one row per user), (f) one UNLOGGED
batch per user holding its `portfolio_by_user` rows, its trades and its equity row (three partitions
of the same user, one request). Trades/s assume the rows are those of one 40,000-trade micro-batch.
Writes `bench/results/streaming_cassandra_writes.md`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType
from stack.cli import LOCAL_REPLICATION
from stack.config import StackConfig
from stockafolio import cql, migrations
from stockafolio.settings import Endpoints

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "streaming_cassandra_writes.md"
TRADES_PER_BATCH = 40_000
HOLDING = ["quantity", "cost_basis_cents", "avg_cost", "realized_pnl_cents", "last_price",
           "market_value_cents", "unrealized_pnl_cents", "last_trade_id", "last_trade_time"]
STATIC = ["cash_cents", "cash_last_trade_id", "market_value_total_cents", "unrealized_pnl_total_cents",
          "realized_pnl_total_cents", "equity_cents", "day", "day_open_equity_cents", "day_pnl_cents",
          "daily_vol", "beta", "var_95", "var_99", "es_95", "es_99", "sector_weights",
          "largest_position_weight", "last_batch_id", "updated_at"]
CONCURRENCY = 64


def holdings(users: np.ndarray, rows: int, rng: np.random.Generator, rep: int) -> pd.DataFrame:
    """`rows` holding rows spread over `users` (every user at least one), distinct symbols per user."""
    owner = np.concatenate([users, rng.choice(users, rows - len(users))])
    frame = pd.DataFrame({"user_id": owner})
    frame["symbol"] = "S" + frame.groupby("user_id").cumcount().astype(str)
    n = len(frame)
    frame["quantity"] = rng.integers(1, 500, n)
    frame["cost_basis_cents"] = frame["quantity"] * rng.integers(1_000, 50_000, n)
    frame["avg_cost"] = frame["cost_basis_cents"] / frame["quantity"] / 100
    frame["realized_pnl_cents"] = rng.integers(-10_000, 10_000, n)
    frame["last_price"] = rng.uniform(10, 500, n).round(2)
    frame["market_value_cents"] = (frame["quantity"] * frame["last_price"] * 100).round().astype("int64")
    frame["unrealized_pnl_cents"] = frame["market_value_cents"] - frame["cost_basis_cents"]
    frame["last_trade_id"] = rng.integers(1, 2**40, n) + rep
    frame["last_trade_time"] = datetime.now(UTC)
    return frame


def statics(users: np.ndarray, rng: np.random.Generator, rep: int) -> pd.DataFrame:
    n = len(users)
    frame = pd.DataFrame({"user_id": users})
    for name in STATIC:
        frame[name] = rng.integers(0, 10**9, n)
    for name in ("daily_vol", "beta", "var_95", "var_99", "es_95", "es_99", "largest_position_weight"):
        frame[name] = rng.random(n)
    frame["day"] = datetime.now(UTC).date()
    frame["updated_at"] = datetime.now(UTC)
    frame["last_batch_id"] = rep
    frame["sector_weights"] = [{"Information Technology": 0.6, "Financials": 0.4}] * n
    return frame


def trades(users: np.ndarray, n: int, rng: np.random.Generator, rep: int) -> pd.DataFrame:
    """`n` trades of `users` (every user at least one), as the job writes them to `trades_by_user_day`."""
    owner = np.concatenate([users, rng.choice(users, n - len(users))])
    now = datetime.now(UTC)
    return pd.DataFrame({"user_id": owner, "day": now.date(),
                         "trade_id": np.arange(n, dtype="int64") + rep * n + 2**40,
                         "symbol": rng.choice(["AAPL", "MSFT", "NVDA", "AMZN"], n),
                         "side": rng.choice(["buy", "sell"], n), "quantity": rng.integers(1, 500, n),
                         "price": rng.uniform(10, 500, n).round(2), "event_time": now})


def equity(users: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    now = datetime.now(UTC)
    n = len(users)
    money = {name: rng.integers(0, 10**9, n) for name in ("equity_cents", "market_value_cents", "cash_cents")}
    return pd.DataFrame({"user_id": users, "day": now.date(), "minute": now.replace(second=0, microsecond=0),
                         **money, "day_pnl_cents": rng.integers(-10**6, 10**6, n)})


def timed(fn: Callable[[], None]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=17_000)
    parser.add_argument("--rows", type=int, default=38_000, help="all rows of the touched users, (a) and (b)")
    parser.add_argument("--changed-per-user", type=float, default=1.2)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    config = StackConfig.from_env()
    endpoints = Endpoints.load(config.var)
    ks = f"bench_writes_{os.getpid()}"
    cluster, session = cql.connect(endpoints.cassandra, timeout_s=60)
    migrations.apply(session, ks, migrations.load(REPO / "cassandra" / "migrations"), LOCAL_REPLICATION)
    os.environ["SPARK_CONF_DIR"] = endpoints.spark.conf_dir
    from pyspark.sql import SparkSession

    from streaming.job import EQUITY_DDL, PORTFOLIO_DDL, TRADES_DDL
    spark = SparkSession.builder.master(endpoints.spark.master).appName("bench-writes").getOrCreate()
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    rng = np.random.default_rng(7)
    users = np.arange(1, args.users + 1, dtype="int64") + 10**6
    changed_rows = round(args.users * args.changed_per_user)
    all_cols = ["user_id", "symbol", *HOLDING, *STATIC]
    holding_cols = ["user_id", "symbol", *HOLDING]
    static_cols = ["user_id", *STATIC]
    insert_all = session.prepare(f"INSERT INTO {ks}.portfolio_by_user ({', '.join(all_cols)}) "  # noqa: S608
                                 f"VALUES ({', '.join('?' * len(all_cols))})")
    insert_holding = session.prepare(f"INSERT INTO {ks}.portfolio_by_user ({', '.join(holding_cols)}) "  # noqa: S608
                                     f"VALUES ({', '.join('?' * len(holding_cols))})")
    insert_static = session.prepare(f"INSERT INTO {ks}.portfolio_by_user ({', '.join(static_cols)}) "  # noqa: S608
                                    f"VALUES ({', '.join('?' * len(static_cols))})")

    trade_cols = [c.split()[0] for c in TRADES_DDL.split(", ")]
    equity_cols = [c.split()[0] for c in EQUITY_DDL.split(", ")]
    insert_trade = session.prepare(f"INSERT INTO {ks}.trades_by_user_day ({', '.join(trade_cols)}) "  # noqa: S608
                                   f"VALUES ({', '.join('?' * len(trade_cols))})")
    insert_equity = session.prepare(f"INSERT INTO {ks}.equity_by_user_day ({', '.join(equity_cols)}) "  # noqa: S608
                                    f"VALUES ({', '.join('?' * len(equity_cols))})")

    def connector(frame: pd.DataFrame, ddl: str, table: str) -> None:
        (spark.createDataFrame(frame, ddl).write.format("org.apache.spark.sql.cassandra").mode("append")
         .options(keyspace=ks, table=table).save())

    def tuples(frame: pd.DataFrame, cols: list[str]) -> list[tuple]:
        out = frame[cols].astype(object).where(frame[cols].notna(), None)
        return [tuple(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in row)
                for row in out.itertuples(index=False, name=None)]

    def concurrent(stmt, params: list[tuple]) -> None:
        for ok, result in execute_concurrent_with_args(session, stmt, params, concurrency=CONCURRENCY,
                                                       raise_on_first_error=True):
            assert ok, result

    results: dict[str, list[float]] = {k: [] for k in LABELS}
    counts: dict[str, int] = {}
    for rep in range(args.reps):
        full = holdings(users, args.rows, rng, rep).merge(statics(users, rng, rep), on="user_id")
        full_tuples = tuples(full, all_cols)
        changed = holdings(users, changed_rows, rng, rep)
        stat = statics(users, rng, rep)
        changed_tuples, static_tuples = tuples(changed, holding_cols), tuples(stat, static_cols)
        day_trades, day_equity = trades(users, TRADES_PER_BATCH, rng, rep), equity(users, rng)
        counts |= {"a": len(full), "b": len(full), "c": len(changed) + len(stat),
                   "d": len(changed) + len(stat),
                   "e": len(changed) + len(stat) + len(day_trades) + len(day_equity),
                   "f": len(changed) + len(stat) + len(day_trades) + len(day_equity)}

        spark_frame = spark.createDataFrame(full[all_cols], PORTFOLIO_DDL).cache()
        spark_frame.count()
        results["a"].append(timed(lambda f=spark_frame: f.write.format("org.apache.spark.sql.cassandra")
                                  .mode("append").options(keyspace=ks, table="portfolio_by_user").save()))
        spark_frame.unpersist()
        results["b"].append(timed(lambda p=full_tuples: concurrent(insert_all, p)))
        results["c"].append(timed(lambda c=changed_tuples, s=static_tuples: (concurrent(insert_holding, c),
                                                                             concurrent(insert_static, s))))

        by_user: dict[int, list[tuple]] = {}
        for row in changed_tuples:
            by_user.setdefault(row[0], []).append(row)

        def batches(by_user: dict[int, list[tuple]] = by_user,
                    static_tuples: list[tuple] = static_tuples, also: dict[int, list] | None = None) -> None:
            window = []
            for row in static_tuples:
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                batch.add(insert_static, row)
                for held in by_user.get(row[0], []):
                    batch.add(insert_holding, held)
                for statement, params in (also or {}).get(row[0], ()):
                    batch.add(statement, params)
                window.append(session.execute_async(batch))
                if len(window) >= CONCURRENCY:
                    for future in window:
                        future.result()
                    window = []
            for future in window:
                future.result()
        results["d"].append(timed(batches))

        def whole_by_connector(t: pd.DataFrame = day_trades, e: pd.DataFrame = day_equity) -> None:
            batches()
            connector(t[trade_cols], TRADES_DDL, "trades_by_user_day")
            connector(e[equity_cols], EQUITY_DDL, "equity_by_user_day")
        results["e"].append(timed(whole_by_connector))

        def whole_per_user(t: pd.DataFrame = day_trades, e: pd.DataFrame = day_equity) -> None:
            also: dict[int, list] = {}
            for row in tuples(t, trade_cols):
                also.setdefault(row[0], []).append((insert_trade, row))
            for row in tuples(e, equity_cols):
                also.setdefault(row[0], []).append((insert_equity, row))
            batches(also=also)
        results["f"].append(timed(whole_per_user))
        print(f"rep {rep}: " + ", ".join(f"{k} {results[k][-1]:.2f} s" for k in LABELS), flush=True)

    spark.stop()
    session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)
    cluster.shutdown()
    report(args, results, counts)


LABELS = {
    "a": "Spark connector, every row of the touched users (the job before)",
    "b": "driver, prepared + execute_concurrent, the same rows",
    "c": "driver, changed holdings + one statics row per user",
    "d": "driver, one UNLOGGED batch per user (changed holdings + statics)",
    "e": "the whole micro-batch: (d), then the connector for trades (1 row/trade) and equity (1 row/user)",
    "f": "the whole micro-batch: one UNLOGGED batch per user of (d)'s rows + its trades + its equity row",
}


def report(args: argparse.Namespace, results: dict[str, list[float]], counts: dict[str, int]) -> None:
    lines = [
        "# Cassandra write pattern of the streaming job (`portfolio_by_user`)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `python bench/streaming_cassandra_writes.py`; "
        f"{platform.node()}, {os.cpu_count()} cores, {platform.machine()}, one local Cassandra node shared "
        "with the rest of the stack, Spark local[2], driver concurrency "
        f"{CONCURRENCY}. Median of {args.reps}. {args.users:,} touched users; a micro-batch = "
        f"{TRADES_PER_BATCH:,} trades.",
        "",
        "| variant | statements / rows | median s | rows/s | trades/s (40k-trade batch) |",
        "|---|---|---|---|---|",
    ]
    for key, label in LABELS.items():
        median = statistics.median(results[key])
        lines.append(f"| ({key}) {label} | {counts[key]:,} | {median:.2f} | {counts[key] / median:,.0f} | "
                     f"{TRADES_PER_BATCH / median:,.0f} |")
    lines += ["", "Per rep (s): " + "; ".join(f"({k}) " + ", ".join(f"{v:.2f}" for v in results[k])
                                             for k in LABELS), ""]
    RESULT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
