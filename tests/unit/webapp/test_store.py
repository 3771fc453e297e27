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

    def execution_profile_clone_update(self, *args, **kwargs):
        return object()

    def prepare(self, cql: str) -> str:
        self.prepared.append(cql)
        return cql

    def execute(self, statement, params, execution_profile=None):
        if self.fail:
            raise NoHostAvailable("down", {})
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
