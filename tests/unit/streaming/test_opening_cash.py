"""The stream opens a new user's account with the very cash the generator gave them (same --seed)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from generator.clock import SessionClock
from generator.market import Market
from generator.trades import TradeGenerator
from stockafolio import accounting, cash
from stockafolio.reference import load_factor_model, load_universe
from tests.unit.generator.conftest import DAY


def _generator(seed: int, users: int) -> TradeGenerator:
    market = Market.from_model(load_factor_model(), load_universe())
    return TradeGenerator.create(market, users, seed, 1234, SessionClock(DAY))


def test_every_users_opening_cash_is_the_generators_starting_cash() -> None:
    for seed in (1, 7):
        gen = _generator(seed, 5_000)
        index = np.arange(5_000)
        assert np.array_equal(gen.books.cash_cents(index), cash.opening_cash_cents(index + 1, seed))
    assert not np.array_equal(cash.opening_cash_cents(index + 1, 1), cash.opening_cash_cents(index + 1, 7))


def test_salt_does_not_depend_on_the_number_of_users() -> None:
    assert _generator(3, 10).books.cash_salt == _generator(3, 1_000_003).books.cash_salt == cash.cash_salt(3)


def test_stream_cash_after_trading_matches_the_generator_books() -> None:
    gen = _generator(7, 2_000)
    batch, _ = gen.generate(np.full(20, 200))
    trades = pd.DataFrame([t.__dict__ for t in batch.records()])
    opening = functools.partial(cash.opening_cash_cents, seed=7)
    result = accounting.apply_batch(trades, accounting.empty_holdings(), accounting.empty_cash(), opening)
    users = result.cash["user_id"].to_numpy()
    stream = result.cash["cash_cents"].to_numpy()
    books = gen.books.cash_cents(users - 1)
    # The generator tops a broke buyer up with their starting cash (not a trade, so the stream cannot
    # see it): only then may the books hold more, and by at least that starting cash.
    topped = books != stream
    assert topped.mean() < 0.1 and len(users) > 1_000
    assert np.all(books[topped] - stream[topped] >= cash.opening_cash_cents(users[topped], 7))


def test_opening_cash_accepts_a_constant_or_a_function() -> None:
    users = np.array([5, 9])
    assert accounting.opening_cash(users, 100).tolist() == [100, 100]
    assert accounting.opening_cash(users, lambda u: u * 2).tolist() == [10, 18]
