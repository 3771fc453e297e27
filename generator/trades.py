"""Trades, generated a batch at a time as columnar numpy arrays (never a Python object per trade).

For a span of simulated seconds: the price process advances one step per second; each trade gets a
user (by activity), a millisecond within its second, and random draws; then the users' decisions are
applied to their books in *rounds*: round k holds every user's k-th trade of the batch, so within a
round users are distinct and their books update with vectorised gathers and scatters, while a user's
trades still apply in time order. Trade ids are assigned in event-time order.

Several generator instances (`--instance K --instances N`) share the work by user: each one draws
the trades of the whole population, exactly as one run at N times its rate would, and keeps (books,
gives ids to and returns) only those of its own users, `user_id % N == K` (`instance_of`). So a user's
trades all come from one instance, in id order, and they are the very trades (hence cash and
holdings) that one run of the whole population gives that user; only the ids differ. What that costs
is drawing every trade's random inputs in every instance (about a tenth of the cost of generating a
trade): N times that per kept trade.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from generator.clock import SESSION_SECONDS, SessionClock
from generator.ids import TradeIds
from generator.market import Market, PriceProcess, to_cents
from generator.users import (
    CLOSE_PROBABILITY,
    MAX_LOT,
    NOTIONAL_LOG_SD,
    NOTIONAL_MEDIAN_USD,
    SELL_PROBABILITY,
    SHORT_SELL_PROBABILITY,
    Books,
    Population,
    starting_cash_cents,
)
from stockafolio.cash import cash_salt
from stockafolio.records import MAX_INSTANCES, SIDES, Trade

BUY, SELL = 0, 1


@dataclass(frozen=True, eq=False)
class TradeBatch:
    """Trades as columns, in trade id (and event time) order. `symbol` indexes `symbols`, `side` is
    0 (buy) or 1 (sell), prices are in cents, event times in epoch milliseconds (UTC)."""

    symbols: tuple[str, ...]
    trade_id: np.ndarray
    user_id: np.ndarray
    symbol: np.ndarray
    side: np.ndarray
    quantity: np.ndarray
    price_cents: np.ndarray
    event_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.trade_id)

    def records(self) -> list[Trade]:
        """As `Trade` records (slow: for tests and small samples)."""
        return [
            Trade(trade_id=t, user_id=u, symbol=self.symbols[s], side=SIDES[d], quantity=q,
                  price=p / 100, event_time=datetime.fromtimestamp(ms / 1000, tz=UTC))
            for t, u, s, d, q, p, ms in zip(
                self.trade_id.tolist(), self.user_id.tolist(), self.symbol.tolist(), self.side.tolist(),
                self.quantity.tolist(), self.price_cents.tolist(), self.event_ms.tolist(), strict=True)
        ]

    def select(self, mask: np.ndarray) -> TradeBatch:
        return TradeBatch(self.symbols, *(getattr(self, f)[mask] for f in _COLUMNS))


_COLUMNS = ("trade_id", "user_id", "symbol", "side", "quantity", "price_cents", "event_ms")


@dataclass(frozen=True)
class Draws:
    """The random inputs of each trade, drawn before the rounds so that results do not depend on
    how trades fall into rounds."""

    side: np.ndarray
    slot: np.ndarray
    close: np.ndarray
    choice: np.ndarray
    notional_cents: np.ndarray
    popular: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, cumulative_popularity: np.ndarray) -> Draws:
        uniforms = rng.random((4, n))
        notional = NOTIONAL_MEDIAN_USD * 100 * np.exp(NOTIONAL_LOG_SD * rng.standard_normal(n))
        popular = np.searchsorted(cumulative_popularity, rng.random(n), side="right")
        return cls(*uniforms, notional, np.minimum(popular, len(cumulative_popularity) - 1))

    def take(self, idx: np.ndarray) -> Draws:
        return Draws(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def occurrence_rounds(users: np.ndarray) -> list[np.ndarray]:
    """Positions of `users` grouped so that round k holds each user's k-th occurrence (in order)."""
    n = len(users)
    if n == 0:
        return []
    order = np.argsort(users, kind="stable")
    ordered = users[order]
    first = np.empty(n, dtype=bool)
    first[0], first[1:] = True, ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(first)
    occurrence = np.empty(n, dtype=np.int64)
    occurrence[order] = np.arange(n) - starts[np.cumsum(first) - 1]
    by_round = np.argsort(occurrence, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(occurrence))])
    return [by_round[bounds[k]:bounds[k + 1]] for k in range(len(bounds) - 1)]


