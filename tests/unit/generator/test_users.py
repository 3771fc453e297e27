"""Who trades: skewed activity, a bijective rank -> user map, starting cash, bounded state."""

from __future__ import annotations

import numpy as np
import pytest

from generator.users import CASH_RANGE_USD, Books, Population, starting_cash_cents


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.create(10_000_000, np.random.default_rng(5))


def test_activity_is_skewed(population: Population) -> None:
    users = population.sample(np.random.default_rng(1), 2_000_000)
    counts = np.bincount(users, minlength=population.n_users)
    ordered = np.sort(counts)[::-1]
    top_1pct = np.mean(population.rank_of_user(users) < population.n_users // 100)
    assert top_1pct == pytest.approx(population.share_of_top(0.01), abs=0.005)
    assert top_1pct > 0.45  # a few very active traders...
    assert np.median(counts) <= 1  # ...and a long tail of occasional ones
    assert ordered[0] > 500 * counts.mean()


def test_the_most_active_users_are_spread_over_the_ids(population: Population) -> None:
    top = population.user_of_rank(np.arange(1_000))
    assert top.min() < population.n_users // 10 and top.max() > population.n_users * 9 // 10


@pytest.mark.parametrize("n", [1, 7, 1_000, 10_007])
def test_rank_to_user_is_a_bijection(n: int) -> None:
    pop = Population.create(n, np.random.default_rng(n))
    users = pop.user_of_rank(np.arange(n))
    assert np.array_equal(np.sort(users), np.arange(n))
    assert np.array_equal(pop.rank_of_user(users), np.arange(n))


def test_ranks_stay_in_range() -> None:
    pop = Population.create(10, np.random.default_rng(0))
    ranks = pop.ranks(np.array([0.0, 0.5, 1 - 1e-16]))
    assert ranks.min() >= 0 and ranks.max() <= 9


def test_other_exponents_work() -> None:
    pop = Population.create(100_000, np.random.default_rng(0), exponent=1.3)
    counts = np.bincount(pop.sample(np.random.default_rng(2), 500_000), minlength=100_000)
    share = np.sort(counts)[::-1][:1_000].sum() / counts.sum()
    assert share == pytest.approx(pop.share_of_top(0.01), abs=0.015)


def test_starting_cash_is_deterministic_skewed_and_bounded() -> None:
    users = np.arange(200_000)
    cash = starting_cash_cents(users, salt=11) / 100
    assert np.array_equal(cash, starting_cash_cents(users, salt=11) / 100)
    assert not np.array_equal(cash, starting_cash_cents(users, salt=12) / 100)
    assert CASH_RANGE_USD[0] <= cash.min() and cash.max() <= CASH_RANGE_USD[1]
    assert 20_000 < np.median(cash) < 30_000 and cash.mean() > np.median(cash)


def test_books_memory_is_fixed_per_user() -> None:
    books = Books(1_000_000, slots=6, cash_salt=1)
    assert books.nbytes == 1_000_000 * (8 + 6 * (2 + 4))
