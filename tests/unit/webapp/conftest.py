"""A fake store (in memory, same methods as webapp.store.Store), an app on it, and logins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from webapp import create_app
from webapp.settings import RateLimits, WebSettings
from webapp.store import DataUnavailable

NOW = datetime(2026, 11, 20, 15, 30, 5, tzinfo=UTC)
TODAY = NOW.date()
PASSWORD = "correct horse battery"
USER_A, USER_B = 11, 22


def naive(moment: datetime) -> datetime:
    """The driver returns naive UTC datetimes."""
    return moment.replace(tzinfo=None)


class FakeStore:
    def __init__(self) -> None:
        fast = "pbkdf2:sha256:1000"
        self.accounts: dict[str, dict[str, Any]] = {
            name: {"username": name, "user_id": uid, "role": role, "session_epoch": 1,
                   "password_hash": generate_password_hash(PASSWORD, method=fast)}
            for name, uid, role in (("alice", USER_A, "user"), ("bob", USER_B, "user"),
                                    ("analyst", None, "firm"))}
        self.portfolios: dict[int, list[dict[str, Any]]] = {
            USER_A: portfolio_rows(USER_A, [("AAPL", 10, 150000, 150.0)], cash=1_000_000),
            USER_B: portfolio_rows(USER_B, [("MSFT", 5, 200000, 400.0)], cash=2_000_000),
        }
        self.price_map = {"AAPL": 160.0, "MSFT": 410.0}
        self.close_map: dict[date, dict[str, float]] = {}  # Q5: a day's closing prices
        self.tick: datetime = NOW  # Q4: the latest price tick's event time (the market's clock)
        self.trade_rows: dict[tuple[int, date], list[dict[str, Any]]] = {
            (USER_A, TODAY): [trade(2**40 + 2, "AAPL", "buy", 4, 155.0),
                              trade(2**40 + 1, "AAPL", "buy", 6, 147.5)],
            (USER_B, TODAY): [trade(2**40 + 3, "MSFT", "buy", 5, 400.0)],
        }
        self.down = False
        self.calls: list[tuple] = []
        self.failures: dict[tuple[str, int], int] = {}  # Q12: (key, window) -> failed logins

    def _check(self, *call: Any) -> None:
        self.calls.append(call)
        if self.down:
            raise DataUnavailable("cannot reach Cassandra (test)")

    def account(self, username):
        self._check("account", username)
        return self.accounts.get(username)

    def put_account(self, username, user_id, password_hash, role, now, overwrite=True, epoch=0):
        self._check("put_account", username)
        if not overwrite and username in self.accounts:
            return False
        self.accounts[username] = {"username": username, "user_id": user_id, "role": role,
                                   "password_hash": password_hash, "session_epoch": epoch}
        return True

    def delete_account(self, username):
        self._check("delete_account", username)
        return self.accounts.pop(username, None) is not None

    def session_state(self, username):
        """Uncached: every request sees a change at once (the real store trusts a read for 1 s)."""
        self._check("session_state", username)
        row = self.accounts.get(username)
        return None if row is None else (row["role"], row["user_id"], row.get("session_epoch") or 0)

    def end_sessions(self, username, epoch):
        self._check("end_sessions", username)
        if username in self.accounts:
            self.accounts[username]["session_epoch"] = epoch

    def login_failures(self, key, window):
        self._check("login_failures", key)
        return self.failures.get((key, window), 0), self.failures.get((key, window - 1), 0)

    def note_login_failure(self, key, window, ttl_s):
        self._check("note_login_failure", key)
        self.failures[(key, window)] = self.failures.get((key, window), 0) + 1

    def marked(self, user_id, mark):
        return mark(self.portfolio(user_id), *self.prices())

    def changed(self, user_ids):
        self.changed_users = [*getattr(self, "changed_users", []), *user_ids]

    def events_live(self, on):
        self.live = on

    def portfolio(self, user_id):
        self._check("portfolio", user_id)
        return self.portfolios.get(user_id, [])

    def trades(self, user_id, day, limit):
        self._check("trades", user_id, day)
        return self.trade_rows.get((user_id, day), [])[:limit]

    def equity(self, user_id, day):
        self._check("equity", user_id, day)
        return [{"minute": naive(NOW.replace(second=0)), "equity_cents": 2_600_000, "day_pnl_cents": 5000}] \
            if user_id == USER_A else [{"minute": naive(NOW), "equity_cents": 1, "day_pnl_cents": 1}]

    def historical_risk(self, user_id, nights):
        self._check("historical_risk", user_id)
        rows = [{"day": date(2026, 11, 20 - i), "market_value_cents": 160_000 + i,
                 "gross_exposure_cents": 160_000, "var_95": 40.5 + i, "var_99": 61.25, "es_95": 52.0,
                 "es_99": 70.0, "scenarios": 1258, "computed_at": naive(NOW)} for i in range(3)]
        return rows[:nights] if user_id == USER_A else []

    def prices(self):
        self._check("prices")
        return dict(self.price_map), naive(self.tick)

    def previous_closes(self, day, symbols):
        self._check("previous_closes", day, tuple(symbols))
        return {s: p for s, p in self.close_map.get(day, {}).items() if s in symbols}

    def symbol_stats(self, day, symbol):
        self._check("symbol_stats", day, symbol)
        return [{"minute": naive(NOW.replace(second=0)), "last_price": 160.0, "vwap": 159.5, "trades": 3,
                 "volume": 30, "notional_cents": 478_500, "buy_trades": 2, "sell_trades": 1}]

    def firm_activity(self, day):
        self._check("firm_activity", day)
        return [{"minute": naive(NOW.replace(second=0, minute=m)), "trades": m, "volume": 10 * m,
                 "notional_cents": 100 * m, "buy_trades": m, "sell_trades": 0, "active_users": 1}
                for m in (30, 29)]

    def symbol_totals(self, day):
        self._check("symbol_totals", day)
        return [{"symbol": "AAPL", "trades": 5, "volume": 100, "notional_cents": 1_600_000, "buy_volume": 80,
                 "sell_volume": 20},
                {"symbol": "XOM", "trades": 9, "volume": 50, "notional_cents": 500_000, "buy_volume": 0,
                 "sell_volume": 50}]

    def top_users(self, day, metric):
        self._check("top_users", day, metric)
        return [] if day != TODAY else [{"rank": 1, "user_id": USER_A, "value": 42.0}]

    def batches(self, limit):
        self._check("batches", limit)
        return [{"batch_id": 7, "finished_at": naive(NOW), "input_rows": 100, "dead_letters": 0,
                 "touched_users": 50, "input_rows_per_second": 50.0, "processed_rows_per_second": 500.0,
                 "kafka_lag": 0}][:limit]

    def nightly_view(self, day, view):
        self._check("nightly_view", day, view)
        if day != TODAY:
            return []
        return [{"rank": 1, "label": "AAPL", "metrics": {"trades": 5.0}, "computed_at": naive(NOW)}]

    def reconciliation(self, day):
        self._check("reconciliation", day)
        return None


def portfolio_rows(user_id: int, holdings: list[tuple[str, int, int, float]], cash: int) -> list[dict]:
    statics = {"user_id": user_id, "cash_cents": cash, "realized_pnl_total_cents": 1234, "equity_cents": 0,
               "day": TODAY, "day_open_equity_cents": cash, "last_batch_id": 7, "updated_at": naive(NOW)}
    return [{**statics, "symbol": s, "quantity": q, "cost_basis_cents": c, "avg_cost": avg,
             "realized_pnl_cents": 0, "last_price": avg, "last_trade_time": naive(NOW)}
            for s, q, c, avg in holdings]


def trade(trade_id: int, symbol: str, side: str, quantity: int, price: float) -> dict:
    return {"trade_id": trade_id, "symbol": symbol, "side": side, "quantity": quantity, "price": price,
            "event_time": naive(NOW)}


@pytest.fixture()
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture()
def settings() -> WebSettings:
    return WebSettings(secret_key="test-secret", testing=True, live_tasks=False,
                       rate_limits=RateLimits(login=3, login_ip=100))


@pytest.fixture()
def app(settings: WebSettings, store: FakeStore):
    return create_app(settings, store=store, clock=lambda: NOW)


@pytest.fixture()
def client(app) -> Iterator:
    with app.test_client() as c:
        yield c


def csrf_token(client) -> str:
    import re

    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert match, page
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(client)})


@pytest.fixture()
def as_alice(client):
    assert login(client, "alice").status_code == 302
    return client


@pytest.fixture()
def as_analyst(client):
    assert login(client, "analyst").status_code == 302
    return client