def _nth_true(mask: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Per row, the column of a uniformly chosen True of `mask` (rows with none give 0)."""
    running = np.cumsum(mask, axis=1, dtype=np.int16)
    k = (uniforms * running[:, -1]).astype(np.int16)
    return np.argmax(running > k[:, None], axis=1)


def _slot_for(symbols: np.ndarray, quantities: np.ndarray, target: np.ndarray, uniforms: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """(slot, symbol) for trading `target`: its own slot if held, else an empty slot, else (all slots
    taken) a random held slot, whose symbol is then traded instead."""
    occupied = quantities != 0
    match = occupied & (symbols == target[:, None])
    empty = ~occupied
    has_match, has_empty = match.any(axis=1), empty.any(axis=1)
    slot = np.where(has_match, np.argmax(match, axis=1),
                    np.where(has_empty, np.argmax(empty, axis=1), _nth_true(occupied, uniforms)))
    rows = np.arange(len(target))
    return slot, np.where(has_match | has_empty, target, symbols[rows, slot])


@dataclass(frozen=True, eq=False)
class _Choice:
    """What each user of a round trades: side (True = sell), position slot and symbol."""

    sell: np.ndarray
    slot: np.ndarray
    symbol: np.ndarray


def _choose(books: Books, symbols: np.ndarray, quantities: np.ndarray, d: Draws) -> _Choice:
    """Sell a held long position (or, short selling on, sometimes a popular name), else buy a
    popular name."""
    rows = np.arange(len(symbols))
    long_ = quantities > 0
    has_long = long_.any(axis=1)
    held_slot = _nth_true(long_, d.slot)
    slot, symbol = _slot_for(symbols, quantities, d.popular, d.slot)
    if books.short_selling:
        sell = d.side < SHORT_SELL_PROBABILITY
        from_long = sell & has_long & (d.choice < 0.5)
    else:
        sell = has_long & (d.side < SELL_PROBABILITY)
        from_long = sell
    return _Choice(sell, np.where(from_long, held_slot, slot),
                   np.where(from_long, symbols[rows, held_slot], symbol))


def _quantities(books: Books, users: np.ndarray, choice: _Choice, position: np.ndarray, price: np.ndarray,
                d: Draws) -> tuple[np.ndarray, np.ndarray]:
    """(quantity, cash deposit) per trade: a log-normal notional in whole shares, sells capped by the
    position (unless short selling) or closing it, buys capped by cash."""
    wanted = np.clip(np.rint(d.notional_cents / price), 1, MAX_LOT).astype(np.int64)
    closing = choice.sell & (position > 0) & (d.close < CLOSE_PROBABILITY)
    most = wanted if books.short_selling else np.minimum(wanted, position)
    sell_qty = np.where(closing, position, most)
    start = starting_cash_cents(users, books.cash_salt)
    cash = start + books.cash_delta[users]
    # A buyer who cannot afford one share deposits (again) their starting cash: a retail top-up.
    deposit = np.where(~choice.sell & (cash < price), start + price, 0)
    buy_qty = np.minimum(wanted, (cash + deposit) // price)
    return np.where(choice.sell, sell_qty, buy_qty), deposit


def apply_round(books: Books, users: np.ndarray, cents: np.ndarray, second: np.ndarray, d: Draws
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decide and book one trade for each of `users` (distinct), trading in `second` (row of the
    (seconds, names) int64 price path `cents`). Returns (symbol, side, quantity, price_cents)."""
    quantities = books.quantity[users].astype(np.int64)
    choice = _choose(books, books.symbol[users].astype(np.int64), quantities, d)
    price = cents[second, choice.symbol]
    position = quantities[np.arange(len(users)), choice.slot]
    quantity, deposit = _quantities(books, users, choice, position, price, d)
    signed = np.where(choice.sell, -quantity, quantity)
    books.quantity[users, choice.slot] = position + signed
    books.symbol[users, choice.slot] = choice.symbol
    books.cash_delta[users] += deposit - signed * price
    return choice.symbol, choice.sell.astype(np.int8), quantity, price


@dataclass(eq=False)
class TradeGenerator:
    """The pure core of a run: market, users and their books, the session clock and the trade ids.
    `generate(counts)` advances the market by len(counts) simulated seconds with counts[i] trades of
    the whole population in the i-th, of which it keeps those of its instance's users (all of them
    with one instance); the same seeds and the same sequence of calls give the same trades."""

    market: Market
    population: Population
    books: Books
    clock: SessionClock
    ids: TradeIds
    rng: np.random.Generator
    prices: PriceProcess
    next_second: int = 0
    instances: int = 1  # generator instances sharing the population; this one is `ids.instance`
    _cumulative: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cumulative = np.cumsum(self.market.popularity)

    @classmethod
    def create(cls, market: Market, n_users: int, seed: int, run_id: int, clock: SessionClock,
               slots: int = 6, short_selling: bool = False, instance: int = 0, instances: int = 1
               ) -> TradeGenerator:
        """Seeded: the market, the population and the trade draws get independent child streams. Every
        instance gets the same streams (the same market, population and draws): see the module."""
        if not 0 <= instance < instances <= MAX_INSTANCES:
            raise ValueError(f"need 0 <= instance < instances <= {MAX_INSTANCES}, "
                             f"got {instance} and {instances}")
        market_seq, users_seq, trades_seq = np.random.SeedSequence(seed).spawn(3)
        users_rng = np.random.default_rng(users_seq)
        population = Population.create(n_users, users_rng)
        books = Books(n_users, slots, cash_salt=cash_salt(seed),
                      short_selling=short_selling)
        return cls(market, population, books, clock, TradeIds(run_id, instance),
                   np.random.default_rng(trades_seq), PriceProcess(market, np.random.default_rng(market_seq)),
                   instances=instances)

    def generate(self, counts: np.ndarray) -> tuple[TradeBatch, np.ndarray]:
        """(trades, prices): the trades of the next len(counts) seconds and the (seconds, names) path
        of prices at the end of each second."""
        counts = np.asarray(counts, dtype=np.int64)
        first = self.next_second
        path = self.prices.advance(len(counts))
        self.next_second += len(counts)
        n = int(counts.sum())
        instants = np.repeat(np.arange(len(counts), dtype=np.int64) * 1000, counts)
        instants += self.rng.integers(0, 1000, n)
        instants.sort()
        users = self.population.sample(self.rng, n)
        draws = Draws.draw(self.rng, n, self._cumulative)
        if self.instances > 1:
            own = np.flatnonzero(instance_of(users + 1, self.instances) == self.ids.instance)
            instants, users, draws = instants[own], users[own], draws.take(own)
        second = instants // 1000
        columns = self._book(users, second, to_cents(path), draws)
        event_ms = self.clock.second_ms(first + second) + instants % 1000
        batch = TradeBatch(self.market.symbols, self.ids.take(len(users)), users + 1,
                           columns[0].astype(np.int16), columns[1], columns[2], columns[3], event_ms)
        return batch, path

    def _book(self, users: np.ndarray, second: np.ndarray, cents: np.ndarray, draws: Draws
              ) -> list[np.ndarray]:
        n = len(users)
        out = [np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int64),
               np.empty(n, dtype=np.int64)]
        for idx in occurrence_rounds(users):
            results = apply_round(self.books, users[idx], cents, second[idx], draws.take(idx))
            for column, values in zip(out, results, strict=True):
                column[idx] = values
        return out


