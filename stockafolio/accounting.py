"""Holdings accounting: apply one micro-batch of trades onto the prior absolute state, vectorised.

Money is integer cents (int64) everywhere in the state, so the stream and the nightly reconciliation
get the same numbers to the cent whatever order they add them in:

- a price is USD rounded to the cent on the wire, so `price_cents = rint(price * 100)` is exact;
- cash moves by `quantity * price_cents` per trade (a sum of integers, order-free);
- a position carries its *cost basis* in cents (`quantity * average cost`), not the average itself.
  Average-cost method: a trade that opens or adds to a position adds `quantity * price_cents` to the
  basis; a trade that reduces it removes the closed share of the basis, `basis * closed / |quantity|`
  rounded half away from zero to the cent, and realizes `closed * price_cents * sign(position)` minus
  that removed basis. Closing to zero therefore removes the whole basis (average cost resets to 0), and
  a trade larger than the position closes it and opens the rest on the other side (shorts allowed).
  `avg_cost = cost_basis_cents / quantity / 100` is derived for display only.

Replay guard: each (user, symbol) keeps the id of the last trade applied to it, and each user the id of
the last trade applied to their cash; a trade whose id is not above the guard is skipped (for that
position, or for the cash), and duplicate ids inside a batch count once. The two guards agree whenever
the state was written whole; they differ only after a crash that wrote a user's cash and some of their
holdings rows, and then each applies exactly the trades it has not seen. Trade ids increase within and across
generator runs (see `stockafolio.records`), so applying the same Kafka range twice changes nothing and
two consecutive batches give exactly what one batch of their union gives. Duplicates are
recognised by the pair (user, trade id), so two users' trades that share an id both count.

Vectorisation: the path-dependent part (the basis after a partial sell depends on every earlier trade
of the same position) is computed "by wavefront": trades are ranked within their (user, symbol) group by
trade id, and one numpy step applies the k-th trade of every group at once. The loop runs as many times
as the busiest position has trades in the batch (a handful at 40k trades spread over many users), not
once per trade; `bench` figures are in `streaming/README.md`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

import numpy as np
import pandas as pd

from stockafolio.errors import StockafolioError

KEY = ["user_id", "symbol"]
TRADE_COLUMNS = ["trade_id", "user_id", "symbol", "side", "quantity", "price", "event_time"]
HOLDING_COLUMNS = ["user_id", "symbol", "quantity", "cost_basis_cents", "realized_pnl_cents",
                   "last_trade_id", "last_trade_time"]
CASH_COLUMNS = ["user_id", "cash_cents", "cash_last_trade_id"]
# |basis * closed| below 2**62: the doubled numerator of the rounding fits in int64 (else exact ints).
_PRODUCT_LIMIT = 1 << 62
# A new user's cash: one amount for all, or a function of the user ids (`stockafolio.cash`).
Opening = int | Callable[[np.ndarray], np.ndarray]


class AccountingError(StockafolioError):
    """A batch or a prior state cannot be applied (missing columns, bad side, overflow)."""


@dataclass(frozen=True)
class BatchResult:
    """The new absolute state of everything a batch touched.

    `holdings`: one row per touched (user, symbol) with HOLDING_COLUMNS plus `avg_cost` (dollars).
    `cash`: one row per user whose cash moved, CASH_COLUMNS.
    `applied`: the trades that passed the replay guard, sorted by trade id, with `price_cents`.
    """

    holdings: pd.DataFrame
    cash: pd.DataFrame
    applied: pd.DataFrame


def empty_holdings() -> pd.DataFrame:
    """A prior state with no positions (the right dtypes, zero rows)."""
    return pd.DataFrame({
        "user_id": pd.Series(dtype="int64"), "symbol": pd.Series(dtype="object"),
        **{c: pd.Series(dtype="int64") for c in HOLDING_COLUMNS[2:6]},
        "last_trade_time": pd.Series(dtype="datetime64[ms, UTC]"),
    })


def empty_cash() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64") for c in CASH_COLUMNS})


def opening_cash(users: np.ndarray | pd.Index, opening: Opening) -> np.ndarray:
    """The opening cash (int64 cents) of each of `users`."""
    users = np.asarray(users, dtype=np.int64)
    if callable(opening):
        return np.asarray(opening(users), dtype=np.int64)
    return np.full(len(users), opening, dtype=np.int64)


def apply_batch(trades: pd.DataFrame, holdings: pd.DataFrame, cash: pd.DataFrame,
                opening_cash_cents: Opening = 0) -> BatchResult:
    """Apply `trades` (TRADE_COLUMNS) to the prior `holdings` (HOLDING_COLUMNS; may hold more pairs
    than the batch touches) and prior `cash` (CASH_COLUMNS; a user without a row starts with
    `opening_cash_cents`). Returns the new absolute state of the touched pairs and users."""
    _require(trades, TRADE_COLUMNS, "trades")
    _require(holdings, HOLDING_COLUMNS, "prior holdings")
    _require(cash, CASH_COLUMNS, "prior cash")
    batch = _with_prior(_normalised(trades), holdings)
    applied = batch.loc[batch["trade_id"] > batch["prior_last_trade_id"]]
    state = _positions(applied, batch)
    return BatchResult(state, _cash(batch, cash, opening_cash_cents),
                       applied[[*TRADE_COLUMNS, "price_cents"]].reset_index(drop=True))


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AccountingError(f"{what}: expected columns {columns}, missing {missing}")


def _normalised(trades: pd.DataFrame) -> pd.DataFrame:
    """Deduplicated, sorted by trade id, with a signed quantity and the price in cents."""
    frame = trades[TRADE_COLUMNS].drop_duplicates(["user_id", "trade_id"])
    frame = frame.sort_values("trade_id", kind="stable")
    return frame.assign(
        delta=signed_quantity(frame["side"].to_numpy(), frame["quantity"].to_numpy(dtype=np.int64),
                              frame["trade_id"].to_numpy()),
        price_cents=price_cents(frame["price"].to_numpy()),
    ).reset_index(drop=True)


def signed_quantity(sides: np.ndarray, quantity: np.ndarray, trade_ids: np.ndarray) -> np.ndarray:
    """+quantity for a buy, -quantity for a sell; any other side is an error naming the trade."""
    bad = ~np.isin(sides, ("buy", "sell"))
    if bad.any():
        raise AccountingError(f"side must be 'buy' or 'sell', got {sides[bad][0]!r} "
                              f"(trade {trade_ids[bad][0]})")
    return np.where(sides == "buy", quantity, -quantity)


def price_cents(price: np.ndarray) -> np.ndarray:
    """A price in USD (rounded to the cent on the wire) as exact integer cents."""
    return np.rint(np.asarray(price, dtype=np.float64) * 100).astype(np.int64)


def replay(trade_id: np.ndarray, user_id: np.ndarray, symbol: np.ndarray, delta: np.ndarray,
           cents: np.ndarray, time: np.ndarray, opening_cash_cents: Opening = 0
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every trade of some users applied onto nothing, as plain arrays: what `apply_batch` gives on an
    empty prior state, by the same rule (`_waves`), without its prior merges, string keys and
    timestamp conversions (~3x faster; the nightly rebuild replays the whole archive with it).

    `symbol` holds non-negative integer codes, `delta` the signed quantity, `cents` the price in
    cents, `time` any int64 clock. Duplicate trade ids count once. Returns (holdings, cash):
    user_id, symbol, quantity, cost_basis_cents, realized_pnl_cents, last_trade_id, last_trade_time
    per (user, symbol), sorted by user and symbol; user_id, cash_cents, cash_last_trade_id per user,
    sorted by user. Two sorts in all: by trade id, then (stable) by pair."""
    order = first_copies(trade_id, user_id)
    ids, users, symbols = trade_id[order], user_id[order].astype(np.int64), symbol[order].astype(np.int64)
    delta, cents, time = delta[order].astype(np.int64), cents[order].astype(np.int64), time[order]
    width = int(symbols.max()) + 1 if len(symbols) else 1
    if len(symbols) and (symbols.min() < 0 or users.max() >= np.iinfo(np.int64).max // width):
        raise AccountingError("replay needs non-negative symbol codes and user ids below 2**63 / codes")
    key = users * width + symbols
    by_pair = np.argsort(key, kind="stable")  # by (user, symbol), trade-id order kept inside each
    sorted_key = key[by_pair]
    first = _run_starts(sorted_key)
    pairs, group = sorted_key[first], np.empty(len(key), dtype=np.intp)
    group[by_pair] = np.cumsum(first) - 1
    q, basis, realized = (np.zeros(len(pairs), dtype=np.int64) for _ in range(3))
    if len(key):
        _waves(group, by_pair, delta, cents, q, basis, realized)
    last = by_pair[np.r_[first[1:], True]] if len(key) else by_pair  # the end of each pair's run
    owner = pairs // width  # sorted, as the pairs are
    new_user = _run_starts(owner)
    people, who = owner[new_user], (np.cumsum(new_user) - 1)[group]
    cash = opening_cash(people, opening_cash_cents).copy()
    np.add.at(cash, who, -(delta * cents))
    guard = np.zeros(len(people), dtype=np.int64)
    np.maximum.at(guard, who, ids)
    holdings = pd.DataFrame({"user_id": owner, "symbol": pairs % width, "quantity": q,
                             "cost_basis_cents": basis, "realized_pnl_cents": realized,
                             "last_trade_id": ids[last], "last_trade_time": time[last]})
    return holdings, pd.DataFrame({"user_id": people, "cash_cents": cash, "cash_last_trade_id": guard})


def first_copies(trade_id: np.ndarray, user_id: np.ndarray | None = None) -> np.ndarray:
    """Positions of the first copy of each (user, trade id) pair (of each trade id when `user_id` is
    None), in trade-id order: a repeated pair counts once, while the same id on two users' trades
    (generators that share no id space) stays two trades."""
    trade_id = np.asarray(trade_id)
    if user_id is None:
        order = np.argsort(trade_id, kind="stable")
        return order[_run_starts(trade_id[order])]
    user_id = np.asarray(user_id)
    order = np.lexsort((user_id, trade_id))  # by trade id, then user; stable for equal pairs
    ids, users = trade_id[order], user_id[order]
    starts = _run_starts(ids) | _run_starts(users) if len(order) else np.zeros(0, dtype=bool)
    return order[starts]


def _run_starts(values: np.ndarray) -> np.ndarray:
    """True where a sorted array's value differs from the one before (a run starts)."""
    return np.r_[True, values[1:] != values[:-1]] if len(values) else np.zeros(0, dtype=bool)


def _with_prior(batch: pd.DataFrame, holdings: pd.DataFrame) -> pd.DataFrame:
    """The batch with each trade's prior position. The prior integers go through the merge as nullable
    Int64: a left merge would turn int64 columns with a missing row into float64, and trade ids (from
    ~2**59) are not exact in a double, so a guard would move by up to a few hundred ids."""
    prior = holdings[HOLDING_COLUMNS].astype({c: "Int64" for c in HOLDING_COLUMNS[2:6]})
    prior = prior.rename(columns={c: f"prior_{c}" for c in HOLDING_COLUMNS[2:]})
    merged = batch.merge(prior, on=KEY, how="left", sort=False)
    for column in HOLDING_COLUMNS[2:6]:
        merged[f"prior_{column}"] = merged[f"prior_{column}"].fillna(0).to_numpy(dtype=np.int64)
    return merged


def lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray, default: int = 0) -> np.ndarray:
    """`values[i]` for each of `wanted` equal to `keys[i]` (unique keys), `default` where absent, as
    exact int64: no float64 detour, which a reindex with missing keys takes (trade ids pass 2**53)."""
    position = pd.Index(np.asarray(keys)).get_indexer(np.asarray(wanted))
    found = np.full(len(position), default, dtype=np.int64)
    hit = position >= 0
    found[hit] = np.asarray(values, dtype=np.int64)[position[hit]]
    return found


