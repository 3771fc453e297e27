"""Socket.IO: who may connect, which room a socket lands in, and what the push tasks emit."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.unit.webapp.conftest import NOW, USER_A, USER_B, login
from webapp import accounts, sockets
from webapp.live import Coalescer, Pusher, socketio
from webapp.settings import SocketLimits

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
        if s.is_connected():
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


# ---------------------------------------------------------------- the gate in front of Engine.IO

WS = "/socket.io/?EIO=4&transport=websocket"


def test_anonymous_websocket_is_refused_before_engineio_sees_it(app, client, monkeypatch):
    """An Engine.IO socket used to open without a session (only the namespace connect checked it)
    and hold a worker thread for as long as it stayed idle."""
    reached = []
    gate = app.wsgi_app
    monkeypatch.setattr(gate, "inner", lambda environ, start: reached.append(environ) or [])
    for path in (WS, "/socket.io/", "/socket.io/?EIO=4&transport=polling&sid=x"):
        r = client.get(path, headers={"Connection": "Upgrade", "Upgrade": "websocket", **ORIGIN})
        assert r.status_code == 401, path
    assert reached == []


def test_a_logged_in_socket_from_a_foreign_origin_is_refused_at_the_gate(app, as_alice):
    assert as_alice.get(WS, headers={"Origin": "https://evil.example"}).status_code == 403


def test_sockets_are_capped_per_account_per_address_and_per_process(app, as_alice):
    open_ = app.extensions["stockafolio.sockets"]
    for _ in range(open_.limits.per_account):
        assert open_.admit("alice", "10.0.0.1") is None
    assert as_alice.get(WS, headers=ORIGIN).status_code == 429  # alice's sixth socket
    limits = SocketLimits(per_account=2, per_address=3, total=4)
    counts = sockets.OpenSockets(limits)
    assert [counts.admit(a, "1.1.1.1") for a in ("a", "a", "b")] == [None, None, None]
    assert "per account" in counts.admit("a", "2.2.2.2")
    assert "per address" in counts.admit("c", "1.1.1.1")
    assert counts.admit("c", "2.2.2.2") is None
    assert "as many live connections" in counts.admit("d", "3.3.3.3")
    counts.release("a", "1.1.1.1")
    assert counts.admit("a", "2.2.2.2") is None and counts.total == 4


def test_the_gate_counts_a_socket_until_it_closes(app, as_alice, monkeypatch):
    open_ = app.extensions["stockafolio.sockets"]
    seen = []

    def inner(environ, start_response):
        seen.append(open_.total)
        start_response("200 OK", [])
        return []
    monkeypatch.setattr(app.wsgi_app, "inner", inner)
    as_alice.get(WS, headers=ORIGIN)
    assert seen == [1] and open_.total == 0 and not open_.accounts


def test_open_sockets_of_an_ended_session_are_closed(app, store, two_users, monkeypatch):
    """A logout elsewhere (another process: only Cassandra knows) closes the sockets of that account."""
    import webapp.live as live

    accounts.end_sessions(store, "alice")
    pusher = Pusher(store, lambda: NOW, socketio)
    pusher.rechecked_at = -1e18
    with app.app_context():
        pusher.recheck_sessions()
    assert not two_users["alice"].is_connected()
    assert two_users["bob"].is_connected() and two_users["analyst"].is_connected()
    assert len(live.SESSIONS.ended(store)) == 0


# ---------------------------------------------------------------- malformed packets


@pytest.mark.parametrize("packet", ["42[", "451-[", "2[\"x\"", "4{", "0/nope,{"])
def test_a_malformed_packet_closes_its_socket_with_one_log_line(app, packet, caplog, monkeypatch):
    """Each `42[` on a socket used to write a full traceback to the log and leave the socket open."""
    monkeypatch.setattr(sockets, "MALFORMED", sockets.RateLimitedLog(sockets.LOG, 60.0))
    closed = []
    monkeypatch.setattr(socketio.server.eio, "disconnect", lambda sid: closed.append(sid))
    handle = socketio.server.eio.handlers["message"]
    with caplog.at_level(logging.INFO):
        for _ in range(50):
            handle("eio-sid", packet)
    assert closed == ["eio-sid"] * 50
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None and "Traceback" not in caplog.text
    assert "malformed Socket.IO packet" in lines[0].getMessage()


def test_the_malformed_packet_log_is_one_line_a_minute_with_a_count():
    now = [0.0]
    messages = []

    class Logger:
        def warning(self, message, *args):
            messages.append(message % args)

    log = sockets.RateLimitedLog(Logger(), 60.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert [log.warning("bad %s", i) for i in range(3)] == [True, False, False]
    now[0] = 61.0
    assert log.warning("bad %s", 9)
    assert messages == ["bad 0 (0 more since the last such line)", "bad 9 (2 more since the last such line)"]


def test_pushes_follow_the_markets_clock_not_the_servers(app, store, two_users):
    """The wall clock reads 5 h later than the simulated market: the firm event carries the market's
    time and day, and bob's day P&L counts from Friday's close once the market is on Monday."""
    wall = NOW + timedelta(hours=5)
    store.tick = datetime(2026, 11, 23, 14, 40, tzinfo=UTC)
    store.close_map[date(2026, 11, 20)] = {"MSFT": 400.0}
    pusher = Pusher(store, lambda: wall, socketio)
    with app.app_context():
        pusher.market_tick()
        pusher.offer_event(b'{"user_id": %d, "last_batch_id": 7}' % USER_B)
        pusher.portfolio_tick()
    firm = [e["args"][0] for e in two_users["analyst"].get_received() if e["name"] == "firm"]
    assert firm[0]["as_of"] == "2026-11-23T14:40:00.000Z" and firm[0]["day"] == "2026-11-23"
    assert ("firm_activity", date(2026, 11, 23)) in store.calls
    (push,) = [e["args"][0] for e in two_users["bob"].get_received() if e["name"] == "portfolio"]
    assert push["as_of"] == "2026-11-23T14:40:00.000Z" and push["totals"]["day_pnl"] == 5 * (410.0 - 400.0)
