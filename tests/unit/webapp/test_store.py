"""The store's session life cycle with a fake driver: lazy connect, retry pause, rebuild after a
long outage, a new session after fork."""

from __future__ import annotations

import pytest

from cassandra.cluster import NoHostAvailable
from stockafolio.errors import ServiceUnavailable
from stockafolio.settings import CassandraEndpoint
from webapp import store as store_module
from webapp.store import DataUnavailable, Store


class FakeSession:
    def __init__(self) -> None:
        self.fail = False
        self.prepared: list[str] = []
        self.executed: list[tuple] = []

    def execution_profile_clone_update(self, *args, **kwargs):
        return object()

    def prepare(self, cql: str) -> str:
        self.prepared.append(cql)
        return cql

    def execute(self, statement, params, execution_profile=None):
        if self.fail:
            raise NoHostAvailable("down", {})
        self.executed.append(tuple(params))
        if "latest_price_by_market" in statement:
            return [{"symbol": "AAPL", "price": 100.0 + len(self.executed), "event_time": None}]
        return [{"username": params[0], "user_id": 1, "password_hash": "h", "role": "user"}]


class FakeCluster:
    def __init__(self) -> None:
        self.shut = False

    def add_execution_profile(self, name, profile) -> None:
        pass

    def shutdown(self) -> None:
        self.shut = True


class Driver:
    def __init__(self) -> None:
        self.up, self.connects = True, 0
        self.sessions: list[FakeSession] = []

    def __call__(self, endpoint, timeout_s):
        self.connects += 1
        if not self.up:
            raise ServiceUnavailable("Cassandra", "no host answered")
        self.sessions.append(FakeSession())
        return FakeCluster(), self.sessions[-1]


ENDPOINT = CassandraEndpoint(("127.0.0.1",), 9042, "dc1")


def test_connects_lazily_and_prepares_on_first_use():
    driver = Driver()
    store = Store(ENDPOINT, "ks", connect=driver)
    assert driver.connects == 0
    assert store.account("alice")["username"] == "alice"
    store.account("bob")
    assert driver.connects == 1 and len(driver.sessions[0].prepared) == 1
    assert "FROM ks.accounts_by_username" in driver.sessions[0].prepared[0]


def test_failed_connect_is_not_retried_at_once_then_recovers(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: clock[0])
    driver = Driver()
    driver.up = False
    store = Store(ENDPOINT, "ks", retry_s=5, connect=driver)
    with pytest.raises(DataUnavailable, match="cannot reach Cassandra"):
        store.account("alice")
    with pytest.raises(DataUnavailable, match="retrying shortly"):
        store.account("alice")
    assert driver.connects == 1
    driver.up, clock[0] = True, 106.0
    assert store.account("alice") is not None


def test_session_failing_for_long_is_rebuilt(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: clock[0])
    driver = Driver()
    store = Store(ENDPOINT, "ks", retry_s=0, connect=driver)
    store.account("alice")
    driver.sessions[0].fail = True
    for t in (1.0, 10.0, 30.0):
        clock[0] = t
        with pytest.raises(DataUnavailable, match="failed"):
            store.account("alice")
    clock[0] = 31.0
    assert store.account("alice") is not None
    assert driver.connects == 2


def test_a_forked_process_opens_its_own_session(monkeypatch):
    driver = Driver()
    store = Store(ENDPOINT, "ks", connect=driver)
    store.account("alice")
    monkeypatch.setattr(store_module.os, "getpid", lambda: -1)
    store.account("alice")
    assert driver.connects == 2


def test_own_rows_are_read_once_until_the_users_event_firm_views_for_their_ttl(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: clock[0])
    driver = Driver()
    store = Store(ENDPOINT, "ks", connect=driver)
    store.user_rows.clock = lambda: clock[0]
    store.shared.clock = lambda: clock[0]
    store.portfolio(7)
    store.portfolio(7)
    assert driver.sessions[0].executed.count((7,)) == 2  # the event reader is not assigned yet: no cache
    store.events_live(True)
    for _ in range(3):
        rows = store.portfolio(7)
        rows.append({"extra": 1})  # a caller's change to its list stays its own
    store.trades(7, "2026-12-07", 25)
    store.trades(7, "2026-12-07", 25)
    assert driver.sessions[0].executed.count((7,)) == 3
    assert driver.sessions[0].executed.count((7, "2026-12-07", 25)) == 1
    assert len(store.portfolio(7)) == 1
    store.changed([8])
    store.portfolio(7)
    assert driver.sessions[0].executed.count((7,)) == 3
    store.changed([7])
    store.portfolio(7)
    store.trades(7, "2026-12-07", 25)
    assert driver.sessions[0].executed.count((7,)) == 4
    assert driver.sessions[0].executed.count((7, "2026-12-07", 25)) == 2
    store.batches(5)
    store.batches(5)
    clock[0] = 101.5
    store.batches(5)
    assert driver.sessions[0].executed.count(("portfolio", 5)) == 2  # Q8 keyed (job, limit)


def test_marked_portfolio_is_redone_with_each_prices_snapshot_and_each_event(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: clock[0])
    driver = Driver()
    store = Store(ENDPOINT, "ks", prices_ttl_s=1.0, connect=driver)
    store.user_rows.clock = lambda: clock[0]
    store.events_live(True)
    marks = []

    def mark(rows, prices, as_of):
        marks.append(prices["AAPL"])
        return f"doc {prices['AAPL']}"

    first = store.marked(7, mark)
    assert store.marked(7, mark) == first and len(marks) == 1
    clock[0] = 101.2  # a new prices snapshot: marked again, from the cached rows
    second = store.marked(7, mark)
    assert second != first and len(marks) == 2
    assert driver.sessions[0].executed.count((7,)) == 1
    store.changed([7])
    store.marked(7, mark)
    assert len(marks) == 3 and driver.sessions[0].executed.count((7,)) == 2
