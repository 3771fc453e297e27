"""Cassandra: reads and the trade/equity/health upserts through the Spark connector; the
`portfolio_by_user` upsert through the Python driver, one UNLOGGED batch (one partition mutation) per
touched user holding its statics and only the holding rows the micro-batch changed
(`bench/streaming_cassandra_writes.py` measured this ~2x faster than the connector writing every row)."""

from __future__ import annotations

import atexit
import functools
import re
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


def upsert(spark: SparkSession, frame: pd.DataFrame, schema: str, keyspace: str, name: str) -> None:
    """Write `frame` (columns named as in `schema`, a Spark DDL string) into table `name`."""
    if frame.empty:
        return
    columns = re.findall(r"(?:^|,)\s*(\w+)\s", schema)
    (spark.createDataFrame(frame[columns], schema).write.format(CASSANDRA).mode("append")
     .options(keyspace=keyspace, table=name).save())


@functools.cache
def session_for(endpoint: CassandraEndpoint) -> Session:
    """One driver session per process (the job's driver process, after Spark started), kept open and
    closed at exit (before the interpreter stops the driver's scheduler thread)."""
    cluster, session = cql.connect(endpoint, timeout_s=30)
    atexit.register(cluster.shutdown)
    return session


class PortfolioWriter:
    """Absolute upserts of `portfolio_by_user`: per touched user, one UNLOGGED batch of the statics row
    and the changed holding rows (a single partition, so a single mutation), prepared statements only,
    at most IN_FLIGHT batches outstanding."""

    def __init__(self, session: Session, keyspace: str, holding: list[str], statics: list[str]) -> None:
        self.session = session
        self.holding, self.statics = ["user_id", "symbol", *holding], ["user_id", *statics]
        self.insert_holding = self._prepare(keyspace, self.holding)
        self.insert_statics = self._prepare(keyspace, self.statics)

    def _prepare(self, keyspace: str, columns: list[str]) -> PreparedStatement:
        # keyspace passed check_identifier and the columns are constants; values are always bound.
        return self.session.prepare(f"INSERT INTO {keyspace}.portfolio_by_user ({', '.join(columns)}) "  # noqa: S608
                                    f"VALUES ({', '.join('?' * len(columns))})")

    def write(self, changed: pd.DataFrame, totals: pd.DataFrame) -> int:
        """Write `changed` holdings and one statics row per user of `totals`; returns the batch count."""
        by_user: dict[int, list[tuple]] = {}
        for row in values(changed, self.holding):
            by_user.setdefault(row[0], []).append(row)
        batches = 0
        window: list[ResponseFuture] = []
        for row in values(totals, self.statics):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            batch.add(self.insert_statics, row)
            for held in by_user.get(row[0], ()):
                batch.add(self.insert_holding, held)
            window.append(self.session.execute_async(batch))
            batches += 1
            if len(window) >= IN_FLIGHT:
                _wait(window)
        _wait(window)
        return batches


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
