"""The firm and market views (Q5, Q6, Q7a), moved by the portfolio query's own micro-batches in the
driver: no Spark query, no Kafka read or state store of their own.

Each micro-batch adds its new trades (those the accounting takes as new, `streaming.order`) to the
rows they touch (`streaming.views`) and upserts those rows before any portfolio row of the batch,
each tagged with the batch (`applied_batch` = "<query id>:<batch id>"). Exactly once follows from
the order of the writes:

- the job dies while it writes the views: no portfolio row of the batch is written, so its replay
  finds the same trades new; rows already tagged with the batch stay, the others move;
- the job dies after the views: every row the batch touches is tagged, so the replay moves none
  (and the trades it finds already accounted are not new anyway);
- a new checkpoint (new query id) re-reads the topic: trades the portfolios hold are replays, not new.

The stored rows a batch starts from come from `ViewCache`: what this process wrote last, read from
Cassandra only for partitions (and minutes) it has not seen; the job is the views' only writer. The
cache is emptied with the portfolio state cache whenever a batch fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from cassandra.cluster import ResponseFuture, Session
from cassandra.concurrent import execute_concurrent_with_args
from stockafolio.market_days import previous_market_day
from streaming import store, views, wire

LOG = logging.getLogger("streaming.market")
READS_IN_FLIGHT = 64
ROWS_PER_REQUEST = 60  # UNLOGGED requests: Q7a's rows share a partition, Q5's are one per symbol
IN_FLIGHT = 32
KEEP_MINUTES = 90  # minutes of Q5/Q6 rows the cache keeps behind the newest one (a later trade reads)


class ViewCache:
    """The stored Q5, Q6 and Q7a rows a batch moves, kept per partition after the first read.

    A partition (Q5: day and symbol; Q6 and Q7a: day) is read once from `since` (a minute) on; every
    row the job writes afterwards is kept, so later minutes need no read (none can exist that the job
    did not write). A trade older than `since` reads the minutes in between. Minutes more than
    KEEP_MINUTES behind the newest leave the cache (their partitions' `since` moves up)."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self.session, ks = session, keyspace
        q5, q6, q7a = "symbol_stats_by_day_symbol", "firm_activity_by_day", "symbol_totals_by_day"
        self.read_q5 = session.prepare(
            f"SELECT {', '.join(views.Q5_COLUMNS)} FROM {ks}.{q5} "  # noqa: S608
            "WHERE day = ? AND symbol = ? AND minute >= ? AND minute < ?")
        self.read_q6 = session.prepare(
            f"SELECT {', '.join(views.Q6_COLUMNS)} FROM {ks}.{q6} "  # noqa: S608
            "WHERE day = ? AND minute >= ? AND minute < ?")
        self.read_q7a = session.prepare(
            f"SELECT {', '.join(views.Q7A_COLUMNS)} FROM {ks}.{q7a} WHERE day = ?")  # noqa: S608
        self.write_q5 = _insert(session, f"{ks}.{q5}", views.Q5_COLUMNS)
        self.write_q6 = _insert(session, f"{ks}.{q6}", views.Q6_COLUMNS)
        self.write_q7a = _insert(session, f"{ks}.{q7a}", views.Q7A_COLUMNS)
        self.clear()

    def clear(self) -> None:
        self.q5: dict[tuple, tuple] = {}   # (day, symbol, minute) -> Q5_COLUMNS values
        self.q6: dict[tuple, tuple] = {}   # (day, minute) -> Q6_COLUMNS values
        self.q7a: dict[tuple, tuple] = {}  # (day, symbol) -> Q7A_COLUMNS values
        self.q5_since: dict[tuple, datetime] = {}  # (day, symbol) -> first minute the cache holds
        self.q6_since: dict[date, datetime] = {}
        self.q7a_days: set[date] = set()
        self.trimmed: datetime | None = None  # the last bound `_forget_old` applied
        self.reads = 0

    def stored(self, q5: pd.DataFrame, q6: pd.DataFrame, q7a: pd.DataFrame
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The stored rows under the keys of a batch's deltas, reading what the cache lacks."""
        self._load_q5(q5)
        self._load_q6(q6)
        self._load_q7a(q7a)
        return (_frame(self.q5, views.Q5_COLUMNS, _keys(q5, views.Q5_KEY)),
                _frame(self.q6, views.Q6_COLUMNS, _keys(q6, views.Q6_KEY)),
                _frame(self.q7a, views.Q7A_COLUMNS, _keys(q7a, views.Q7A_KEY)))

    def _load_q5(self, delta: pd.DataFrame) -> None:
        spans = _spans(delta, ["day", "symbol"])
        args = []
        for (day, symbol), first in spans.items():
            since = self.q5_since.get((day, symbol))
            if since is None or first < since:
                args.append((day, symbol, first, since or _END))
                self.q5_since[(day, symbol)] = first
        for row in self._read(self.read_q5, args):
            self.q5.setdefault(row[:3], row)

    def _load_q6(self, delta: pd.DataFrame) -> None:
        args = []
        for (day,), first in _spans(delta, ["day"]).items():
            since = self.q6_since.get(day)
            if since is None or first < since:
                args.append((day, first, since or _END))
                self.q6_since[day] = first
        for row in self._read(self.read_q6, args):
            self.q6.setdefault(row[:2], row)

    def _load_q7a(self, delta: pd.DataFrame) -> None:
        days = sorted(set(delta["day"]) - self.q7a_days) if len(delta) else []
        self.q7a_days.update(days)
        for row in self._read(self.read_q7a, [(d,) for d in days]):
            self.q7a.setdefault(row[:2], row)

    def _read(self, statement, args: list[tuple]) -> list[tuple]:
        if not args:
            return []
        self.reads += len(args)
        results = execute_concurrent_with_args(self.session, statement, args, concurrency=READS_IN_FLIGHT,
                                               raise_on_first_error=True)
        # every read starts with the day: the driver's Date becomes a datetime.date, as the cache's keys
        return [(store.driver_date(row[0]), *tuple(row)[1:]) for ok, result in results for row in result]

    def write(self, q5: pd.DataFrame, q6: pd.DataFrame, q7a: pd.DataFrame) -> int:
        """Upsert the moved rows (packed UNLOGGED requests) and keep them; returns the requests."""
        requests = 0
        window: list[ResponseFuture] = []
        for statement, rows, columns, cache, width in (
                (self.write_q7a, q7a, views.Q7A_COLUMNS, self.q7a, 2),
                (self.write_q5, q5, views.Q5_COLUMNS, self.q5, 3),
                (self.write_q6, q6, views.Q6_COLUMNS, self.q6, 2)):
            values = list(store.values(rows, columns)) if len(rows) else []  # the cache's
            types = [column.type for column in statement.column_metadata]
            encoded = wire.encode_rows(rows, list(columns), types) if len(rows) else []  # what is sent
            requests += store.send_unlogged(self.session, [(statement, params) for params in encoded],
                                            window, ROWS_PER_REQUEST, IN_FLIGHT)
            store.wait(window)  # acknowledged before the cache (and then the portfolios) move on
            for params in values:
                cache[params[:width]] = params
        self._forget_old(q5, q6)
        return requests

    def _forget_old(self, q5: pd.DataFrame, q6: pd.DataFrame) -> None:
        """Once a minute: drop the rows more than KEEP_MINUTES behind the newest minute written."""
        newest = max(pd.Timestamp(f["minute"].max()) for f in (q5, q6) if len(f)).to_pydatetime()
        bound = newest.replace(second=0, microsecond=0) - timedelta(minutes=KEEP_MINUTES)
        if self.trimmed is not None and bound <= self.trimmed:
            return
        self.trimmed, day = bound, bound.date()
        self.q5 = {k: v for k, v in self.q5.items() if k[2] >= bound}
        self.q6 = {k: v for k, v in self.q6.items() if k[1] >= bound}
        self.q7a = {k: v for k, v in self.q7a.items() if k[0] >= day}
        self.q5_since = {k: max(v, bound) for k, v in self.q5_since.items() if k[0] >= day}
        self.q6_since = {k: max(v, bound) for k, v in self.q6_since.items() if k >= day}
        self.q7a_days = {d for d in self.q7a_days if d >= day}


class MarketViews:
    """Moves Q5, Q6 and Q7a by one micro-batch's new trades (see the module's docstring)."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self.cache = ViewCache(session, keyspace)

    def apply(self, trades: pd.DataFrame, previous_minute: pd.Series, guard: str) -> tuple[int, int]:
        """Write the views of `trades` (the batch's new ones); (rows written, requests)."""
        q5, q6, q7a = views.batch_deltas(trades, previous_minute)
        if q5.empty:
            return 0, 0
        stored5, stored6, stored7 = self.cache.stored(q5, q6, q7a)
        rows = (views.q5_rows(stored5, q5, guard), views.q6_rows(stored6, q6, guard),
                views.q7a_rows(stored7, q7a, guard))
        return sum(len(r) for r in rows), self.cache.write(*rows)

    def clear(self) -> None:
        self.cache.clear()


_END = datetime(9999, 12, 31, tzinfo=UTC)  # an open end of a minute range (bound only)


class PreviousCloses:
    """The previous market day's closing prices (`stockafolio.market_days`), for the day's open of a
    user the stream values for the first time that day (`state._day_open`): each name's last price
    of that day in Q5, its latest minute (the job's own views; with `--no-views`, whatever a run with
    them wrote). Read once per day, one small read per name, ~500 concurrent; names that did not trade
    that day are left out (such a holding opens at the latest price: it counts no move)."""

    def __init__(self, session: Session, keyspace: str, symbols: Iterable[str]) -> None:
        self.session, self.symbols = session, sorted(symbols)
        self.read = session.prepare(
            f"SELECT last_price FROM {keyspace}.symbol_stats_by_day_symbol "  # noqa: S608
            "WHERE day = ? AND symbol = ? LIMIT 1")
        self.day: date | None = None
        self.closes: dict[str, float] = {}

    def before(self, day: date) -> dict[str, float]:
        if day != self.day:
            previous = previous_market_day(day)
            results = execute_concurrent_with_args(self.session, self.read,
                                                   [(previous, s) for s in self.symbols],
                                                   concurrency=READS_IN_FLIGHT, raise_on_first_error=True)
            closes = {}
            for symbol, (_, rows) in zip(self.symbols, results, strict=True):
                for row in rows:
                    if row[0] is not None:
                        closes[symbol] = float(row[0])
            self.day, self.closes = day, closes
        return self.closes


def _insert(session: Session, table: str, columns: list[str]):
    # the keyspace passed check_identifier and the columns are constants; values are always bound
    return session.prepare(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                           f"VALUES ({', '.join('?' * len(columns))})")


def _spans(delta: pd.DataFrame, partition: list[str]) -> dict[tuple, datetime]:
    """The earliest minute of each partition of `delta`."""
    if delta.empty:
        return {}
    firsts = delta.groupby(partition)["minute"].min()
    return {(k if isinstance(k, tuple) else (k,)): pd.Timestamp(v).to_pydatetime() for k, v in firsts.items()}


def _keys(frame: pd.DataFrame, key: list[str]) -> list[tuple]:
    """The frame's keys as the cache holds them: dates, symbols, naive UTC datetimes."""
    if frame.empty:
        return []
    return [tuple(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in row)
            for row in frame[key].itertuples(index=False, name=None)]


def _frame(cache: dict[tuple, tuple], columns: list[str], keys: Iterable[tuple]) -> pd.DataFrame:
    rows = [cache[k] for k in keys if k in cache]
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("minute", "last_trade_time"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[us]")
    return frame


def previous_minutes(holdings: pd.DataFrame) -> pd.Series:
    """Each user's last trade minute from their stored holdings (`state.Prior.holdings`: the holding
    with the highest `last_trade_id` was moved by the user's last trade), indexed by user id."""
    held = holdings.dropna(subset=["last_trade_id", "last_trade_time"])
    if held.empty:
        return pd.Series(dtype="datetime64[us]")
    last = held.sort_values("last_trade_id").drop_duplicates("user_id", keep="last")
    minutes = pd.to_datetime(last["last_trade_time"]).astype("datetime64[us]").dt.floor("min")
    return pd.Series(minutes.to_numpy(), index=last["user_id"].to_numpy(dtype=np.int64))
