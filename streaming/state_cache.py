"""A write-through cache of the stored state of recently touched users, in the job's driver.

Every micro-batch needs the `portfolio_by_user` partition of each user it touches (their holdings,
cash, guards and day opening). The job is the only writer of those partitions while it runs, so what
it wrote last is what Cassandra holds: the cache keeps, per user, the rows exactly as a read would
return them (`store.PRIOR_COLUMNS` tuples), taken from the batch's own result once its writes were
acknowledged. A batch then reads from Cassandra only the users it has not seen since the job
started (or since they fell out of the cache): the generator's activity is Zipf-like, so most trades
come from users who traded a moment ago.

Cassandra stays authoritative and the replay guards stay in its rows: the cache only saves the read.
It is emptied when a batch fails (the next batch reads again), and it starts empty with every job
process, so exactly once is the same as without it. What it assumes: nothing else writes a user's
partition while the job runs (the nightly `--repair` is meant for a stopped stream; see batch/README).
Least recently used users leave once it holds `capacity` users.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import pandas as pd

from streaming.store import PRIOR_COLUMNS, plain

Row = tuple  # PRIOR_COLUMNS values, as the Cassandra driver returns them


class StateCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.users: OrderedDict[int, list[Row]] = OrderedDict()
        self.hits = self.misses = 0

    def split(self, users: Iterable[int]) -> tuple[list[Row], list[int]]:
        """(the cached rows of `users`, the users not cached), counting hits and misses."""
        rows: list[Row] = []
        missing: list[int] = []
        users = list(users)
        for user in users:
            cached = self.users.get(user)
            if cached is None:
                missing.append(user)
            else:
                self.users.move_to_end(user)
                rows.extend(cached)
        self.hits += len(users) - len(missing)
        self.misses += len(missing)
        return rows, missing

    def remember(self, portfolio: pd.DataFrame) -> None:
        """Every row of the touched users after a batch whose writes were all acknowledged (the
        `state.BatchRows.portfolio` frame: every holding of each touched user with their statics)."""
        if self.capacity <= 0 or portfolio.empty:
            return
        for user, rows in _rows_by_user(portfolio).items():
            self.users[user] = rows
            self.users.move_to_end(user)
        while len(self.users) > self.capacity:
            self.users.popitem(last=False)

    def clear(self) -> None:
        self.users.clear()


def _rows_by_user(portfolio: pd.DataFrame) -> dict[int, list[Row]]:
    """PRIOR_COLUMNS tuples per user in the driver's types: ints, naive UTC datetimes, dates (None for
    null), built a column at a time (`store.plain`)."""
    times = portfolio["last_trade_time"]
    if not isinstance(times.dtype, pd.DatetimeTZDtype) and times.dtype.kind != "M":
        times = pd.to_datetime(times, utc=True)
    columns = [plain(times if name == "last_trade_time" else portfolio[name]) for name in PRIOR_COLUMNS]
    by_user: dict[int, list[Row]] = {}
    for row in zip(*columns, strict=True):
        by_user.setdefault(row[0], []).append(row)
    return by_user
