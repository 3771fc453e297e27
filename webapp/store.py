"""Cassandra reads (and the account writes) of the web app: prepared statements only, one driver
session per process, created on first use (so after gunicorn forks) and replaced when it stays dead.

Every method returns plain dicts (column -> value) and raises `DataUnavailable` when Cassandra does
not answer; the API turns that into 503."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, TypeVar

from cassandra import (
    DriverException,
    InvalidRequest,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, NoHostAvailable, Session
from cassandra.query import PreparedStatement, dict_factory
from stockafolio import cql
from stockafolio.errors import StockafolioError
from stockafolio.settings import CassandraEndpoint
from webapp.cache import Expiring, Shared, UserRows

LOG = logging.getLogger(__name__)
MARKET = "us"                  # the one partition of Q4 (see streaming/store.py)
JOB = "portfolio"              # the streaming job's row key in Q8
PROFILE = "webapp"             # the driver execution profile: rows as dicts, the web timeout
GIVE_UP_AFTER_S = 20.0         # a session failing every query this long is shut down and rebuilt
CLOSE_TTL_S = 60.0             # a past day's close is final, but a stream catching up may still move it

_FAILURES = (NoHostAvailable, OperationTimedOut, ReadTimeout, WriteTimeout, Unavailable, DriverException,
             OSError)

# name -> CQL ({ks} is the validated keyspace); prepared once per session.
QUERIES: dict[str, str] = {
    "account": "SELECT username, user_id, password_hash, role, session_epoch FROM {ks}.accounts_by_username "
               "WHERE username = ?",
    "put_account": "INSERT INTO {ks}.accounts_by_username (username, user_id, password_hash, role, "
                   "created_at, session_epoch) VALUES (?, ?, ?, ?, ?, ?)",
    "add_account": "INSERT INTO {ks}.accounts_by_username (username, user_id, password_hash, role, "
                   "created_at, session_epoch) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS",
    "delete_account": "DELETE FROM {ks}.accounts_by_username WHERE username = ? IF EXISTS",
    "session_state": "SELECT role, user_id, session_epoch FROM {ks}.accounts_by_username WHERE username = ?",
    # LWT: a plain UPDATE of a deleted account would bring back a row holding only the epoch
    "end_sessions": "UPDATE {ks}.accounts_by_username SET session_epoch = ? WHERE username = ? IF EXISTS",
    "login_failures": "SELECT window FROM {ks}.login_failures_by_key_window "
                      "WHERE key = ? AND window IN (?, ?)",
    "login_failure": "INSERT INTO {ks}.login_failures_by_key_window (key, window, at) VALUES (?, ?, now()) "
                     "USING TTL ?",
    # only what the API shows: statics come back on every row, so `*` would decode ~30 columns a row
    "portfolio": "SELECT symbol, quantity, cost_basis_cents, avg_cost, realized_pnl_cents, last_price, "
                 "last_trade_time, cash_cents, realized_pnl_total_cents, equity_cents, day, "
                 "day_open_equity_cents, last_batch_id, updated_at FROM {ks}.portfolio_by_user "
                 "WHERE user_id = ?",
    "trades": "SELECT trade_id, symbol, side, quantity, price, event_time FROM {ks}.trades_by_user_day "
              "WHERE user_id = ? AND day = ? LIMIT ?",
    "equity": "SELECT minute, equity_cents, day_pnl_cents FROM {ks}.equity_by_user_day "
              "WHERE user_id = ? AND day = ?",
    "prices": "SELECT symbol, price, event_time FROM {ks}.latest_price_by_market WHERE market = ?",
    # a name's close of a day: its last trade of the day (Q5 holds minutes in ascending order)
    "close": "SELECT last_price FROM {ks}.symbol_stats_by_day_symbol WHERE day = ? AND symbol = ? "
             "ORDER BY minute DESC LIMIT 1",
    "symbol_stats": "SELECT * FROM {ks}.symbol_stats_by_day_symbol WHERE day = ? AND symbol = ? LIMIT 1440",
    "firm_activity": "SELECT * FROM {ks}.firm_activity_by_day WHERE day = ? LIMIT 1440",
    "symbol_totals": "SELECT * FROM {ks}.symbol_totals_by_day WHERE day = ?",
    "top_users": "SELECT rank, user_id, value, computed_at FROM {ks}.top_users_by_day_metric "
                 "WHERE day = ? AND metric = ?",
    "batches": "SELECT * FROM {ks}.batches_by_job WHERE job = ? LIMIT ?",
    "nightly_view": 'SELECT rank, label, metrics, computed_at FROM {ks}.nightly_view_by_day_view '
                    'WHERE day = ? AND "view" = ?',
    "reconciliation": "SELECT * FROM {ks}.reconciliation_by_day WHERE day = ? LIMIT 1",
    "historical_risk": "SELECT day, market_value_cents, gross_exposure_cents, var_95, var_99, es_95, es_99, "
                       "scenarios, computed_at FROM {ks}.hist_var_by_user WHERE user_id = ? LIMIT ?",
}


T = TypeVar("T")


class DataUnavailable(StockafolioError):
    """Cassandra did not answer (down, restarting, overloaded); the message says what failed."""


class Store:
    """The web app's view of Cassandra. Thread- and greenlet-safe; one instance per process."""

    def __init__(self, endpoint: CassandraEndpoint, keyspace: str, timeout_s: float = 3.0,
                 retry_s: float = 5.0, prices_ttl_s: float = 1.0, shared_ttl_s: float = 1.0,
                 user_cache_users: int = 20_000, user_cache_ttl_s: float = 10.0,
                 session_check_ttl_s: float = 1.0,
                 connect: Callable[..., tuple[Cluster, Session]] | None = None) -> None:
        self.endpoint, self.keyspace = endpoint, cql.check_identifier(keyspace)
        self.timeout_s, self.retry_s, self.prices_ttl_s = timeout_s, retry_s, prices_ttl_s
        self._connect = connect or _connect
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        self._failed_at = 0.0          # last failed connect (monotonic)
        self._failing_since: float | None = None
        self._prices: tuple[float, dict[str, float], datetime | None] | None = None
        # a user's own rows until their next portfolio event (webapp.cache; off until live.run_events
        # reads the events), and the firm's views shared by every analyst for `shared_ttl_s`
        self.user_rows = UserRows(user_cache_users, user_cache_ttl_s)
        self.shared = Shared(shared_ttl_s)
        # username -> (role, user_id, session epoch) or None, trusted `session_check_ttl_s`
        self.sessions = Expiring(session_check_ttl_s)
        # (day, symbol) -> that day's closing price or None, for every user of the process
        self.closes = Expiring(CLOSE_TTL_S, max_keys=10_000)

    # ------------------------------------------------------------ session life cycle

    def _ready(self) -> tuple[Session, dict[str, PreparedStatement]]:
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                self._open()
            assert self._session is not None
            return self._session, self._prepared

    def _open(self) -> None:
        if time.monotonic() - self._failed_at < self.retry_s:
            raise DataUnavailable("Cassandra did not answer a moment ago; retrying shortly")
        self._session = self._cluster = None  # a session inherited through fork is not ours to use
        try:
            cluster, session = self._connect(self.endpoint, self.timeout_s)
            cluster.add_execution_profile(PROFILE, session.execution_profile_clone_update(
                EXEC_PROFILE_DEFAULT, row_factory=dict_factory, request_timeout=self.timeout_s))
        except (StockafolioError, *_FAILURES) as exc:
            self._failed_at = time.monotonic()
            raise DataUnavailable(f"cannot reach Cassandra ({_short(exc)})") from None
        self._cluster, self._session, self._prepared = cluster, session, {}
        self._pid, self._failing_since = os.getpid(), None

    def _statement(self, session: Session, prepared: dict[str, PreparedStatement], name: str
                   ) -> PreparedStatement:
        """Prepared on first use (once per session), so a table a migration has not created yet only
        fails the routes that read it."""
        statement = prepared.get(name)
        if statement is None:
            statement = prepared[name] = session.prepare(QUERIES[name].format(ks=self.keyspace))
        return statement

    def _run(self, name: str, *params: Any) -> list[dict[str, Any]]:
        session, prepared = self._ready()
        try:
            statement = self._statement(session, prepared, name)
            rows = list(session.execute(statement, params, execution_profile=PROFILE))
        except InvalidRequest as exc:  # e.g. a table of a migration not applied yet
            raise DataUnavailable(f"Cassandra refused query {name} ({_short(exc)})") from None
        except _FAILURES as exc:
            self._note_failure()
            raise DataUnavailable(f"Cassandra query {name} failed ({_short(exc)})") from None
        self._failing_since = None
        return rows

    def _note_failure(self) -> None:
        """The driver reconnects by itself; a session that fails for GIVE_UP_AFTER_S is rebuilt anyway
        (its hosts may have come back under another address, or its pools may be wedged)."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since > GIVE_UP_AFTER_S:
            with self._lock:
                cluster, self._cluster, self._session = self._cluster, None, None
            self._failing_since = None
            if cluster is not None:
                threading.Thread(target=cluster.shutdown, daemon=True).start()
            LOG.warning("Cassandra failed every query for %.0f s: session dropped, reconnecting",
                        GIVE_UP_AFTER_S)

    def close(self) -> None:
        with self._lock:
            if self._cluster is not None and self._pid == os.getpid():
                self._cluster.shutdown()
            self._cluster = self._session = None

    # ------------------------------------------------------------ queries (Q0-Q10)

    def account(self, username: str) -> dict[str, Any] | None:
        rows = self._run("account", username)
        return rows[0] if rows else None

    def put_account(self, username: str, user_id: int | None, password_hash: str, role: str,
                    now: datetime, overwrite: bool = True, epoch: int = 0) -> bool:
        """Write an account; with overwrite=False only if the name is free (returns False if taken).
        `epoch` is its new session epoch: an overwrite ends every session of the old one."""
        rows = self._run("put_account" if overwrite else "add_account", username, user_id, password_hash,
                         role, now, epoch)
        self.sessions.forget(username)
        return overwrite or bool(rows and rows[0].get("[applied]"))

    def delete_account(self, username: str) -> bool:
        """Delete an account (its sessions end with it); False if there was none."""
        rows = self._run("delete_account", username)
        self.sessions.forget(username)
        return bool(rows and rows[0].get("[applied]"))

    def session_state(self, username: str) -> tuple[str, int | None, int] | None:
        """(role, user_id, session epoch) of an account, None if it does not exist; each process
        trusts a read for `session_check_ttl_s` (1 s), so a logout elsewhere holds within that."""
        def load() -> tuple[str, int | None, int] | None:
            rows = self._run("session_state", username)
            if not rows or rows[0].get("role") is None:
                return None
            return rows[0]["role"], rows[0].get("user_id"), rows[0].get("session_epoch") or 0
        return self.sessions.get(username, load)

    def end_sessions(self, username: str, epoch: int) -> None:
        """Give the account a new session epoch: every session issued before ends."""
        self._run("end_sessions", epoch, username)
        self.sessions.forget(username)

    def login_failures(self, key: str, window: int) -> tuple[int, int]:
        """Failed logins of `key` in window `window` and in the one before (Q12)."""
        rows = self._run("login_failures", key, window - 1, window)
        current = sum(1 for r in rows if r["window"] == window)
        return current, len(rows) - current

    def note_login_failure(self, key: str, window: int, ttl_s: int) -> None:
        self._run("login_failure", key, window, ttl_s)

    def _own(self, name: str, user_id: int, *params: Any) -> list[dict[str, Any]]:
        """Q1-Q3: one user's rows, through the per-user cache (a copy of the list: callers may extend
        it; the row dicts are shared and never modified). One slot per query and first parameter (the
        day), the rest (the trade limit) as its version, so a user holds a handful of entries."""
        slot, version = (name, *params[:1]), params[1:]
        return list(self.user_rows.get(user_id, slot, lambda: tuple(self._run(name, user_id, *params)),
                                       version))

    def marked(self, user_id: int, mark: Callable[[list[dict[str, Any]], dict[str, float], Any], T]) -> T:
        """`mark(Q1 rows, prices, prices as of)`, kept beside the rows until the user's next event or
        this process's next prices snapshot (whichever comes first): a dashboard re-reading an
        unchanged portfolio within the second costs neither a read nor a valuation."""
        self.prices()
        stamp, prices, as_of = self._prices or (None, {}, None)
        return self.user_rows.get(user_id, ("marked",),
                                  lambda: mark(self.portfolio(user_id), prices, as_of), stamp)

    def changed(self, user_ids: Iterable[int]) -> None:
        """The stream wrote these users' rows (their portfolio events): forget what is cached of them."""
        self.user_rows.invalidate(user_ids)

    def events_live(self, on: bool) -> None:
        """Whether this process reads the portfolio events now: the per-user cache serves only then."""
        self.user_rows.enable(on)

    def _firm(self, name: str, *params: Any) -> list[dict[str, Any]]:
        return list(self.shared.get((name, *params), lambda: tuple(self._run(name, *params))))

    def portfolio(self, user_id: int) -> list[dict[str, Any]]:
        return self._own("portfolio", user_id)

    def trades(self, user_id: int, day: date, limit: int) -> list[dict[str, Any]]:
        return self._own("trades", user_id, day, limit)

    def equity(self, user_id: int, day: date) -> list[dict[str, Any]]:
        return self._own("equity", user_id, day)

    def prices(self) -> tuple[dict[str, float], datetime | None]:
        """Q4, shared by every request of this process for `prices_ttl_s` (503 rows is the most
        expensive read of a portfolio request, and prices move once a second)."""
        cached = self._prices
        if cached is not None and time.monotonic() - cached[0] < self.prices_ttl_s:
            return cached[1], cached[2]
        rows = self._run("prices", MARKET)
        prices = {r["symbol"]: r["price"] for r in rows if r["price"] is not None}
        as_of = max((r["event_time"] for r in rows if r["event_time"] is not None), default=None)
        self._prices = (time.monotonic(), prices, as_of)
        return prices, as_of

    def previous_closes(self, day: date, symbols: Iterable[str]) -> dict[str, float]:
        """Each name's close on `day` (its last trade of the day, Q5): one small read per name,
        shared by every user of this process for CLOSE_TTL_S. Names that did not trade are left out."""
        def load(symbol: str) -> float | None:
            rows = self._run("close", day, symbol)
            return rows[0]["last_price"] if rows else None
        found = {s: self.closes.get((day, s), lambda s=s: load(s)) for s in symbols}
        return {s: p for s, p in found.items() if p}

    def symbol_stats(self, day: date, symbol: str) -> list[dict[str, Any]]:
        return self._firm("symbol_stats", day, symbol)

    def firm_activity(self, day: date) -> list[dict[str, Any]]:
        return self._firm("firm_activity", day)

    def symbol_totals(self, day: date) -> list[dict[str, Any]]:
        return self._firm("symbol_totals", day)

    def top_users(self, day: date, metric: str) -> list[dict[str, Any]]:
        return self._firm("top_users", day, metric)

    def batches(self, limit: int) -> list[dict[str, Any]]:
        return self._firm("batches", JOB, limit)

    def nightly_view(self, day: date, view: str) -> list[dict[str, Any]]:
        return self._firm("nightly_view", day, view)

    def historical_risk(self, user_id: int, nights: int) -> list[dict[str, Any]]:
        """Q11: the user's nightly historical VaR/ES, newest night first."""
        return self._run("historical_risk", user_id, nights)

    def reconciliation(self, day: date) -> dict[str, Any] | None:
        rows = self._firm("reconciliation", day)
        return rows[0] if rows else None


def _connect(endpoint: CassandraEndpoint, timeout_s: float) -> tuple[Cluster, Session]:
    return cql.connect(endpoint, timeout_s=timeout_s, connection_class=_connection_class())


def _connection_class() -> type | None:
    """Under a gevent worker (monkey-patched) the driver must use its gevent reactor, else the
    default one."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a pinned dependency
        return None
    if not monkey.is_module_patched("socket"):
        return None
    from cassandra.io.geventreactor import GeventConnection

    return GeventConnection


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