def exact_ints(column: pd.Series, missing: int = 0) -> np.ndarray:
    """An integer column that may hold nulls (object, Int64 or int64) as int64, nulls as `missing`.
    A float64 column is refused: its large values were rounded before they got here."""
    if column.dtype == np.float64 and len(column) and column.abs().max() >= 2**53:
        raise AccountingError(f"{column.name}: integers above 2**53 arrived as float64 (rounded)")
    return pd.array(column, dtype="Int64").fillna(missing).to_numpy(dtype=np.int64)


def _positions(applied: pd.DataFrame, batch: pd.DataFrame) -> pd.DataFrame:
    """New state of every pair in the batch (pairs whose trades were all replays keep the prior)."""
    pairs = batch.drop_duplicates(KEY)[[*KEY, *(f"prior_{c}" for c in HOLDING_COLUMNS[2:])]]
    pairs = pairs.reset_index(drop=True)
    group = _group_codes(applied, pairs)
    q, basis, realized = (pairs[f"prior_{c}"].to_numpy(dtype=np.int64).copy()
                          for c in ("quantity", "cost_basis_cents", "realized_pnl_cents"))
    _wavefront(group, applied["delta"].to_numpy(), applied["price_cents"].to_numpy(), q, basis, realized)
    last_id, last_time = _last_trade(applied, group, pairs)
    return _holding_frame(pairs[KEY], q, basis, realized, last_id, last_time)


