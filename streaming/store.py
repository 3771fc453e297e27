"""Cassandra: the touched users' partitions read through the Spark connector (a direct join), or for a
small batch through the driver (`PriorReader`); a micro-batch's per-user rows (`portfolio_by_user`
statics and changed holdings, `trades_by_user_day`, `equity_by_user_day`) written through the Python
driver, whole users packed into UNLOGGED requests, their values serialized a column at a time
(`streaming.wire`; `bench/results/streaming_cassandra_writes.md` measured the packing against a request per
row or the connector); small tables (batch health) through the driver too."""

from __future__ import annotations

import atexit
import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cassandra.cluster import ResponseFuture, Session
from cassandra.query import BatchStatement, BatchType, PreparedStatement
from stockafolio import cql
from stockafolio.settings import CassandraEndpoint
from streaming import wire

CASSANDRA = "org.apache.spark.sql.cassandra"
IN_FLIGHT = 64  # batches awaiting an answer at once
STATEMENTS_PER_REQUEST = 30  # one user's rows per request at most (a busy user's are split)
ROWS_PER_REQUEST = 60  # rows of several users packed into one UNLOGGED request: ~15-20 KiB, under 32 KiB


def table(spark: SparkSession, keyspace: str, name: str) -> DataFrame:
    return spark.read.format(CASSANDRA).options(keyspace=keyspace, table=name).load()


def portfolios_of(spark: SparkSession, keyspace: str, users: list[int]) -> pd.DataFrame:
    """PRIOR_COLUMNS of every `portfolio_by_user` row of `users`, by a direct join on the partition key
    (one read per user, never a table scan), in `prior_frame`'s types. Integer columns cross Arrow with
    nulls as a sentinel: Arrow's pandas conversion turns an int64 column holding a null into float64,
    where trade ids (from ~2**59) are not exact."""
    keys = spark.createDataFrame(pd.DataFrame({"user_id": users}, dtype="int64"))
    stored = (spark.read.format(CASSANDRA).options(keyspace=keyspace, table="portfolio_by_user")
              .option("directJoinSetting", "on").load())
    columns = [F.coalesce(F.col(c).cast("bigint"), F.lit(_NULL)).alias(c) if c in _INTEGERS else F.col(c)
               for c in PRIOR_COLUMNS]
    frame = keys.join(stored, "user_id").select(*columns).toPandas()
    for name in _INTEGERS:
        values = frame[name].to_numpy(dtype="int64")
        frame[name] = pd.arrays.IntegerArray(values, values == _NULL)
    return frame


# what state.Prior.from_rows uses of a partition (the statics repeat on every row)
PRIOR_COLUMNS = ("user_id", "symbol", "quantity", "cost_basis_cents", "realized_pnl_cents", "last_trade_id",
                 "last_trade_time", "cash_cents", "cash_last_trade_id", "day", "day_open_equity_cents",
                 "equity_cents", "last_partition", "last_offset")
_INTEGERS = ("quantity", "cost_basis_cents", "realized_pnl_cents", "last_trade_id", "cash_cents",
             "cash_last_trade_id", "day_open_equity_cents", "equity_cents", "last_partition", "last_offset")
_NULL = -(1 << 63)  # a null integer while it crosses Arrow (no stored value is int64's minimum)
USERS_PER_READ = 100  # partition keys per `IN` read: measured fastest of 50/100/200 for 3,000 users
READS_IN_FLIGHT = 8


class PriorReader:
    """The touched users' partitions through the driver's session: `IN` reads of USERS_PER_READ keys,
    READS_IN_FLIGHT at once, only PRIOR_COLUMNS. For a small batch this skips a Spark job: 3,000 users
    read in ~0.16 s here against 0.8-3.3 s for the direct join beside the running pipeline
    (streaming/README.md); the frame has the direct join's types for those columns."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self.session = session
        columns = ", ".join(PRIOR_COLUMNS)
        self.statement = session.prepare(
            f"SELECT {columns} FROM {keyspace}.portfolio_by_user WHERE user_id IN ?")  # noqa: S608

    def read(self, users: list[int]) -> pd.DataFrame:
        return prior_frame(self.read_rows(users))

    def read_rows(self, users: list[int]) -> list[tuple]:
        """The users' rows as the driver returns them (PRIOR_COLUMNS tuples)."""
        from cassandra.concurrent import execute_concurrent_with_args

        chunks = [(users[i:i + USERS_PER_READ],) for i in range(0, len(users), USERS_PER_READ)]
        rows: list[tuple] = []
        for result in execute_concurrent_with_args(self.session, self.statement, chunks,
                                                   concurrency=READS_IN_FLIGHT, raise_on_first_error=True):
            rows.extend(tuple(r) for r in result.result_or_exc)
        return rows


