"""Market days, as the generator simulates them: weekdays (exchange holidays are not modelled)."""

from __future__ import annotations

from datetime import date, timedelta


def previous_market_day(day: date) -> date:
    """The weekday before `day`."""
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day
