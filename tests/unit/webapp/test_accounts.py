"""Accounts: validation, hashing, demo seeding on the generator's most active users."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest

from generator.users import Population
from stockafolio.activity import most_active_user_ids
from tests.unit.webapp.conftest import FakeStore
from webapp import accounts

FAST = "pbkdf2:sha256:1000"


@pytest.mark.parametrize(("n_users", "seed"), [(100_000, 1), (10_000_000, 1), (1000, 42), (7, 3)])
def test_most_active_users_match_the_generator(n_users, seed):
    population = Population.create(n_users, np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1]))
    expected = population.user_of_rank(np.arange(min(5, n_users))) + 1
    assert most_active_user_ids(n_users, seed, 5) == expected.tolist()


def test_the_most_active_users_do_trade_most():
    """Sampled as the generator samples: the chosen ids trade ~20x the average user (the top
    thousand ranks are nearly equally active, so they are not exactly the top counts)."""
    rng = np.random.default_rng(np.random.SeedSequence(1).spawn(3)[1])
    population = Population.create(100_000, rng)
    draws = population.sample(np.random.default_rng(5), 200_000) + 1
    counts = np.bincount(draws, minlength=100_001)
    chosen = counts[most_active_user_ids(100_000, 1, 3)]
    assert chosen.min() > 10 * counts[1:].mean()
    assert chosen.min() > np.percentile(counts, 99)


def test_create_validates_and_refuses_a_taken_name():
    store = FakeStore()
    with pytest.raises(accounts.AccountError, match="user name"):
        accounts.create(store, "Bad Name!", "long enough pw", "user", 1, method=FAST)
    with pytest.raises(accounts.AccountError, match="at least"):
        accounts.create(store, "dave", "short", "user", 1, method=FAST)
    with pytest.raises(accounts.AccountError, match="user-id"):
        accounts.create(store, "dave", "long enough pw", "firm", 1, method=FAST)
    with pytest.raises(accounts.AccountError, match="taken"):
        accounts.create(store, "alice", "long enough pw", "user", 5, method=FAST)
    accounts.create(store, "dave", "long enough pw", "user", 5, method=FAST)
    assert store.accounts["dave"]["password_hash"].startswith("pbkdf2:")
    epoch = store.accounts["dave"]["session_epoch"]
    assert epoch > 0
    dave = accounts.Account("dave", "user", 5, epoch)
    assert accounts.authenticate(store, "dave", "long enough pw") == dave
    assert accounts.authenticate(store, "dave", "wrong password") is None


def test_overwriting_logging_out_or_deleting_an_account_changes_its_session_epoch():
    """A new password or role, a logout everywhere and a deletion all end the sessions issued before."""
    store = FakeStore()
    accounts.create(store, "dave", "long enough pw", "user", 5, method=FAST)
    first = store.session_state("dave")
    accounts.create(store, "dave", "another long pw", "firm", None, overwrite=True, method=FAST)
    second = store.session_state("dave")
    assert second[:2] == ("firm", None) and second[2] != first[2]
    accounts.end_sessions(store, "dave")
    assert store.session_state("dave")[2] not in (first[2], second[2])
    accounts.delete(store, "dave")
    assert store.session_state("dave") is None
    with pytest.raises(accounts.AccountError, match="no account"):
        accounts.delete(store, "dave")


def test_default_hash_is_scrypt():
    store = FakeStore()
    accounts.create(store, "erin", "long enough pw", "firm", None)
    assert store.accounts["erin"]["password_hash"].startswith("scrypt:")


def test_seed_writes_a_private_file_and_keeps_passwords(tmp_path):
    store, path = FakeStore(), tmp_path / "secrets" / "demo-accounts.json"
    first = accounts.seed(store, path, 100_000, 1, users=3, method=FAST)
    assert [a.username for a in first] == ["demo1", "demo2", "demo3", "analyst"]
    assert [a.user_id for a in first[:3]] == most_active_user_ids(100_000, 1, 3)
    assert first[3].role == "firm" and first[3].user_id is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())[0]["password"] == first[0].password
    assert len({a.password for a in first}) == 4
    again = accounts.seed(store, path, 100_000, 1, users=3, method=FAST)
    assert [a.password for a in again] == [a.password for a in first]
    assert accounts.authenticate(store, "demo1", first[0].password) is not None
