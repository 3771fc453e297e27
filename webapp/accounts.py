"""Accounts (Q0): a user name, a hashed password (werkzeug scrypt), a role, for role `user` the
simulated user id whose portfolio the account sees, and a session epoch: a session is valid while
the epoch it was issued with is the account's (webapp.auth). Writing an account (a new password or
role) or logging out gives it a new epoch. Demo seeding for `bin/stockafolio run`; bulk seeding of the
load test's accounts (`bench/webapp_load.py --accounts N`)."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from werkzeug.security import check_password_hash, generate_password_hash

from stockafolio.activity import most_active_user_ids, ranks_of_every_level, user_ids_of_ranks
from stockafolio.errors import StockafolioError

Role = Literal["user", "firm"]
ROLES: tuple[Role, ...] = ("user", "firm")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 10
HASH_METHOD = "scrypt"
# Load-test accounts only: 0.3 ms a hash instead of ~120 ms, so that 10,000 of them can be created
# and logged in within seconds. Real accounts always get HASH_METHOD; a login checks each hash with
# the method stored in it, so the two can live side by side.
BENCH_HASH_METHOD = "pbkdf2:sha256:1000"
BENCH_PREFIX = "bench-"
# Checked when the user name does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(8), method=HASH_METHOD)


class AccountError(StockafolioError):
    """A user name, password or role that cannot be used."""


@dataclass(frozen=True)
class Account:
    username: str
    role: Role
    user_id: int | None
    epoch: int = 0  # the session epoch this login was issued with


def new_epoch() -> int:
    """A fresh session epoch: random, so no coordination is needed between hosts (a positive bigint)."""
    return secrets.randbits(62) + 1


def validate(username: str, password: str, role: str, user_id: int | None) -> None:
    if not USERNAME.match(username):
        raise AccountError(f"user name must match {USERNAME.pattern}, got {username!r}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    if role not in ROLES:
        raise AccountError(f"role must be one of {ROLES}, got {role!r}")
    if (role == "user") != (user_id is not None):
        raise AccountError("a user account needs --user-id; a firm account must not have one")
    if user_id is not None and user_id < 1:
        raise AccountError(f"user id must be >= 1, got {user_id}")


def create(store, username: str, password: str, role: str, user_id: int | None,
           overwrite: bool = False, method: str = HASH_METHOD) -> Account:
    """Validate and write an account; refuses a taken name unless `overwrite`."""
    validate(username, password, role, user_id)
    written = store.put_account(username, user_id, generate_password_hash(password, method=method), role,
                                datetime.now(UTC), overwrite=overwrite, epoch=new_epoch())
    if not written:
        raise AccountError(f"user name {username!r} is taken (use --overwrite to replace it)")
    return Account(username, role, user_id)  # type: ignore[arg-type]


def authenticate(store, username: str, password: str) -> Account | None:
    """The account when the password matches, else None (same cost either way)."""
    row = store.account(username) if USERNAME.match(username or "") else None
    if row is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not row.get("password_hash") or not check_password_hash(row["password_hash"], password):
        return None
    if row.get("role") not in ROLES:
        return None
    return Account(row["username"], row["role"], row["user_id"], row.get("session_epoch") or 0)


def delete(store, username: str) -> None:
    """Delete an account: every session of it ends (within a second on every web process)."""
    if not store.delete_account(username):
        raise AccountError(f"no account named {username!r}")


def end_sessions(store, username: str) -> None:
    """Log the account out everywhere: a new session epoch."""
    store.end_sessions(username, new_epoch())


# ---------------------------------------------------------------- demo accounts


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: Role
    user_id: int | None


def demo_accounts(n_users: int, seed: int, users: int, previous: dict[str, str]) -> list[DemoAccount]:
    """`users` accounts on the most active simulated users plus one firm analyst; passwords are
    random, kept from `previous` (name -> password) so reseeding does not change them."""
    ids = most_active_user_ids(n_users, seed, users)
    plan: list[tuple[str, Role, int | None]] = [(f"demo{i + 1}", "user", uid) for i, uid in enumerate(ids)]
    plan.append(("analyst", "firm", None))
    return [DemoAccount(name, previous.get(name) or secrets.token_urlsafe(12), role, uid)
            for name, role, uid in plan]


def seed(store, secrets_file: Path, n_users: int, seed_value: int, users: int = 3,
         method: str = HASH_METHOD) -> list[DemoAccount]:
    """Write the demo accounts to Cassandra and to `secrets_file` (mode 0600)."""
    previous = read_demo_file(secrets_file)
    accounts = demo_accounts(n_users, seed_value, users, {a["username"]: a["password"] for a in previous})
    for a in accounts:
        create(store, a.username, a.password, a.role, a.user_id, overwrite=True, method=method)
    write_secrets_file(secrets_file, accounts)
    return accounts


def read_demo_file(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AccountError(f"{path} is not valid JSON ({exc}); delete it to reseed") from None
    return [a for a in data if isinstance(a, dict) and {"username", "password"} <= set(a)] \
        if isinstance(data, list) else []


# ---------------------------------------------------------------- load-test accounts


@dataclass(frozen=True)
class BenchAccount(DemoAccount):
    rank: int | None = None  # activity rank of its simulated user (0: the most active), None for firm


def bench_accounts(n_users: int, seed_value: int, users: int, firm: int,
                   previous: dict[str, str]) -> list[BenchAccount]:
    """`users` load-test accounts on simulated users of every level of activity
    (`stockafolio.activity.ranks_of_every_level`), named bench-u00001.. from the most active, plus
    `firm` analysts bench-f001..; passwords kept from `previous` (name -> password)."""
    ranks = ranks_of_every_level(n_users, users)
    ids = user_ids_of_ranks(n_users, seed_value, ranks)
    plan: list[tuple[str, Role, int | None, int | None]] = [
        (f"{BENCH_PREFIX}u{i + 1:05d}", "user", uid, rank)
        for i, (uid, rank) in enumerate(zip(ids, ranks, strict=True))]
    plan += [(f"{BENCH_PREFIX}f{i + 1:03d}", "firm", None, None) for i in range(firm)]
    return [BenchAccount(name, previous.get(name) or secrets.token_urlsafe(12), role, uid, rank)
            for name, role, uid, rank in plan]


def seed_many(store, accounts: Sequence[DemoAccount], method: str = BENCH_HASH_METHOD,
              threads: int = 32) -> None:
    """Write many accounts at once: validated first, then hashed and written by `threads` threads
    (the store's prepared statement; hashlib and the driver release the GIL while they wait), each
    account with a new session epoch like `create`. Meant for load-test accounts with
    BENCH_HASH_METHOD, which only names starting with BENCH_PREFIX may get (a real account's hash
    is never weakened)."""
    for a in accounts:
        validate(a.username, a.password, a.role, a.user_id)
        if method != HASH_METHOD and not a.username.startswith(BENCH_PREFIX):
            raise AccountError(f"{a.username!r} is not a load-test account ({BENCH_PREFIX}...): it gets "
                               f"the {HASH_METHOD} hash, not {method}")
    now = datetime.now(UTC)

    def put(a: DemoAccount) -> None:
        store.put_account(a.username, a.user_id, generate_password_hash(a.password, method=method), a.role,
                          now, overwrite=True, epoch=new_epoch())

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(put, accounts):  # re-raises the first failure
            pass


def write_secrets_file(path: Path, accounts: Sequence[DemoAccount]) -> None:
    """The accounts with their passwords as a JSON list, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump([a.__dict__ for a in accounts], out, indent=2)
    os.chmod(path, 0o600)
