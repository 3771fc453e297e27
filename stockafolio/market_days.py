"""Market days and their session, as the generator simulates them: weekdays (exchange holidays are not
modelled), the regular session ending at 16:00 New York time. The web app's clock and the nightly's
choice of day both read these."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
CLOSE = time(16, 0)          # the regular session ends at 16:00 New York time
TICK = timedelta(seconds=1)  # a tick stamps the start of its second: the last one of a day is 15:59:59


def previous_market_day(day: date) -> date:
    """The weekday before `day`."""
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def close_of(day: date) -> datetime:
    """The end of `day`'s session, aware UTC (16:00 New York; daylight saving handled)."""
    return datetime.combine(day, CLOSE, tzinfo=NEW_YORK).astimezone(UTC)


def session_ended(day: date, now: datetime) -> bool:
    """Whether a clock reading `now` (aware) has reached the last tick of `day`'s session."""
    return now + TICK >= close_of(day)
