"""Which market day the nightly runs for, and whether a day has ended. Pure functions.

The market's time is read from the data, as the web app reads it: the event time of the latest price
tick the stream stored (Q4, `latest_price_by_market`). The generator simulates the 09:30-16:00 New
York session of its `--date` and the following weekdays, so that clock can be hours or days away from
the wall clock, and "yesterday" by the wall clock is usually no day of the archive at all.

A day is complete once the market's clock reached the last second of its session (16:00 New York).
Before that the stream holds trades the archive does not hold yet, and the views would cover part of
a day: the nightly refuses it. Without any tick (a keyspace the stream never wrote prices to) a day
counts as complete when the archive holds a later day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

from batch.settings import BatchError
from stockafolio.market_days import close_of, session_ended

_DAY_PREFIX = re.compile(r"(?:^|/)date=([0-9]{4}-[0-9]{2}-[0-9]{2})/?$")


def archived_days(prefixes: Iterable[str]) -> list[date]:
    """The days of `.../date=YYYY-MM-DD/` folder names (the archive's listing), oldest first."""
    found = set()
    for prefix in prefixes:
        match = _DAY_PREFIX.search(prefix)
        if match:
            try:
                found.add(date.fromisoformat(match.group(1)))
            except ValueError:
                continue
    return sorted(found)


def is_complete(day: date, market_now: datetime | None, archived: Iterable[date]) -> bool:
    if market_now is not None:
        return session_ended(day, market_now)
    return any(other > day for other in archived)


def last_complete_day(archived: list[date], market_now: datetime | None) -> date | None:
    return next((d for d in reversed(archived) if is_complete(d, market_now, archived)), None)


def _clock(market_now: datetime | None) -> str:
    if market_now is None:
        return "the market's clock is unknown (no price tick in latest_price_by_market)"
    return f"the market's clock (the latest price tick) reads {market_now:%Y-%m-%d %H:%M:%S} UTC"


def default_day(archived: list[date], market_now: datetime | None, where: str) -> date:
    """The last complete day of the archive, or an error that says why there is none and what to do."""
    day = last_complete_day(archived, market_now)
    if day is not None:
        return day
    if not archived:
        raise BatchError(f"no trades archived in {where} (start the pipeline with bin/stockafolio run, "
                         "or write a day with: python -m generator batch --date YYYY-MM-DD)")
    newest = archived[-1]
    raise BatchError(
        f"no complete market day in {where}: the newest, {newest}, has not ended ({_clock(market_now)}; "
        f"its session ends at {close_of(newest):%H:%M} UTC, 16:00 New York). Run the nightly after that; "
        f"or, if trading of {newest} is over (a generator run that stopped early), pass "
        f"--date {newest} --assume-complete")


def check_complete(day: date, market_now: datetime | None, archived: list[date], where: str) -> None:
    """Refuse a day still in progress (`--date` given by hand)."""
    if market_now is None or is_complete(day, market_now, archived):
        return
    done = last_complete_day(archived, market_now)
    instead = f"the last complete day archived is {done} (the default without --date)" if done else \
        "no archived day has ended yet"
    raise BatchError(
        f"{day} is still in progress: {_clock(market_now)}, before its close at {close_of(day):%H:%M} UTC "
        "(16:00 New York). Reconciling it now would count trades the stream applied that the archive "
        f"({where}) does not hold yet, and its views would cover part of a day. Run it after the close; "
        f"{instead}; pass --assume-complete only if trading of {day} is over (a generator run that "
        "stopped early)")
