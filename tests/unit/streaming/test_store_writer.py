"""The job's per-user write: whole users packed into UNLOGGED requests, a user's statics in the statement
of their first changed holding, a user with many rows split into requests of bounded size with their
statics last; the values serialized as the driver's own `bind` would (the batch holds the very bytes);
the grouped rows survive pickling (the executors get them that way)."""

from __future__ import annotations

import hashlib
import pickle
from datetime import UTC, date, datetime

import pandas as pd

from cassandra import cqltypes
from cassandra.protocol import ColumnMetadata
from cassandra.query import BatchStatement, BatchType, PreparedStatement
from stockafolio.settings import CassandraEndpoint
from streaming import store

SPEC = store.WriteSpec("ks", CassandraEndpoint(("127.0.0.1",), 9042, "dc"), ("quantity",), ("cash_cents",),
                       ("user_id", "trade_id"), ("user_id", "minute"))
NOW = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
TYPES = {"user_id": cqltypes.LongType, "quantity": cqltypes.LongType, "cash_cents": cqltypes.LongType,
         "trade_id": cqltypes.LongType, "minute": cqltypes.DateType, "symbol": cqltypes.UTF8Type,
         "day": cqltypes.SimpleDateType}


def prepared(query: str) -> PreparedStatement:
    """A prepared statement as the driver makes it from Cassandra's answer (its bind markers' types)."""
    table = query.split(" (")[0].removeprefix("INSERT INTO ks.")
    columns = query.split(" (")[1].split(")")[0].split(", ")
    metadata = [ColumnMetadata("ks", table, name, TYPES[name]) for name in columns]
    return PreparedStatement(metadata, hashlib.md5(query.encode()).digest(), None, query, "ks", 5,  # noqa: S324
                             None, None)


class FakeSession:
    """Records what the writer sends, decoded (a unit-test stand-in; the real path runs in the
    integration tests)."""

    def __init__(self) -> None:
        self.statements: dict[bytes, PreparedStatement] = {}
        self.sent: list[list[tuple[str, tuple]]] = []

    def prepare(self, query: str) -> PreparedStatement:
        statement = prepared(query)
        self.statements[statement.query_id] = statement
        return statement

    def execute_async(self, batch: BatchStatement):
        assert batch.batch_type == BatchType.UNLOGGED
        self.sent.append([self.decoded(query_id, values)
                          for is_prepared, query_id, values in batch._statements_and_parameters])
        return self

    def decoded(self, query_id: bytes, values) -> tuple[str, tuple]:
        statement = self.statements[query_id]
        table = statement.column_metadata[0].table_name
        return table, tuple(None if v is None else c.type.deserialize(v, 5)
                            for c, v in zip(statement.column_metadata, values, strict=True))

    def result(self) -> None:
        return None


def frames():
    changed = pd.DataFrame({"user_id": [1, 2], "symbol": ["AAPL", "MSFT"], "quantity": [5, 7]})
    totals = pd.DataFrame({"user_id": [1, 2], "cash_cents": [100, 200]})
    trades = pd.DataFrame({"user_id": [1] + [2] * 40, "trade_id": range(41)})
    equity = pd.DataFrame({"user_id": [1, 2], "minute": [NOW, NOW]})
    return changed, totals, trades, equity


def test_whole_users_per_request_statics_with_a_holding_and_a_busy_users_statics_last() -> None:
    session = FakeSession()
    requests = store.PortfolioWriter(session, SPEC).write(*frames())

    # user 2: 1 + 1 + 40 + 1 = 43 rows -> 30 + 12 without its statics, which go last; user 1: one pack
    # of three rows, its statics in its holding's statement
    assert requests == len(session.sent) == 4
    assert [len(r) for r in session.sent] == [store.STATEMENTS_PER_REQUEST, 12, 3, 1]
    user1 = session.sent[2]
    assert [t for t, _ in user1] == ["portfolio_by_user", "trades_by_user_day", "equity_by_user_day"]
    assert user1[0][1] == (1, "AAPL", 5, 100)  # holding and statics: one statement
    assert user1[2][1] == (1, NOW.replace(tzinfo=None))  # written as UTC
    assert session.sent[-1] == [("portfolio_by_user", (2, 200))]  # the statics, after everything else
    user2 = [row for request in (*session.sent[:2], session.sent[3]) for row in request]
    assert sorted(v[1] for t, v in user2 if t == "trades_by_user_day") == list(range(1, 41))
    assert ("portfolio_by_user", (2, "MSFT", 7)) in user2
    assert all(v[0] == 2 for _, v in user2)


def test_the_batch_holds_what_the_drivers_own_bind_would() -> None:
    session = FakeSession()
    writer = store.PortfolioWriter(session, SPEC)
    changed, totals, trades, equity = frames()
    ours = BatchStatement(batch_type=BatchType.UNLOGGED)
    theirs = BatchStatement(batch_type=BatchType.UNLOGGED)
    for rows in writer.group(changed, totals, trades, equity):
        for kind, values in rows:
            store.add_serialized(ours, writer.statements[kind], values)
            plain = tuple(c.type.deserialize(v, 5) for c, v in
                          zip(writer.statements[kind].column_metadata, values, strict=True))
            theirs.add(writer.statements[kind], plain)
    def sent(batch: BatchStatement) -> list:
        return [(p, q, list(v)) for p, q, v in batch._statements_and_parameters]

    assert sent(ours) == sent(theirs)
    assert len(ours._statements_and_parameters) == 3 + 43  # user 1: statics with its holding