def instance_of(user_ids: np.ndarray, instances: int) -> np.ndarray:
    """The generator instance that simulates each user id (0..instances-1): a partition of the users
    that is a pure function of the id and the number of instances, so every reader can tell."""
    return np.asarray(user_ids, dtype=np.int64) % instances


def even_schedule(per_second: float, first: int, seconds: int) -> np.ndarray:
    """Trades in each of `seconds` simulated seconds from `first` for an average of `per_second`:
    floor((k + 1) r) - floor(k r), deterministic and exact over any span."""
    k = np.arange(first, first + seconds + 1, dtype=np.float64)
    return np.diff(np.floor(k * per_second)).astype(np.int64)


def intraday_weights() -> np.ndarray:
    """Relative activity of each second of the session, a U shape (busy open and close, quiet
    lunch) normalised to mean 1: 1 + 2 x^2 with x in [-1, 1] across the day."""
    x = np.linspace(-1.0, 1.0, SESSION_SECONDS)
    weights = 1.0 + 2.0 * x**2
    return weights / weights.mean()


def day_schedule(total: int) -> np.ndarray:
    """`total` trades spread over the session's seconds by `intraday_weights` (exact total)."""
    cumulative = np.floor(np.cumsum(intraday_weights()) / SESSION_SECONDS * total + 1e-9)
    cumulative[-1] = total
    return np.diff(np.concatenate([[0], cumulative])).astype(np.int64)
