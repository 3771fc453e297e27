"""Trade batches: accounting, no negative holdings, lot sizes, prices, ids, reproducibility."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from generator.clock import SESSION_SECONDS, SessionClock, open_ms
from generator.ids import TradeIds, new_run_id
from generator.market import Market, to_cents
from generator.trades import (
    TradeBatch,
    TradeGenerator,
    day_schedule,
    even_schedule,
    instance_of,
    intraday_weights,
    occurrence_rounds,
)
from generator.users import MAX_LOT
from stockafolio.records import MAX_INSTANCES, MAX_SEQUENCE, RUN_EPOCH, split_trade_id

from .conftest import DAY, make_generator


def _run(gen, seconds: int, per_second: int) -> list[tuple[TradeBatch, np.ndarray]]:
    return [gen.generate(np.full(10, per_second)) for _ in range(seconds // 10)]


def _positions(batches) -> dict[tuple[int, int], int]:
    held: dict[tuple[int, int], int] = defaultdict(int)
    for batch, _ in batches:
        signed = np.where(batch.side == 1, -batch.quantity, batch.quantity)
        for u, s, q in zip(batch.user_id.tolist(), batch.symbol.tolist(), signed.tolist(), strict=True):
            held[(u, s)] += q
    return {k: v for k, v in held.items() if v}


def _books(gen) -> dict[tuple[int, int], int]:
    users, slots = np.nonzero(gen.books.quantity)
    return {(int(u) + 1, int(gen.books.symbol[u, k])): int(gen.books.quantity[u, k])
            for u, k in zip(users, slots, strict=True)}


@pytest.mark.parametrize("short_selling", [False, True])
def test_books_equal_the_sum_of_the_trades(market: Market, short_selling: bool) -> None:
    gen = make_generator(market, users=300, short_selling=short_selling)  # ~30 trades per user
    batches = _run(gen, 300, 30)
    assert _positions(batches) == _books(gen)
    assert (gen.books.quantity < 0).any() == short_selling


def test_no_negative_holdings_or_cash_without_short_selling(market: Market) -> None:
    gen = make_generator(market, users=200, slots=3)  # heavy trading, few slots
    for batch, _ in _run(gen, 400, 50):
        assert np.all(gen.books.quantity >= 0)
        users = np.arange(200)
        assert np.all(gen.books.cash_cents(users) >= 0)
        assert np.all((gen.books.quantity > 0).sum(axis=1) <= 3)
        assert set(batch.side.tolist()) == {0, 1}


def test_new_users_buy_first(market: Market) -> None:
    batch, _ = make_generator(market, users=10_000_000).generate(np.full(5, 2_000))
    first = np.unique(batch.user_id, return_index=True)[1]
    assert np.all(batch.side[first] == 0)  # nobody starts with shares


def test_lot_sizes_and_prices(market: Market) -> None:
    gen = make_generator(market, users=50_000)
    batch, path = gen.generate(np.full(20, 1_000))
    assert batch.quantity.min() >= 1 and batch.quantity.max() <= MAX_LOT
    notional = batch.quantity * batch.price_cents / 100
    assert 500 < np.median(notional) < 6_000
    second = (batch.event_ms - open_ms(DAY)) // 1000
    assert np.array_equal(batch.price_cents, to_cents(path)[second, batch.symbol])


def test_popular_symbols_are_traded_more(market: Market) -> None:
    batch, _ = make_generator(market, users=5_000_000).generate(np.full(10, 10_000))
    counts = np.bincount(batch.symbol, minlength=len(market.symbols))
    top = np.argsort(market.popularity)[::-1][:5]
    assert counts[top].sum() > 0.08 * len(batch)
    assert np.corrcoef(counts, market.popularity)[0, 1] > 0.9


def test_ids_increase_with_event_time_inside_the_session(market: Market) -> None:
    gen = make_generator(market, run_id=77)
    batches = [b for b, _ in _run(gen, 60, 100)]
    ids = np.concatenate([b.trade_id for b in batches])
    times = np.concatenate([b.event_ms for b in batches])
    assert np.all(np.diff(ids) == 1) and np.all(np.diff(times) >= 0)
    assert split_trade_id(int(ids[0])) == (77, 0, 0)
    assert open_ms(DAY) <= times.min() and times.max() < open_ms(DAY) + 60_000


def test_same_seed_same_trades(market: Market) -> None:
    def columns(seed: int) -> list[np.ndarray]:
        batch, _ = make_generator(market, users=100_000, seed=seed).generate(np.full(30, 500))
        return [batch.trade_id, batch.user_id, batch.symbol, batch.side, batch.quantity, batch.price_cents,
                batch.event_ms]

    a, b, c = columns(1), columns(1), columns(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_occurrence_rounds_keep_each_users_order() -> None:
    users = np.array([5, 3, 5, 5, 3, 9])
    rounds = occurrence_rounds(users)
    assert [r.tolist() for r in rounds] == [[0, 1, 5], [2, 4], [3]]
    assert occurrence_rounds(np.array([], dtype=np.int64)) == []


def test_an_empty_second_is_fine(market: Market) -> None:
    batch, path = make_generator(market).generate(np.zeros(3, dtype=np.int64))
    assert len(batch) == 0 and path.shape == (3, len(market.symbols))


def test_even_schedule_is_exact_over_any_split() -> None:
    whole = even_schedule(333.3, 0, 100)
    parts = np.concatenate([even_schedule(333.3, 0, 37), even_schedule(333.3, 37, 63)])
    assert np.array_equal(whole, parts) and whole.sum() == 33_330


def test_day_schedule_is_a_u_shape_with_the_exact_total() -> None:
    counts = day_schedule(1_000_003)
    assert len(counts) == SESSION_SECONDS and counts.sum() == 1_000_003 and counts.min() >= 0
    assert counts[:600].sum() > 2 * counts[11_400:12_000].sum()
    assert intraday_weights().mean() == pytest.approx(1.0)


@pytest.mark.parametrize("instance", [0, 3, MAX_INSTANCES - 1])
def test_ids_roll_over_to_the_next_run_id(instance: int) -> None:
    ids = TradeIds(5, instance, next_sequence=MAX_SEQUENCE - 1)
    taken = ids.take(4)
    expected = [(5, MAX_SEQUENCE - 1), (5, MAX_SEQUENCE), (6, 0), (6, 1)]
    assert [split_trade_id(int(t)) for t in taken] == [(*e, instance) for e in expected]
    assert np.all(np.diff(taken) > 0)


def test_a_later_run_gets_larger_ids_under_2_24_trades_a_second() -> None:
    # ids.py: by second R + s, a run with run id R that made n <= s * 2**24 trades has used run ids up
    # to R + s - 1 at most, while a run started then gets R + s + 1, whatever either one's instance.
    seconds, chunk = 2, 1 << 22
    earlier = TradeIds(100, instance=200)
    for _ in range(seconds * (MAX_SEQUENCE + 1) // chunk):
        last = int(earlier.take(chunk)[-1])
    assert split_trade_id(last) == (100 + seconds - 1, MAX_SEQUENCE, 200)
    later = TradeIds(new_run_id(lambda: RUN_EPOCH.timestamp() + 100 + seconds, lambda _: None))
    assert later.run_id == 100 + seconds + 1 and int(later.take(1)[0]) > last


def _instances(market: Market, n: int, users: int = 500, run_id: int = 9) -> list[TradeGenerator]:
    return [TradeGenerator.create(market, users, 7, run_id, SessionClock(DAY), instance=k, instances=n)
            for k in range(n)]


def test_instances_started_in_the_same_second_never_share_an_id(market: Market) -> None:
    gens = _instances(market, 4)
    ids = [np.concatenate([g.generate(np.full(10, 400))[0].trade_id for _ in range(3)]) for g in gens]
    for k, own in enumerate(ids):
        assert len(own) > 0 and np.all(np.diff(own) > 0)  # each instance's ids rise
        assert {split_trade_id(int(t))[::2] for t in own} == {(9, k)}
    every = np.concatenate(ids)
    assert len(np.unique(every)) == len(every)


def test_instances_partition_the_users() -> None:
    user_ids = np.arange(1, 10_001)
    for n in (1, 2, 7, MAX_INSTANCES):
        owner = instance_of(user_ids, n)
        subsets = [set(user_ids[owner == k].tolist()) for k in range(n)]
        assert set().union(*subsets) == set(user_ids.tolist()) and sum(map(len, subsets)) == len(user_ids)
        assert max(map(len, subsets)) - min(map(len, subsets)) <= 1


def test_instances_together_make_the_single_run(market: Market) -> None:
    # Each instance keeps its own users' trades of the whole population's: user by user, the very
    # trades (so cash and holdings) of one generator of the whole population; only the ids differ.
    def rows(batches: list[TradeBatch]) -> list[tuple]:
        return sorted(row for b in batches for row in zip(
            b.user_id.tolist(), b.event_ms.tolist(), b.symbol.tolist(), b.side.tolist(),
            b.quantity.tolist(), b.price_cents.tolist(), strict=True))

    single = TradeGenerator.create(market, 500, 7, 9, SessionClock(DAY))
    gens = _instances(market, 3)
    counts = [np.full(10, 300), np.full(5, 1_000), np.zeros(2, dtype=np.int64), np.full(10, 50)]
    whole = [single.generate(c)[0] for c in counts]
    parts = [[g.generate(c)[0] for c in counts] for g in gens]
    assert rows([b for part in parts for b in part]) == rows(whole)
    for k, (gen, part) in enumerate(zip(gens, parts, strict=True)):
        assert all(np.all(b.user_id % 3 == k) for b in part)
        own = np.flatnonzero(instance_of(np.arange(1, 501), 3) == k)
        assert np.array_equal(gen.books.cash_cents(own), single.books.cash_cents(own))
        assert np.array_equal(gen.books.quantity[own], single.books.quantity[own])
        assert not gen.books.quantity[np.setdiff1d(np.arange(500), own)].any()  # others' untouched
    sizes = [sum(len(b) for b in part) for part in parts]
    assert sum(sizes) == sum(len(b) for b in whole) and min(sizes) > 0.2 * sum(sizes)


def test_an_instance_must_be_one_of_the_instances(market: Market) -> None:
    for instance, instances in ((1, 1), (-1, 2), (0, 0), (0, MAX_INSTANCES + 1)):
        with pytest.raises(ValueError, match="instance"):
            TradeGenerator.create(market, 10, 1, 1, SessionClock(DAY), instance=instance, instances=instances)


def test_a_new_run_id_is_the_next_whole_second() -> None:
    slept: list[float] = []
    now = RUN_EPOCH.timestamp() + 1_000.25
    assert new_run_id(lambda: now, slept.append) == 1_001
    assert slept == [pytest.approx(0.75)]