def prior_frame(rows: list[tuple]) -> pd.DataFrame:
    """PRIOR_COLUMNS rows -> the frame `portfolios_of` gives: integers as nullable Int64 (exact: a float
    column would round trade ids), timestamps naive UTC datetime64[us], dates as datetime.date. Built
    a column at a time with numpy (a Series of Python objects per column cost ~10 % of the driver)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(PRIOR_COLUMNS)
    data: dict[str, object] = {}
    for name, values in zip(PRIOR_COLUMNS, columns, strict=True):
        if name == "user_id":
            data[name] = np.array(values, dtype="int64")
        elif name in _INTEGERS:
            data[name] = nullable_ints(values)
        elif name == "last_trade_time":  # naive UTC datetimes, None -> NaT
            data[name] = np.array(values, dtype="datetime64[us]")
        elif name == "day":  # a batch holds a few distinct days
            known = {v: v if v is None else driver_date(v) for v in set(values)}
            data[name] = np.array([known[v] for v in values], dtype=object)
        else:
            data[name] = np.array(values, dtype=object)
    return pd.DataFrame(data)


def nullable_ints(values: tuple | list) -> pd.arrays.IntegerArray:
    """Python ints (None for null) -> a nullable Int64 array, exact at any int64 value."""
    try:
        return pd.arrays.IntegerArray(np.array(values, dtype="int64"), np.zeros(len(values), dtype=bool))
    except TypeError:  # a None among them
        mask = np.array([v is None for v in values], dtype=bool)
        return pd.arrays.IntegerArray(np.array([0 if v is None else v for v in values], dtype="int64"), mask)


def driver_date(value):
    """The driver's `cassandra.util.Date` -> datetime.date (what Spark returns)."""
    return value.date() if hasattr(value, "days_from_epoch") else value


@functools.cache
def session_for(endpoint: CassandraEndpoint) -> Session:
    """One driver session per process (the job's driver process, after Spark started), kept open and
    closed at exit (before the interpreter stops the driver's scheduler thread)."""
    cluster, session = cql.connect(endpoint, timeout_s=30)
    atexit.register(cluster.shutdown)
    return session


STATICS, HOLDING, TRADE, EQUITY, HOLDING_STATICS = range(5)  # which statement a grouped row goes to


@dataclass(frozen=True)
class WriteSpec:
    """Where and which columns a micro-batch's per-user rows are written (picklable: executors build
    their own `PortfolioWriter` from it)."""

    keyspace: str
    cassandra: CassandraEndpoint
    holding: tuple[str, ...]  # HOLDING_OUT
    statics: tuple[str, ...]  # TOTALS_OUT
    trades: tuple[str, ...]   # trades_by_user_day columns, user_id first
    equity: tuple[str, ...]   # equity_by_user_day columns, user_id first

    @property
    def columns(self) -> tuple[list[str], ...]:
        """Column lists in STATICS, HOLDING, TRADE, EQUITY, HOLDING_STATICS order, each starting with
        user_id; HOLDING_STATICS is a holding row and its user's statics in one statement."""
        holding = ["user_id", "symbol", *self.holding]
        return (["user_id", *self.statics], holding, list(self.trades), list(self.equity),
                [*holding, *self.statics])


UserRows = list[tuple[int, tuple]]  # one user's (kind, serialized values) rows, its statics first
TABLES = ("portfolio_by_user", "portfolio_by_user", "trades_by_user_day", "equity_by_user_day",
          "portfolio_by_user")