def _group_codes(applied: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """Row of `pairs` each applied trade belongs to."""
    index = pd.MultiIndex.from_frame(pairs[KEY])
    return index.get_indexer(pd.MultiIndex.from_frame(applied[KEY])).astype(np.intp)


def _wavefront(group: np.ndarray, delta: np.ndarray, price: np.ndarray, q: np.ndarray,
               basis: np.ndarray, realized: np.ndarray) -> None:
    """Apply the trades (already in trade-id order) in place: step k applies the k-th trade of every
    group at once, so each step touches a group at most once."""
    if len(group) == 0:
        return
    _waves(group, np.argsort(group, kind="stable"), delta, price, q, basis, realized)


def _waves(group: np.ndarray, order: np.ndarray, delta: np.ndarray, price: np.ndarray, q: np.ndarray,
           basis: np.ndarray, realized: np.ndarray) -> None:
    """`_wavefront` given `order`: the trades sorted by group, trade-id order kept inside each group."""
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    if rank.max() < np.iinfo(np.int16).max:
        rank = rank.astype(np.int16)  # a stable sort of 16-bit keys is a radix sort: ~3x faster
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max()) + 2))
    by_rank = order[by_rank]
    for k in range(int(rank.max()) + 1):
        rows = by_rank[bounds[k]:bounds[k + 1]]
        _step(group[rows], delta[rows], price[rows], q, basis, realized)


