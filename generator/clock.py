"""Simulated time: the regular NYSE session, 09:30-16:00 America/New_York, one tick per second.

Simulated second `k` of a run is second `k % SESSION_SECONDS` of trading day `k // SESSION_SECONDS`,
where day 0 is the start date and later days are the following weekdays (exchange holidays are not
modelled). Everything here is pure: the wall clock is only used by `Pacer`, which is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
OPEN = (9, 30)
SESSION_SECONDS = 6 * 3600 + 30 * 60  # 09:30 -> 16:00


def next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def session_day(start: date, day_index: int) -> date:
    """The `day_index`-th trading day from `start` (a weekend start moves to the Monday)."""
    day = start if start.weekday() < 5 else next_weekday(start)
    for _ in range(day_index):
        day = next_weekday(day)
    return day


def open_ms(day: date) -> int:
    """Epoch milliseconds (UTC) of 09:30 New York time on `day` (daylight saving handled)."""
    local = datetime(day.year, day.month, day.day, *OPEN, tzinfo=NEW_YORK)
    return int(local.astimezone(UTC).timestamp()) * 1000


@dataclass(frozen=True)
class SessionClock:
    """Maps simulated second indexes of a run to UTC epoch milliseconds."""

    start: date

    def second_ms(self, seconds: np.ndarray) -> np.ndarray:
        """Epoch ms of the start of each simulated second in `seconds` (int64 array)."""
        seconds = np.asarray(seconds, dtype=np.int64)
        days = seconds // SESSION_SECONDS
        last_day = int(days.max(initial=0))
        opens = np.array([open_ms(session_day(self.start, d)) for d in range(last_day + 1)], dtype=np.int64)
        return opens[days] + (seconds % SESSION_SECONDS) * 1000

    def moment(self, second: int) -> datetime:
        """Aware UTC datetime of simulated second `second`."""
        return datetime.fromtimestamp(int(self.second_ms(np.array([second]))[0]) / 1000, tz=UTC)

    def label(self, second: int) -> str:
        """'2026-11-20 09:30:12' in New York time, for the progress line."""
        return f"{self.moment(second).astimezone(NEW_YORK):%Y-%m-%d %H:%M:%S}"


def today_in_new_york(now: Callable[[], float] = time.time) -> date:
    return datetime.fromtimestamp(now(), tz=NEW_YORK).date()


class Pacer:
    """Holds a live run to `speed` simulated seconds per wall second. `now` and `sleep` are injected
    (`time.monotonic` and `time.sleep` by default) so tests can drive it without waiting."""

    def __init__(self, speed: float, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed, self._now, self._sleep = speed, now, sleep
        self.started = now()

    def due(self, second: int) -> float:
        """Wall time (on the injected clock) when simulated second `second` is due."""
        return self.started + second / self.speed

    def wait_for(self, second: int, max_wait: float = 0.05) -> bool:
        """Sleep (at most `max_wait`) toward `second`'s due time; True once it is due."""
        ahead = self.due(second) - self._now()
        if ahead <= 0:
            return True
        self._sleep(min(ahead, max_wait))
        return ahead <= max_wait

    def elapsed(self) -> float:
        return self._now() - self.started
