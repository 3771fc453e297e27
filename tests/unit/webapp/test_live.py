"""Socket.IO: who may connect, which room a socket lands in, and what the push tasks emit."""

from __future__ import annotations

import pytest

from tests.unit.webapp.conftest import NOW, USER_A, USER_B, login
from webapp.live import Coalescer, Pusher, socketio

ORIGIN = {"Origin": "http://127.0.0.1:8000"}


def socket(app, client, headers=ORIGIN):
    return socketio.test_client(app, flask_test_client=client, headers=headers)


def test_anonymous_socket_is_refused(app, client):
    sock = socket(app, client)
    assert not sock.is_connected()


def test_foreign_origin_is_refused(app, as_alice):
    assert not socket(app, as_alice, {"Origin": "https://evil.example"}).is_connected()
    assert socket(app, as_alice).is_connected()


@pytest.fixture()
def two_users(app):
    """alice's and bob's sockets, plus the analyst's, each with its own login."""
    socks = {}
    for name in ("alice", "bob", "analyst"):
        c = app.test_client()
        assert login(c, name).status_code == 302
        socks[name] = socket(app, c)
        assert socks[name].is_connected()
    yield socks
    for s in socks.values():
        s.disconnect()


def test_portfolio_push_reaches_only_its_user(app, store, two_users):
    pusher = Pusher(store, lambda: NOW, socketio)
    with app.app_context():
        pusher.offer_event(b'{"user_id": %d, "last_batch_id": 7}' % USER_B)
        pusher.offer_event(b'{"user_id": 424242, "last_batch_id": 7}')  # nobody here watches 424242
        pusher.offer_event(b"not json")
        pusher.portfolio_tick()
    bob = two_users["bob"].get_received()
    assert [e["name"] for e in bob] == ["portfolio"]
    event = bob[0]["args"][0]
    assert event["user_id"] == USER_B and event["last_batch_id"] == 7
    assert event["totals"]["market_value"] == 5 * 410.0
    assert set(event["risk"]) >= {"var_95", "var_99", "beta", "sector_weights"}
    assert two_users["alice"].get_received() == []
    assert two_users["analyst"].get_received() == []
    assert ("portfolio", 424242) not in store.calls  # no Cassandra read for users watched elsewhere


def test_client_messages_cannot_change_the_room(app, store, two_users):
    alice = two_users["alice"]
    alice.emit("join", {"room": f"user:{USER_B}"})
    alice.emit("subscribe", f"user:{USER_B}")
    pusher = Pusher(store, lambda: NOW, socketio)
    with app.app_context():
        pusher.offer_event(b'{"user_id": %d, "last_batch_id": 8}' % USER_B)
        pusher.portfolio_tick()
    assert alice.get_received() == []


def test_prices_go_to_everyone_only_when_changed_and_firm_to_the_firm(app, store, two_users):
    pusher = Pusher(store, lambda: NOW, socketio)
    with app.app_context():
        pusher.market_tick()
        store.price_map["AAPL"] = 161.0
        store._prices_cache = None
        pusher.market_tick()
    alice = [e for e in two_users["alice"].get_received()]
    assert [e["name"] for e in alice] == ["prices", "prices"]
    assert alice[0]["args"][0]["prices"] == {"AAPL": 160.0, "MSFT": 410.0}
    assert alice[1]["args"][0]["prices"] == {"AAPL": 161.0}
    firm = [e for e in two_users["analyst"].get_received() if e["name"] == "firm"]
    assert len(firm) == 1  # unchanged minute and batch: not sent again
    assert firm[0]["args"][0]["minute"]["trades"] == 30 and firm[0]["args"][0]["health"]["batch_id"] == 7


def test_coalescer_sends_at_most_once_per_period_newest_wins():
    now = [0.0]
    c = Coalescer(1.0, clock=lambda: now[0])
    c.offer(USER_A, 1)
    assert c.due() == [(USER_A, 1)]
    c.offer(USER_A, 2)
    c.offer(USER_A, 3)
    now[0] = 0.5
    assert c.due() == []
    now[0] = 1.0
    assert c.due() == [(USER_A, 3)]
    assert c.due() == []


def test_every_event_drops_its_users_cached_rows_watched_or_not(app, store, two_users):
    pusher = Pusher(store, lambda: NOW, socketio)
    with app.app_context():
        pusher.offer_events([(str(USER_B).encode(), b'{"user_id": %d, "last_batch_id": 9}' % USER_B),
                             (b"424242", b"{}"),                               # keyed: body not needed
                             (None, b'{"user_id": 31337, "last_batch_id": 9}'),  # unkeyed: the body's id
                             (b"junk", b"not json")])                          # neither: skipped
        pusher.portfolio_tick()
    assert store.changed_users == [USER_B, 424242, 31337]
    bob = two_users["bob"].get_received()
    assert [e["name"] for e in bob] == ["portfolio"] and bob[0]["args"][0]["user_id"] == USER_B
