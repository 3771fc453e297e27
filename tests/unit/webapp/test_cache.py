"""The web app's read caches: a user's rows until their next event (or the TTL), never a read that an
invalidation overtook; the shared firm views for their TTL."""

from __future__ import annotations

import threading

from webapp.cache import Shared, UserRows


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def loader(values: list):
    calls = []

    def load():
        calls.append(1)
        return values[len(calls) - 1]
    return load, calls


def test_off_until_enabled_then_served_until_invalidated():
    cache = UserRows(ttl_s=10, clock=Clock())
    load, calls = loader(["a", "b", "c", "d"])
    assert cache.get(1, "q", load) == "a" and cache.get(1, "q", load) == "b"  # not enabled: every read loads
    cache.enable(True)
    assert [cache.get(1, "q", load) for _ in range(3)] == ["c", "c", "c"]
    cache.invalidate([2])  # another user's event changes nothing here
    assert cache.get(1, "q", load) == "c"
    cache.invalidate([1])
    assert cache.get(1, "q", load) == "d" and len(calls) == 4
    assert cache.stats() == {"users": 1, "hits": 3, "misses": 2, "invalidations": 1, "enabled": 1}


def test_entries_expire_after_ttl_and_a_new_version_replaces_the_old():
    clock = Clock()
    cache = UserRows(ttl_s=10, clock=clock)
    cache.enable(True)
    load, calls = loader(["a", "b", "c", "d"])
    assert cache.get(1, "q", load) == "a"
    clock.now += 9.9
    assert cache.get(1, "q", load) == "a"
    clock.now += 0.2
    assert cache.get(1, "q", load) == "b"
    assert cache.get(1, "q", load, version=2) == "c"  # same slot, other version: a miss ...
    assert cache.get(1, "q", load, version=2) == "c"
    assert cache.get(1, "q", load) == "d"            # ... which replaced the unversioned value
    assert len(calls) == 4


def test_a_read_overtaken_by_an_invalidation_is_not_kept():
    cache = UserRows(ttl_s=10, clock=Clock())
    cache.enable(True)
    reading, release = threading.Event(), threading.Event()

    def slow_old_read():
        reading.set()
        release.wait(5)
        return "old"

    got = []
    t = threading.Thread(target=lambda: got.append(cache.get(1, "q", slow_old_read)))
    t.start()
    assert reading.wait(5)
    cache.invalidate([1])  # the stream wrote and published while the read was in flight
    release.set()
    t.join(5)
    assert got == ["old"]  # that request gets what it read ...
    assert cache.get(1, "q", lambda: "new") == "new"  # ... but the next one reads again


def test_least_recently_used_users_are_evicted_and_disable_empties():
    cache = UserRows(max_users=2, ttl_s=10, clock=Clock())
    cache.enable(True)
    for user in (1, 2):
        cache.get(user, "q", lambda u=user: f"v{u}")
    assert cache.get(1, "q", lambda: "reloaded") == "v1"   # a hit: 1 is now the most recent
    cache.get(3, "q", lambda: "v3")                         # evicts 2, the least recent
    assert cache.get(1, "q", lambda: "x") == "v1"           # kept (and most recent again)
    assert cache.get(2, "q", lambda: "again") == "again"    # 2 was gone; re-added, evicting 3
    assert cache.get(3, "q", lambda: "v3 again") == "v3 again"
    assert cache.stats()["users"] == 2
    cache.enable(False)
    assert cache.stats()["users"] == 0
    assert cache.get(1, "q", lambda: "direct") == "direct"


def test_zero_users_means_no_cache():
    cache = UserRows(max_users=0, clock=Clock())
    cache.enable(True)
    load, calls = loader(["a", "b"])
    assert [cache.get(1, "q", load), cache.get(1, "q", load)] == ["a", "b"]


def test_shared_values_live_for_their_ttl():
    clock = Clock()
    shared = Shared(ttl_s=1.0, clock=clock)
    load, calls = loader(["a", "b", "c"])
    assert shared.get("k", load) == "a" and shared.get("k", load) == "a"
    clock.now += 1.0
    assert shared.get("k", load) == "b"
    assert Shared(ttl_s=0, clock=clock).get("k", lambda: "fresh") == "fresh"
    assert len(calls) == 2


def test_a_user_holds_a_bounded_number_of_keys_least_recently_used_evicted():
    """Each `?day=` was a new entry with no cap (100,000 days: 25 MB for one user in one process)."""
    cache = UserRows(ttl_s=10, clock=Clock(), max_keys=4)
    cache.enable(True)
    for day in range(1000):
        cache.get(1, ("equity", day), lambda day=day: [day] * 10)
    assert len(cache._users[1]) == 4
    load, calls = loader(["again"])
    cache.get(1, ("equity", 999), load)  # still held: no read
    assert calls == []
    cache.get(1, ("equity", 0), load)    # long evicted: read again
    assert calls == [1]


def test_walking_the_calendar_through_the_api_keeps_the_cache_bounded(monkeypatch):
    """The real store behind the API, its Cassandra reads faked: 300 distinct `?day=` for one user."""
    from datetime import date, timedelta

    from tests.unit.webapp.conftest import PASSWORD, FakeStore, login
    from webapp import create_app
    from webapp.settings import WebSettings
    from webapp.store import Store

    accounts = FakeStore()
    store = Store(None, "ks")  # type: ignore[arg-type]  # never connects: _run is faked
    store.user_rows.enable(True)
    monkeypatch.setattr(store, "_run", lambda name, *params: [])
    for name in ("account", "session_state", "login_failures", "note_login_failure", "end_sessions"):
        monkeypatch.setattr(store, name, getattr(accounts, name))
    app = create_app(WebSettings(secret_key="k", testing=True, live_tasks=False), store=store)
    with app.test_client() as c:
        assert login(c, "alice", PASSWORD).status_code == 302
        for back in range(300):
            day = date(2026, 11, 20) - timedelta(days=back)
            assert c.get(f"/api/v1/portfolio/equity?day={day}").status_code == 200
    assert sum(len(keys) for keys in store.user_rows._users.values()) <= store.user_rows.max_keys
