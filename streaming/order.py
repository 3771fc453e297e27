"""Trade order per user: which valid trades of a micro-batch are new, which are replays of trades the
stream already processed, and which arrive out of order.

The accounting applies a user's trades in trade-id order and keeps, per user and per position, the id
of the last trade applied (its replay guards). That is exactly once only while a user's ids rise in the
order Kafka delivers them; a trade that arrives below the guard would otherwise be skipped for good,
silently. So each user's statics also keep where the stream last read that user in Kafka
(`last_partition`, `last_offset`: a user's trades are keyed by user id, so they all sit in one
partition, in order). A trade of the batch, taken in offset order, is then:

- a **replay** when the stored (partition, offset) is at or past it and its id is at or below the
  user's guard: a micro-batch run again after a crash, or the topic read again from a new checkpoint.
  It goes on to the accounting, whose guards skip it (or apply it to a position a crashed attempt did
  not write), as before;
- **duplicate** when it is new and its id equals one already taken for the user (the stored guard or
  an earlier trade of the batch), and **out_of_order** when its id is below that: a dead letter each,
  never applied, never dropped silently;
- **new** otherwise: ids above everything taken before, so the accounting applies it in full.

A user's statics are written after every other row of the user (`store.PortfolioWriter`), so a stored
offset means everything up to it was written: a replay finds each position either written (its guard
skips the trade) or not (the trade is applied to it). Users stored before these columns existed have
no offset: their trades at or below the guard count as replays, the old rule, so a job restarted on
an older release's checkpoint re-runs its last batch without false dead letters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockafolio.accounting import exact_ints, lookup

NEW, REPLAY, DUPLICATE, OUT_OF_ORDER = range(4)


def classify(trades: pd.DataFrame, guards: pd.DataFrame) -> np.ndarray:
    """NEW, REPLAY, DUPLICATE or OUT_OF_ORDER for each row of `trades` (user_id, trade_id, partition,
    offset), given each user's stored `guards` (user_id, cash_last_trade_id, last_partition,
    last_offset; a user without a row has seen nothing)."""
    n = len(trades)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    users = trades["user_id"].to_numpy(dtype=np.int64)
    ids = trades["trade_id"].to_numpy(dtype=np.int64)
    stored = guards.drop_duplicates("user_id")
    known = stored["user_id"].to_numpy(dtype=np.int64)
    guard = lookup(known, exact_ints(stored["cash_last_trade_id"]), users)
    partition = lookup(known, exact_ints(stored["last_partition"], missing=-1), users, default=-1)
    offset = lookup(known, exact_ints(stored["last_offset"], missing=-1), users, default=-1)
    legacy = (pd.Index(known).get_indexer(users) >= 0) & (offset < 0)  # stored before offsets existed
    read = (partition == trades["partition"].to_numpy()) & (trades["offset"].to_numpy() <= offset)
    seen = (ids <= guard) & (read | legacy)
    result = np.where(seen, REPLAY, NEW).astype(np.int8)
    order = np.lexsort((trades["offset"].to_numpy(), trades["partition"].to_numpy(), users))
    _order_within_users(order, users, ids, guard, seen, result)
    return result


def _order_within_users(order: np.ndarray, users: np.ndarray, ids: np.ndarray, guard: np.ndarray,
                        seen: np.ndarray, result: np.ndarray) -> None:
    """Walk each user's unseen trades in offset order: a trade is new when its id rises above the guard
    and above every unseen id before it. (Taking the earlier rejected ids into that maximum changes
    nothing: a rejected id is at or below the maximum of its own time.)"""
    u, i, g, s = users[order], ids[order], guard[order], seen[order]
    starts = np.r_[True, u[1:] != u[:-1]]
    taken = np.where(s, np.iinfo(np.int64).min, i)  # replays take no id
    ceiling = np.maximum(_earlier_max(taken, starts), g)
    below = ~s & (i <= ceiling)
    if not below.any():
        return
    duplicate = below & _equals_earlier(i, starts, ~s & ~below, g)
    result[order] = np.where(below, np.where(duplicate, DUPLICATE, OUT_OF_ORDER), result[order])


def _earlier_max(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For each row, the maximum of the values of the earlier rows of its run (int64 min at a start)."""
    group = np.cumsum(starts) - 1
    shifted = np.r_[np.iinfo(np.int64).min, values[:-1]]
    shifted[starts] = np.iinfo(np.int64).min
    return pd.Series(shifted).groupby(group).cummax().to_numpy(dtype=np.int64)


def _equals_earlier(ids: np.ndarray, starts: np.ndarray, taken: np.ndarray, guard: np.ndarray) -> np.ndarray:
    """True where the id equals the user's guard or an id taken earlier in the batch."""
    group = np.cumsum(starts) - 1
    pairs = pd.DataFrame({"group": group, "id": ids, "row": np.arange(len(ids))})
    first_taken = pairs[taken].drop_duplicates(["group", "id"]).set_index(["group", "id"])["row"]
    earlier = first_taken.reindex(pd.MultiIndex.from_arrays([group, ids])).to_numpy(dtype=np.float64)
    return (ids == guard) | (earlier < np.arange(len(ids)))