def _step(g: np.ndarray, d: np.ndarray, p: np.ndarray, q: np.ndarray, basis: np.ndarray,
          realized: np.ndarray) -> None:
    """One trade per group `g`: close what reduces the position, then open the remainder."""
    q0, b0 = q[g], basis[g]
    closed = np.where(np.sign(q0) * np.sign(d) < 0, np.minimum(np.abs(d), np.abs(q0)), 0)
    removed = _round_div(b0, closed, np.abs(q0))
    opened = d + np.sign(d) * -closed  # signed remainder after closing
    realized[g] += np.sign(q0) * closed * p - removed
    q[g] = q0 + np.sign(d) * closed + opened
    basis[g] = b0 - removed + opened * p


def _round_div(basis: np.ndarray, closed: np.ndarray, held: np.ndarray) -> np.ndarray:
    """basis * closed / held rounded half away from zero, exactly (0 where nothing closes). In int64
    where the product fits with room (every trade of the generator's sizes); the rare rows whose
    product does not (a position of millions of shares at a large price, which the wire contract's
    bounds allow) in Python's unbounded integers, so no valid trade can make the accounting fail."""
    held = np.maximum(held, 1)
    wide = np.abs(basis.astype(np.float64)) * closed >= _PRODUCT_LIMIT
    numerator = np.where(wide, 0, basis * closed)
    magnitude = (2 * np.abs(numerator) + held) // (2 * held)
    result = np.sign(numerator) * magnitude
    for i in np.flatnonzero(wide):
        product, divisor = int(basis[i]) * int(closed[i]), int(held[i])
        exact = (2 * abs(product) + divisor) // (2 * divisor)
        result[i] = exact if product >= 0 else -exact
    return result


