"""The load test's accounts (webapp.accounts.bench_accounts / seed_many): simulated users of every
level of activity, the generator's own mapping of ranks to users, bulk writes, and the cheap hash kept
to load-test accounts."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from werkzeug.security import check_password_hash

from generator.users import Population
from stockafolio.activity import most_active_user_ids, ranks_of_every_level, user_ids_of_ranks
from webapp import accounts


@pytest.mark.parametrize(("n_users", "seed"), [(10_000_000, 1), (1000, 42), (7, 3)])
def test_user_ids_of_ranks_match_the_generator(n_users: int, seed: int) -> None:
    population = Population.create(n_users, np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1]))
    ranks = [0, n_users // 2, n_users - 1, 1 % n_users]
    assert user_ids_of_ranks(n_users, seed, ranks) == (population.user_of_rank(np.array(ranks)) + 1).tolist()
    assert most_active_user_ids(n_users, seed, 3) == user_ids_of_ranks(n_users, seed, range(min(3, n_users)))


def test_ranks_cover_every_level_of_activity() -> None:
    ranks = ranks_of_every_level(10_000_000, 10_000)
    assert len(set(ranks)) == 10_000 and ranks == sorted(ranks)
    assert ranks[0] == 0 and ranks[-1] == 9_999_999
    per_decade = np.histogram(ranks, bins=[0, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000])[0]
    assert per_decade[:3].tolist() == [10, 90, 900]  # every one of the most active thousand
    assert all(count > 1_000 for count in per_decade[3:])  # and about as many in each decade below
    assert ranks_of_every_level(5, 5) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        ranks_of_every_level(5, 6)


def test_bench_accounts_are_named_spread_and_keep_their_passwords() -> None:
    made = accounts.bench_accounts(1_000_000, 1, 200, 3, {})
    users, firm = made[:200], made[200:]
    assert [a.username for a in users[:2]] == ["bench-u00001", "bench-u00002"]
    assert [a.username for a in firm] == ["bench-f001", "bench-f002", "bench-f003"]
    assert len({a.user_id for a in users}) == 200 and all(a.role == "user" for a in users)
    assert all(a.user_id is None and a.rank is None and a.role == "firm" for a in firm)
    assert users[-1].rank == 999_999
    again = accounts.bench_accounts(1_000_000, 1, 200, 3, {a.username: a.password for a in made})
    assert again == made


class Recorder:
    """Only what seed_many uses of the store; put_account is called from several threads."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple] = {}
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def put_account(self, username, user_id, password_hash, role, now, overwrite=True, epoch=0) -> bool:
        with self._lock:
            self.rows[username] = (user_id, password_hash, role, overwrite, epoch)
            self.threads.add(threading.get_ident())
        return True


def test_seed_many_writes_every_account_with_a_cheap_hash_and_a_new_epoch(tmp_path: Path) -> None:
    made = accounts.bench_accounts(100_000, 1, 500, 2, {})
    store = Recorder()
    accounts.seed_many(store, made, threads=8)
    assert set(store.rows) == {a.username for a in made}
    first = made[0]
    user_id, password_hash, role, overwrite, epoch = store.rows[first.username]
    assert (user_id, role, overwrite) == (first.user_id, "user", True) and epoch > 0
    assert password_hash.startswith(accounts.BENCH_HASH_METHOD) and check_password_hash(password_hash,
                                                                                      first.password)
    assert len({row[4] for row in store.rows.values()}) == len(made)  # an epoch each
    assert len(store.threads) > 1


def test_a_real_account_never_gets_the_cheap_hash() -> None:
    real = accounts.DemoAccount("alice", "a-long-password", "user", 5)
    with pytest.raises(accounts.AccountError, match="not a load-test account"):
        accounts.seed_many(Recorder(), [real])
    store = Recorder()
    accounts.seed_many(store, [real], method=accounts.HASH_METHOD)  # the product's hash: fine
    assert store.rows["alice"][1].startswith("scrypt:")


def test_the_secrets_file_is_private_json(tmp_path: Path) -> None:
    made = accounts.bench_accounts(1000, 1, 5, 1, {})
    path = tmp_path / "secrets" / "bench-accounts.json"
    accounts.write_secrets_file(path, made)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved[0]["username"] == "bench-u00001" and saved[0]["rank"] == 0 and saved[-1]["role"] == "firm"
    assert accounts.read_demo_file(path)[0]["password"] == made[0].password