class PortfolioWriter:
    """Absolute upserts of a micro-batch's per-user rows: a touched user's `portfolio_by_user` statics
    row and changed holding rows (one partition), its trades of the batch (`trades_by_user_day`) and
    its equity point (`equity_by_user_day`), whole users packed into UNLOGGED requests of up to
    ROWS_PER_REQUEST rows (`send`), where a request per user, per row or a Spark job per table cost
    more (`bench/results/streaming_cassandra_writes.md`). A user's statics go in the same statement
    as their first changed holding (one row fewer to bind and send), except for a user with more than
    STATEMENTS_PER_REQUEST rows in one micro-batch: such a user gets several requests of at most that
    many statements (Cassandra warns above 32 KiB per batch as configured and refuses above 50 KiB) and
    their statics a request of its own, last. Prepared statements, their values serialized a column
    at a time (`streaming.wire`: the driver's `bind` was most of the write's CPU); at most IN_FLIGHT
    requests outstanding. The job runs it in the driver for small batches and in each executor
    (`write_partition`) for large ones."""

    def __init__(self, session: Session, spec: WriteSpec) -> None:
        self.session, self.spec = session, spec
        self.statements = [self._prepare(spec.keyspace, table, columns)
                           for table, columns in zip(TABLES, spec.columns, strict=True)]
        self.types = [[column.type for column in statement.column_metadata] for statement in self.statements]

    def _prepare(self, keyspace: str, table: str, columns: list[str]) -> PreparedStatement:
        # keyspace passed check_identifier; table and columns are constants; values are always bound.
        return self.session.prepare(f"INSERT INTO {keyspace}.{table} ({', '.join(columns)}) "  # noqa: S608
                                    f"VALUES ({', '.join('?' * len(columns))})")

    def write(self, changed: pd.DataFrame, totals: pd.DataFrame, trades: pd.DataFrame | None = None,
              equity: pd.DataFrame | None = None) -> int:
        """Group and send (see `group`); returns the number of requests."""
        return self.send(self.group(changed, totals, trades, equity))

    def group(self, changed: pd.DataFrame, totals: pd.DataFrame, trades: pd.DataFrame | None = None,
              equity: pd.DataFrame | None = None) -> list[UserRows]:
        """One list per user of `totals`: its statics (with its first changed holding when the user has
        at most STATEMENTS_PER_REQUEST rows), then its other rows: changed holdings, trades, equity
        point. Values serialized (bytes), so the lists pickle to the executors as they are sent."""
        columns = self.spec.columns
        by_user: dict[int, UserRows] = {}
        for kind, frame in ((HOLDING, changed), (TRADE, trades), (EQUITY, equity)):
            if frame is not None and len(frame):
                encoded = wire.encode_rows(frame, columns[kind], self.types[kind])
                for user, row in zip(frame["user_id"].tolist(), encoded, strict=True):
                    by_user.setdefault(user, []).append((kind, row))
        grouped: list[UserRows] = []
        statics = wire.encode_rows(totals, columns[STATICS], self.types[STATICS])
        for user, row in zip(totals["user_id"].tolist(), statics, strict=True):
            rows = by_user.get(user, [])
            if rows and rows[0][0] == HOLDING and len(rows) < STATEMENTS_PER_REQUEST:
                grouped.append([(HOLDING_STATICS, rows[0][1] + row[1:]), *rows[1:]])
            else:
                grouped.append([(STATICS, row), *rows])
        return grouped

    def send(self, users: Iterable[UserRows]) -> int:
        """UNLOGGED batches of whole users, up to ROWS_PER_REQUEST rows each (Cassandra's cost is per
        request far more than per row: `bench/results/streaming_cassandra_writes.md`); returns the
        number of requests. A user's own partition is never split between two requests unless the user
        has more than STATEMENTS_PER_REQUEST rows; such a user's statics row (the cash, the guards,
        `last_offset`) then goes only after every other request of the batch was acknowledged, so a
        stored offset means that everything up to it is written (streaming/order.py)."""
        requests = 0
        window: list[ResponseFuture] = []
        statics_last: list[tuple[int, tuple]] = []
        pack: list[tuple[int, tuple]] = []
        for rows in users:
            if len(rows) > STATEMENTS_PER_REQUEST:
                statics_last.append(rows[0])
                requests += self._send_chunks(rows[1:], window)
                continue
            if len(pack) + len(rows) > ROWS_PER_REQUEST:
                requests += self._send_chunks(pack, window, per_request=len(pack))
                pack = []
            pack.extend(rows)
        if pack:
            requests += self._send_chunks(pack, window, per_request=len(pack))
        wait(window)
        requests += self._send_chunks(statics_last, window)
        wait(window)
        return requests

    def _send_chunks(self, rows: list[tuple[int, tuple]], window: list[ResponseFuture],
                     per_request: int = STATEMENTS_PER_REQUEST) -> int:
        return send_unlogged(self.session, [(self.statements[kind], params) for kind, params in rows],
                             window, per_request)