def _last_trade(applied: pd.DataFrame, group: np.ndarray,
                pairs: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """Id and time of the last applied trade per pair (the prior values where none was applied)."""
    last_id = pairs["prior_last_trade_id"].to_numpy(dtype=np.int64).copy()
    last_time = _utc_ms(pairs["prior_last_trade_time"])
    last_row = np.full(len(pairs), -1)
    np.maximum.at(last_row, group, np.arange(len(group)))  # rows are in trade-id order
    hit = np.flatnonzero(last_row >= 0)
    last_id[hit] = applied["trade_id"].to_numpy(dtype=np.int64)[last_row[hit]]
    last_time[hit] = _utc_ms(applied["event_time"])[last_row[hit]]
    return last_id, pd.Series(last_time).dt.tz_localize(UTC)


def _utc_ms(times: pd.Series) -> np.ndarray:
    """Aware times as a plain numpy datetime64[ms] array in UTC (fast to index, unlike Timestamps)."""
    return pd.to_datetime(times, utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[ms]").copy()


def _holding_frame(keys: pd.DataFrame, q: np.ndarray, basis: np.ndarray, realized: np.ndarray,
                   last_id: np.ndarray, last_time: pd.Series) -> pd.DataFrame:
    return keys.assign(quantity=q, cost_basis_cents=basis, realized_pnl_cents=realized,
                       last_trade_id=last_id, last_trade_time=last_time, avg_cost=average_cost(q, basis))


def average_cost(quantity: np.ndarray, basis_cents: np.ndarray) -> np.ndarray:
    """Average cost in dollars per share (positive for a short too), 0 for a closed position."""
    quantity = np.asarray(quantity, dtype=np.int64)
    return np.divide(basis_cents, quantity * 100.0, out=np.zeros(len(quantity)), where=quantity != 0)


def _cash(batch: pd.DataFrame, cash: pd.DataFrame, opening_cash_cents: Opening) -> pd.DataFrame:
    """Absolute cash of every user with a trade above their cash guard: prior (or opening) minus what
    was bought plus what was sold, an order-free integer sum. The per-user guard keeps cash right even
    when an earlier attempt wrote the user's cash but not all of their holdings rows."""
    known = cash["user_id"].to_numpy(dtype=np.int64)
    guard = lookup(known, exact_ints(cash["cash_last_trade_id"]), batch["user_id"].to_numpy())
    fresh = batch.loc[batch["trade_id"].to_numpy() > guard]
    by_user = (-(fresh["delta"] * fresh["price_cents"])).groupby(fresh["user_id"])
    users = by_user.sum().index.to_numpy(dtype=np.int64)
    has_cash = cash["cash_cents"].notna().to_numpy()
    stored = lookup(known[has_cash], exact_ints(cash["cash_cents"][has_cash]), users, default=-1)
    present = pd.Index(known[has_cash]).get_indexer(users) >= 0
    start = np.where(present, stored, opening_cash(users, opening_cash_cents))
    return pd.DataFrame({"user_id": users, "cash_cents": start + by_user.sum().to_numpy(dtype=np.int64),
                         "cash_last_trade_id": fresh.groupby("user_id")["trade_id"].max().to_numpy()})