def test_many_small_users_share_requests_without_splitting_one() -> None:
    session = FakeSession()
    n = 20
    changed = pd.DataFrame({"user_id": range(1, n + 1), "symbol": ["AAPL"] * n, "quantity": [1] * n})
    totals = pd.DataFrame({"user_id": range(1, n + 1), "cash_cents": [100] * n})
    trades = pd.DataFrame({"user_id": range(1, n + 1), "trade_id": [7] * n})
    equity = pd.DataFrame({"user_id": range(1, n + 1), "minute": [NOW] * n})
    # 20 users x 3 rows (statics in the holding's statement)
    assert store.PortfolioWriter(session, SPEC).write(changed, totals, trades, equity) == 1
    assert [len(r) for r in session.sent] == [3 * n]
    assert 3 * n == store.ROWS_PER_REQUEST
    session = FakeSession()
    assert store.PortfolioWriter(session, SPEC).write(pd.concat([changed, changed.assign(symbol="MSFT")]),
                                                      totals, trades, equity) == 2
    assert [len(r) for r in session.sent] == [store.ROWS_PER_REQUEST, 80 - store.ROWS_PER_REQUEST]
    for request in session.sent:  # every user whole in one request
        owners = [v[0] for _, v in request]
        assert all(owners.count(u) == 4 for u in set(owners))


def test_grouped_rows_pickle_and_send_the_same() -> None:
    session = FakeSession()
    grouped = store.PortfolioWriter(session, SPEC).group(*frames())
    assert [rows[0][0] for rows in grouped] == [store.HOLDING_STATICS, store.STATICS]
    direct, shipped = FakeSession(), FakeSession()
    store.PortfolioWriter(direct, SPEC).send(grouped)
    store.PortfolioWriter(shipped, SPEC).send(pickle.loads(pickle.dumps(grouped)))  # noqa: S301 (our own)
    assert shipped.sent == direct.sent


def test_without_trades_and_equity_only_the_portfolio_is_written() -> None:
    session = FakeSession()
    spec = store.WriteSpec("ks", SPEC.cassandra, ("quantity",), ("day",), ("user_id",), ("user_id",))
    totals = pd.DataFrame({"user_id": [3], "day": [date(2026, 11, 20)]})
    writer = store.PortfolioWriter(session, spec)
    assert writer.write(pd.DataFrame(columns=["user_id", "symbol", "quantity"]), totals) == 1
    assert [(t, (v[0], v[1].date())) for t, v in session.sent[0]] == [
        ("portfolio_by_user", (3, date(2026, 11, 20)))]


def test_driver_read_rows_take_the_direct_joins_types():
    """`PriorReader`'s frame as `portfolios_of` gives it (the integration test compares the two on real
    data): integer columns nullable Int64 and exact (a float column would round trade ids), dates as
    datetime.date, times datetime64[us]; no rows (every user new) still gives typed columns
    `Prior.from_rows` accepts."""
    from datetime import UTC, date, datetime

    from cassandra.util import Date
    from streaming import state
    from streaming.store import PRIOR_COLUMNS, prior_frame

    at = datetime(2026, 12, 7, 14, 30, tzinfo=UTC).replace(tzinfo=None)  # the driver's naive UTC
    big = 939_916_338_183_665_488  # a live trade id: not exact as a float
    holding = (7, "AAPL", 10, 150_000, 0, big, at, 1_000_000, big, Date(date(2026, 12, 7)), 1_150_000,
               1_160_000, 2, 900)
    statics_only = (8, None, None, None, None, None, None, 500_000, 3, Date(date(2026, 12, 6)), 500_000,
                    500_000, None, None)
    frame = prior_frame([holding, statics_only])
    assert list(frame.columns) == list(PRIOR_COLUMNS)
    assert frame["user_id"].dtype == "int64" and frame["cash_cents"].dtype == "Int64"
    assert frame["quantity"].dtype == "Int64" and frame["quantity"].isna().tolist() == [False, True]
    assert frame["last_trade_id"].tolist()[0] == big and frame["cash_last_trade_id"].tolist()[0] == big
    assert str(frame["last_trade_time"].dtype) == "datetime64[us]"
    assert frame["day"].tolist() == [date(2026, 12, 7), date(2026, 12, 6)]
    prior = state.Prior.from_rows(frame)
    assert prior.holdings["user_id"].tolist() == [7] and sorted(prior.cash["user_id"]) == [7, 8]
    assert prior.holdings["last_trade_id"].tolist() == [big] and prior.cash["cash_last_trade_id"].max() == big

    empty = prior_frame([])
    assert empty.empty and empty["user_id"].dtype == "int64"
    assert state.Prior.from_rows(empty).holdings.empty


def test_values_are_plain_python_with_none_for_what_is_missing() -> None:
    big = (1 << 59) + 1  # a live trade id: beyond a double's 2**53
    frame = pd.DataFrame({
        "id": pd.Series([big, 2], dtype="int64"), "guard": pd.array([big, None], dtype="Int64"),
        "price": [1.5, float("nan")], "symbol": ["AAPL", None], "day": [date(2026, 11, 20), None],
        "naive": pd.to_datetime(["2026-11-20 14:30", None]).astype("datetime64[us]"),
        "aware": pd.to_datetime(["2026-11-20 14:30Z", None], utc=True), "flag": [True, False]})
    rows = list(store.values(frame, list(frame.columns)))
    naive = NOW.replace(tzinfo=None)  # the driver writes a naive datetime as UTC
    assert rows == [(big, big, 1.5, "AAPL", date(2026, 11, 20), naive, naive, True),
                    (2, None, None, None, None, None, None, False)]
    assert [type(v) for v in rows[0]] == [int, int, float, str, date, datetime, datetime, bool]
