"""Simulated session time and pacing, with an injected clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from generator.clock import SESSION_SECONDS, Pacer, SessionClock, open_ms, session_day


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_open_follows_new_york_daylight_saving() -> None:
    assert _utc(open_ms(date(2026, 7, 1))) == datetime(2026, 7, 1, 13, 30, tzinfo=UTC)
    assert _utc(open_ms(date(2026, 11, 20))) == datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def test_sessions_skip_weekends() -> None:
    assert session_day(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Friday -> Monday
    assert session_day(date(2026, 11, 22), 0) == date(2026, 11, 23)  # a Sunday start moves on


def test_seconds_map_into_consecutive_sessions() -> None:
    clock = SessionClock(date(2026, 11, 20))
    ms = clock.second_ms(np.array([0, SESSION_SECONDS - 1, SESSION_SECONDS]))
    assert _utc(int(ms[1])) == datetime(2026, 11, 20, 20, 59, 59, tzinfo=UTC)  # 15:59:59 New York
    assert _utc(int(ms[2])) == datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    assert clock.label(1) == "2026-11-20 09:30:01"


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_pacer_holds_the_simulated_speed() -> None:
    fake = FakeTime()
    pacer = Pacer(speed=10, now=fake.now, sleep=fake.sleep)
    for second in range(0, 100, 5):
        while not pacer.wait_for(second):
            pass
    assert fake.t - 100 == 9.5  # second 95 at 10 simulated seconds per wall second
    assert pacer.wait_for(10)  # behind schedule: due at once
