"""The market's clock from the latest price tick: today, the last complete day, "simulated"; and the
API's today following it (not the server's clock) across a simulated day boundary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.unit.webapp.conftest import NOW, TODAY, USER_A, login, portfolio_rows
from webapp.market import close_of, market_clock, previous_market_day

WALL = datetime(2026, 12, 7, 19, 34, tzinfo=UTC)  # Monday, 14:34 in New York


def test_the_clock_is_the_latest_tick_and_says_when_it_is_simulated():
    naive = datetime(2026, 12, 7, 14, 34, 9, tzinfo=UTC).replace(tzinfo=None)  # as the driver returns it
    clock = market_clock(naive, WALL)
    assert clock.now == datetime(2026, 12, 7, 14, 34, 9, tzinfo=UTC) and clock.day == date(2026, 12, 7)
    assert clock.simulated and clock.document()["behind_wall_clock_seconds"] == 5 * 3600 - 9
    assert not market_clock(WALL - timedelta(seconds=3), WALL).simulated  # a live feed, 3 s old
    fallback = market_clock(None, WALL)
    assert fallback.now == WALL and not fallback.simulated and fallback.document()["source"] == "wall_clock"


@pytest.mark.parametrize(("tick", "complete", "last"), [
    (datetime(2026, 12, 7, 14, 30, tzinfo=UTC), False, date(2026, 12, 4)),     # Monday's session: Friday
    (datetime(2026, 12, 7, 20, 59, 59, tzinfo=UTC), True, date(2026, 12, 7)),  # its last tick, 15:59:59
    (datetime(2026, 12, 8, 14, 30, tzinfo=UTC), False, date(2026, 12, 7)),     # Tuesday's open
    (datetime(2026, 7, 6, 19, 59, 58, tzinfo=UTC), False, date(2026, 7, 3)),   # summer: closes 20:00 UTC
    (datetime(2026, 7, 6, 19, 59, 59, tzinfo=UTC), True, date(2026, 7, 6)),
])
def test_the_last_complete_day(tick: datetime, complete: bool, last: date):
    clock = market_clock(tick, WALL)
    assert (clock.day_complete, clock.last_complete_day) == (complete, last)


def test_close_and_previous_day_follow_new_york_and_weekdays():
    assert close_of(date(2026, 12, 7)) == datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
    assert close_of(date(2026, 7, 6)) == datetime(2026, 7, 6, 20, 0, tzinfo=UTC)
    assert previous_market_day(date(2026, 12, 7)) == date(2026, 12, 4)
    assert previous_market_day(date(2026, 12, 8)) == date(2026, 12, 7)


def test_the_generators_session_closes_when_the_web_app_says(monkeypatch):
    """One session: the generator's last simulated second of a day is the web app's last tick."""
    from generator.clock import SESSION_SECONDS, SessionClock

    last = SessionClock(date(2026, 12, 7)).moment(SESSION_SECONDS - 1)
    assert not market_clock(last - timedelta(seconds=1), WALL).day_complete
    assert market_clock(last, WALL).day_complete
    assert SessionClock(date(2026, 12, 4)).moment(SESSION_SECONDS).date() == date(2026, 12, 7)


def test_the_api_clock(client, store):
    store.tick = NOW - timedelta(hours=5)
    assert client.get("/api/v1/market/clock").status_code == 401
    login(client, "alice")
    doc = client.get("/api/v1/market/clock").get_json()
    assert doc["now"] == "2026-11-20T10:30:05.000Z" and doc["day"] == "2026-11-20"
    assert doc["simulated"] is True and doc["source"] == "prices" and doc["last_complete_day"] == "2026-11-19"


def test_today_is_the_markets_day_across_a_simulated_day_boundary(as_alice, store):
    """The wall clock stays on Friday 2026-11-20; the simulated market moves on to Monday."""
    monday = date(2026, 11, 23)
    store.tick = datetime(2026, 11, 23, 14, 31, tzinfo=UTC)
    equity = as_alice.get("/api/v1/portfolio/equity").get_json()
    assert equity["day"] == monday.isoformat()
    store.calls.clear()
    as_alice.get("/api/v1/portfolio/trades")
    assert [c[2] for c in store.calls if c[0] == "trades"] == [monday, TODAY]  # then Friday, not Sunday


def test_day_pnl_of_a_user_idle_since_an_older_day(as_alice, store):
    """alice last traded on Friday; on Monday her open is Friday's close, read from Q5."""
    store.tick = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    store.close_map[TODAY] = {"AAPL": 158.0}
    doc = as_alice.get("/api/v1/portfolio").get_json()
    assert doc["as_of"] == "2026-11-23T15:00:00.000Z"
    assert doc["totals"]["equity"] == 10_000 + 1_600 and doc["totals"]["day_pnl"] == 20.0  # 10 x (160 - 158)
    assert ("previous_closes", TODAY, ("AAPL",)) in store.calls


def test_a_user_written_today_needs_no_close(as_alice, store):
    store.portfolios[USER_A] = portfolio_rows(USER_A, [("AAPL", 10, 150_000, 150.0)], cash=1_000_000)
    as_alice.get("/api/v1/portfolio")
    assert not [c for c in store.calls if c[0] == "previous_closes"]
