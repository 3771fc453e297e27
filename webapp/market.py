"""The market's clock, read from the data: the event time of the latest price tick (Q4), not the
server's clock. The generator runs on simulated time (a 09:30-16:00 New York session of its `--date`,
the following weekdays after it, at `--speed`), so the market's "now" and "today" can be hours or days
away from the wall clock; every "today" of the web app is this one. Pure functions.

A market day is a UTC day, as the stream's tables key them (the New York session, 13:30-21:00 UTC
at the latest, lies inside one UTC day). Days are weekdays; exchange holidays are not modelled (as in
the generator)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stockafolio.market_days import (  # noqa: F401 (close_of: this module's API)
    close_of,
    previous_market_day,
    session_ended,
)

SIMULATED_AFTER = timedelta(minutes=2)  # further from the wall clock than this: a simulated clock


def utc(moment: datetime) -> datetime:
    """Aware UTC (the driver returns naive UTC datetimes)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class MarketClock:
    """`now`: the market's time (the latest tick; the wall clock when no tick was ever seen)."""

    now: datetime
    wall: datetime
    from_prices: bool

    @property
    def day(self) -> date:
        """The market's today: the UTC day of its time."""
        return self.now.date()

    @property
    def simulated(self) -> bool:
        """The market's time is not the wall clock (a simulated session, or a feed that stopped)."""
        return self.from_prices and abs(self.now - self.wall) > SIMULATED_AFTER

    @property
    def day_complete(self) -> bool:
        """Today's session has ended (its last tick was seen)."""
        return self.now.weekday() >= 5 or session_ended(self.day, self.now)

    @property
    def last_complete_day(self) -> date:
        """The latest market day whose session has ended: the one the nightly batch can have run for."""
        return self.day if self.day_complete and self.now.weekday() < 5 else previous_market_day(self.day)

    def document(self) -> dict[str, Any]:
        """The /api/v1/market/clock body."""
        from webapp.valuation import iso

        return {"now": iso(self.now), "day": self.day.isoformat(), "source": "prices" if self.from_prices
                else "wall_clock", "simulated": self.simulated, "wall_clock": iso(self.wall),
                "behind_wall_clock_seconds": round((self.wall - self.now).total_seconds()),
                "day_complete": self.day_complete, "last_complete_day": self.last_complete_day.isoformat()}


def market_clock(latest_tick: datetime | None, wall: datetime) -> MarketClock:
    """The market's clock from the latest price tick's event time (None: no tick yet, the wall clock)."""
    wall = utc(wall)
    if latest_tick is None:
        return MarketClock(wall, wall, False)
    return MarketClock(utc(latest_tick), wall, True)
