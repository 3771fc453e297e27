"""The job's per-user write: one UNLOGGED batch per touched user with its statics row first, its changed
holdings, trades and equity point; a user with many rows is split into requests of bounded size."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from cassandra.query import BatchStatement
from streaming import store


class FakeFuture:
    def result(self) -> None:
        return None


class FakeSession:
    """Records what the writer sends (a unit-test stand-in; the real path runs in the integration tests)."""

    def __init__(self) -> None:
        self.sent: list[list[tuple[str, tuple]]] = []

    def prepare(self, query: str) -> str:
        return query.split(" (")[0].removeprefix("INSERT INTO ks.")  # the table name stands for the statement

    def execute_async(self, batch: BatchStatement) -> FakeFuture:
        self.sent.append(list(zip(self.tables, [tuple(v) for v in self.values], strict=True)))
        self.tables, self.values = [], []
        return FakeFuture()


class RecordingBatch(BatchStatement):
    def add(self, statement, parameters=None):  # the driver's signature
        SESSION.tables.append(statement)
        SESSION.values.append(parameters)


SESSION = FakeSession()


def test_one_request_per_user_and_bounded_requests_for_a_busy_user(monkeypatch) -> None:
    SESSION.sent, SESSION.tables, SESSION.values = [], [], []
    monkeypatch.setattr(store, "BatchStatement", lambda batch_type: RecordingBatch(batch_type=batch_type))
    writer = store.PortfolioWriter(SESSION, "ks", ["quantity"], ["cash_cents"],
                                   ["user_id", "trade_id"], ["user_id", "minute"])
    now = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    changed = pd.DataFrame({"user_id": [1, 2], "symbol": ["AAPL", "MSFT"], "quantity": [5, 7]})
    totals = pd.DataFrame({"user_id": [1, 2], "cash_cents": [100, 200]})
    trades = pd.DataFrame({"user_id": [1] + [2] * 40, "trade_id": range(41)})
    equity = pd.DataFrame({"user_id": [1, 2], "minute": [now, now]})
    requests = writer.write(changed, totals, trades, equity)

    assert requests == len(SESSION.sent) == 3  # user 1: one; user 2: 1 + 1 + 40 + 1 = 43 rows -> 30 + 13
    first = SESSION.sent[0]
    assert [t for t, _ in first] == ["portfolio_by_user", "portfolio_by_user", "trades_by_user_day",
                                     "equity_by_user_day"]
    assert first[0][1] == (1, 100) and first[1][1] == (1, "AAPL", 5) and first[3][1] == (1, now)
    assert [len(r) for r in SESSION.sent[1:]] == [store.STATEMENTS_PER_REQUEST, 13]
    user2 = [row for request in SESSION.sent[1:] for row in request]
    assert user2[0] == ("portfolio_by_user", (2, 200))
    assert sorted(v[1] for t, v in user2 if t == "trades_by_user_day") == list(range(1, 41))
    assert all(v[0] == 2 for _, v in user2)


def test_without_trades_and_equity_only_the_portfolio_is_written(monkeypatch) -> None:
    SESSION.sent, SESSION.tables, SESSION.values = [], [], []
    monkeypatch.setattr(store, "BatchStatement", lambda batch_type: RecordingBatch(batch_type=batch_type))
    writer = store.PortfolioWriter(SESSION, "ks", ["quantity"], ["day"], ["user_id"], ["user_id"])
    totals = pd.DataFrame({"user_id": [3], "day": [date(2026, 11, 20)]})
    assert writer.write(pd.DataFrame(columns=["user_id", "symbol", "quantity"]), totals) == 1
    assert SESSION.sent == [[("portfolio_by_user", (3, date(2026, 11, 20)))]]