def send_unlogged(session: Session, rows: list[tuple[PreparedStatement, tuple]], window: list[ResponseFuture],
                  per_request: int, in_flight: int = IN_FLIGHT) -> int:
    """`rows` (a statement and its serialized values each) in UNLOGGED requests of `per_request`,
    sent without waiting while fewer than `in_flight` are outstanding in `window`; returns the
    requests sent. The caller `wait`s for the window."""
    requests = 0
    for first in range(0, len(rows), max(per_request, 1)):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for statement, params in rows[first:first + per_request]:
            add_serialized(batch, statement, params)
        window.append(session.execute_async(batch))
        requests += 1
        if len(window) >= in_flight:
            wait(window)
    return requests


def add_serialized(batch: BatchStatement, statement: PreparedStatement, values: tuple) -> None:
    """Add `statement` with values already serialized (`streaming.wire`) to `batch`: what
    `BatchStatement.add` does after `bind` (which serializes the values one at a time). Tested against
    the driver's own `add` in tests/unit/streaming/test_store_writer.py."""
    batch._add_statement_and_params(True, statement.query_id, values)


@functools.lru_cache(maxsize=4)
def _executor_writer(spec: WriteSpec) -> PortfolioWriter:
    return PortfolioWriter(session_for(spec.cassandra), spec)


def write_partition(spec: WriteSpec, users: Iterable[UserRows]) -> None:
    """`foreachPartition` function: write one slice of a batch's users from an executor's Python
    worker (its session and prepared statements are made once per worker process)."""
    _executor_writer(spec).send(users)


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
        wait(window)


def forget_batches_after(session: Session, keyspace: str, job: str, batch_id: int) -> None:
    """Delete `job`'s health rows (Q8) of batch ids above `batch_id`: called once, at the first batch a
    job process runs. Spark runs batches in order and re-runs only the last uncommitted one, so rows
    above it come from an earlier checkpoint: after the checkpoint was deleted the ids restart at 0,
    and the newest-first read of Q8 would show the old run's batches as the latest for a day (TTL).
    One range tombstone per start."""
    session.execute(f"DELETE FROM {keyspace}.batches_by_job WHERE job = %s AND batch_id > %s",  # noqa: S608
                    (job, batch_id))


def wait(window: list[ResponseFuture]) -> None:
    for future in window:
        future.result()  # raises on a failed write: the micro-batch fails and is replayed
    window.clear()


def values(frame: pd.DataFrame, columns: list[str]) -> Iterable[tuple]:
    """Rows as tuples of plain Python values (None for missing) in `columns` order, built a column at
    a time (numpy's `tolist` for numbers: the write path's largest Python cost was a value at a time)."""
    return zip(*(plain(frame[name]) for name in columns), strict=True)


def plain(column: pd.Series) -> list:
    """A column's values as the driver takes them: int, float, str, bool, datetime (naive UTC: the
    driver writes a naive datetime as UTC), date, ...; None for a missing one (NaN, NaT, NA, None)."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return column.to_numpy().tolist()
    if isinstance(dtype, pd.Int64Dtype):  # nullable integers: exact, None where masked
        out = column.to_numpy(dtype="int64", na_value=0).tolist()
        missing = column.isna().to_numpy()
        if missing.any():
            for i in np.flatnonzero(missing).tolist():
                out[i] = None
        return out
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        array = column.to_numpy()
        out = array.tolist()
        return [None if v != v else v for v in out] if np.isnan(array).any() else out
    if isinstance(dtype, pd.DatetimeTZDtype):  # as naive UTC, which the driver takes as UTC
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
        dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "M":  # naive datetime64: NaT becomes None
        return column.to_numpy(dtype="datetime64[us]").astype(object).tolist()
    return [None if _missing(v) else (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v)
            for v in column.astype(object).tolist()]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)
