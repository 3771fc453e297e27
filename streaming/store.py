"""Cassandra: the touched users' partitions read through the Spark connector (a direct join); a
micro-batch's per-user rows (`portfolio_by_user` statics and changed holdings, `trades_by_user_day`,
`equity_by_user_day`) written through the Python driver, one UNLOGGED batch per touched user
(`bench/streaming_cassandra_writes.py` measured this faster than a request per row or the connector);
small tables (batch health) through the driver too."""

from __future__ import annotations

import atexit
import functools
from collections.abc import Iterable

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from cassandra.cluster import ResponseFuture, Session
from cassandra.query import BatchStatement, BatchType, PreparedStatement
from stockafolio import cql
from stockafolio.settings import CassandraEndpoint

CASSANDRA = "org.apache.spark.sql.cassandra"
MARKET = "us"
IN_FLIGHT = 64  # batches awaiting an answer at once
STATEMENTS_PER_REQUEST = 30  # rows per UNLOGGED batch: ~3-4 KiB, under Cassandra's 5 KiB warning


def table(spark: SparkSession, keyspace: str, name: str) -> DataFrame:
    return spark.read.format(CASSANDRA).options(keyspace=keyspace, table=name).load()


def portfolios_of(spark: SparkSession, keyspace: str, users: list[int]) -> pd.DataFrame:
    """Every `portfolio_by_user` row of `users`, by a direct join on the partition key (one read per
    user, never a table scan)."""
    keys = spark.createDataFrame(pd.DataFrame({"user_id": users}, dtype="int64"))
    stored = (spark.read.format(CASSANDRA).options(keyspace=keyspace, table="portfolio_by_user")
              .option("directJoinSetting", "on").load())
    return keys.join(stored, "user_id").toPandas()


def latest_prices(session: Session, keyspace: str) -> dict[str, float]:
    """Q4, one partition: symbol -> latest price (empty before the first tick; holdings of a symbol
    without a price are marked at cost)."""
    rows = session.execute(f"SELECT symbol, price FROM {keyspace}.latest_price_by_market "  # noqa: S608
                           "WHERE market = %s", (MARKET,))
    return {r.symbol: r.price for r in rows}


@functools.cache
def session_for(endpoint: CassandraEndpoint) -> Session:
    """One driver session per process (the job's driver process, after Spark started), kept open and
    closed at exit (before the interpreter stops the driver's scheduler thread)."""
    cluster, session = cql.connect(endpoint, timeout_s=30)
    atexit.register(cluster.shutdown)
    return session


class PortfolioWriter:
    """Absolute upserts of a micro-batch's per-user rows through the driver: per touched user one
    UNLOGGED batch holding its `portfolio_by_user` statics row and changed holding rows (one partition),
    its trades of the batch (`trades_by_user_day`) and its equity point (`equity_by_user_day`): three
    partitions of the same user in one request, where a request per row or a Spark job per table cost
    more (`bench/results/streaming_cassandra_writes.md`, (e) vs (f)). A user with many trades in one
    micro-batch gets several requests of at most STATEMENTS_PER_REQUEST statements (Cassandra warns
    above 5 KiB per batch and refuses above 50 KiB). Prepared statements only; at most IN_FLIGHT
    requests outstanding."""

    def __init__(self, session: Session, keyspace: str, holding: list[str], statics: list[str],
                 trades: list[str], equity: list[str]) -> None:
        self.session = session
        self.holding, self.statics = ["user_id", "symbol", *holding], ["user_id", *statics]
        self.trades, self.equity = trades, equity
        self.insert_holding = self._prepare(keyspace, "portfolio_by_user", self.holding)
        self.insert_statics = self._prepare(keyspace, "portfolio_by_user", self.statics)
        self.insert_trade = self._prepare(keyspace, "trades_by_user_day", trades)
        self.insert_equity = self._prepare(keyspace, "equity_by_user_day", equity)

    def _prepare(self, keyspace: str, table: str, columns: list[str]) -> PreparedStatement:
        # keyspace passed check_identifier; table and columns are constants; values are always bound.
        return self.session.prepare(f"INSERT INTO {keyspace}.{table} ({', '.join(columns)}) "  # noqa: S608
                                    f"VALUES ({', '.join('?' * len(columns))})")

    def write(self, changed: pd.DataFrame, totals: pd.DataFrame, trades: pd.DataFrame | None = None,
              equity: pd.DataFrame | None = None) -> int:
        """Write `changed` holdings, one statics row per user of `totals`, and the users' `trades` and
        `equity` rows (each with `user_id` first); returns the number of requests."""
        by_user: dict[int, list[tuple[PreparedStatement, tuple]]] = {}
        for statement, frame, columns in ((self.insert_holding, changed, self.holding),
                                          (self.insert_trade, trades, self.trades),
                                          (self.insert_equity, equity, self.equity)):
            if frame is not None and len(frame):
                for row in values(frame, columns):
                    by_user.setdefault(row[0], []).append((statement, row))
        requests = 0
        window: list[ResponseFuture] = []
        for row in values(totals, self.statics):
            statements = [(self.insert_statics, row), *by_user.get(row[0], ())]
            for first in range(0, len(statements), STATEMENTS_PER_REQUEST):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for statement, params in statements[first:first + STATEMENTS_PER_REQUEST]:
                    batch.add(statement, params)
                window.append(self.session.execute_async(batch))
                requests += 1
                if len(window) >= IN_FLIGHT:
                    _wait(window)
        _wait(window)
        return requests


class RowWriter:
    """Upserts of whole rows into one table through the driver session (small tables, e.g. the batch
    health row: no Spark job per write)."""

    def __init__(self, session: Session, keyspace: str, name: str, columns: list[str]) -> None:
        self.session, self.columns = session, columns
        # keyspace passed check_identifier; name and columns are constants; values are always bound.
        self.insert = session.prepare(f"INSERT INTO {keyspace}.{name} ({', '.join(columns)}) "  # noqa: S608
                                      f"VALUES ({', '.join('?' * len(columns))})")

    def write(self, frame: pd.DataFrame) -> None:
        window = [self.session.execute_async(self.insert, row) for row in values(frame, self.columns)]
        _wait(window)


def _wait(window: list[ResponseFuture]) -> None:
    for future in window:
        future.result()  # raises on a failed write: the micro-batch fails and is replayed
    window.clear()


def values(frame: pd.DataFrame, columns: list[str]) -> Iterable[tuple]:
    """Rows as tuples of plain Python values (None for missing) in `columns` order."""
    part = frame[columns].astype(object)
    part = part.where(part.notna(), None)
    for row in part.itertuples(index=False, name=None):
        yield tuple(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in row)
