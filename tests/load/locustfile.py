"""Load test of the Stockafolio web app: the people who use it, as locust personas.

- `PortfolioUser` (weight 9): a retail user with the dashboard open; reads their portfolio most,
  then trades, the value curve, prices, now and then reloads the page.
- `FirmAnalyst` (weight 1): the firm's analyst on the firm dashboard: activity, flows, health.

Each simulated user logs in at start with a demo account of its role from --accounts-file (the JSON
list `bin/stockafolio run` writes: [{username, password, role, user_id}]). Users of the same account
share one login (like tabs of one browser), so a run stays under the login rate limit. Every
response is checked explicitly (status and shape). The shape is bounded: ramp to -u users at -r per
second, hold until -t, stop. At the end the run fails (exit 1) when the failure ratio exceeds
--max-fail-ratio or nothing was requested.

    locust -f tests/load/locustfile.py --headless -H http://127.0.0.1:8000 -u 20 -r 10 -t 30s \
        --accounts-file var/secrets/demo-accounts.json
"""

from __future__ import annotations

import json
import logging
import random
import re
from http.cookiejar import Cookie
from pathlib import Path
from urllib.parse import urlparse

import gevent.lock
from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.exception import StopUser

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_logins: dict[str, list[Cookie]] = {}
_login_locks: dict[str, gevent.lock.Semaphore] = {}


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--accounts-file", default="var/secrets/demo-accounts.json",
                        env_var="STOCKAFOLIO_DEMO_ACCOUNTS",
                        help="JSON list of accounts [{username, password, role, user_id}]")
    parser.add_argument("--no-think", action="store_true", default=False,
                        help="no pause between a user's requests: a capacity test, not a dashboard's pace")
    parser.add_argument("--max-fail-ratio", type=float, default=0.01,
                        help="fail the run (exit 1) above this share of failed requests (default 0.01)")


@events.test_start.add_listener
def _local_only(environment, **_kw) -> None:
    host = urlparse(environment.host or "").hostname
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to load-test {environment.host!r}: only 127.0.0.1 / localhost")


@events.quitting.add_listener
def _failure_guard(environment, **_kw) -> None:
    total = environment.stats.total
    limit = environment.parsed_options.max_fail_ratio
    if total.num_requests == 0:
        logging.error("no request was made")
        environment.process_exit_code = 1
    elif total.fail_ratio > limit:
        logging.error("failure ratio %.4f above the limit %.4f", total.fail_ratio, limit)
        environment.process_exit_code = 1


def accounts(environment, role: str) -> list[dict]:
    path = Path(environment.parsed_options.accounts_file)
    try:
        found = [a for a in json.loads(path.read_text()) if a.get("role") == role]
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read the accounts file {path}: {exc}") from None
    if not found:
        raise SystemExit(f"{path} has no account with role {role!r}")
    return found


class Dashboard(FastHttpUser):
    """Logs in once per account (shared by the users of that account), then reads the API."""

    abstract = True
    role = "user"
    home = "/me"
    paced = between(1, 3)   # a dashboard re-reads every few seconds, not in a tight loop

    def wait_time(self) -> float:
        return 0.0 if self.environment.parsed_options.no_think else self.paced()

    def on_start(self) -> None:
        account = random.choice(accounts(self.environment, self.role))
        name = account["username"]
        with _login_locks.setdefault(name, gevent.lock.Semaphore()):
            if name not in _logins:
                self._log_in(account)
                _logins[name] = list(self.client.cookiejar)
        for cookie in _logins[name]:
            self.client.cookiejar.set_cookie(cookie)

    def _log_in(self, account: dict) -> None:
        with self.client.get("/login", catch_response=True) as r:
            token = CSRF.search(r.text or "")
            if r.status_code != 200 or token is None:
                r.failure(f"login page: status {r.status_code}, csrf token {'found' if token else 'missing'}")
                raise StopUser
        form = {"username": account["username"], "password": account["password"],
                "csrf_token": token.group(1)}
        with self.client.post("/login", data=form, allow_redirects=False,
                              catch_response=True) as r:
            if r.status_code not in (302, 303) or not (r.headers.get("Location") or "").endswith(self.home):
                r.failure(f"login as {account['username']}: status {r.status_code}, "
                          f"location {r.headers.get('Location')!r}")
                raise StopUser

    def get_json(self, path: str, keys: tuple[str, ...], name: str | None = None) -> dict | None:
        with self.client.get(path, name=name or path.split("?")[0], catch_response=True,
                             headers={"Accept": "application/json"}) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}: {(r.text or '')[:200]}")
                return None
            try:
                body = r.json()
            except ValueError:
                r.failure("not JSON")
                return None
            missing = [k for k in keys if k not in body]
            if missing:
                r.failure(f"missing {missing}")
                return None
            return body

    def get_page(self, path: str, marker: str) -> None:
        with self.client.get(path, catch_response=True) as r:
            if r.status_code != 200 or marker not in (r.text or ""):
                r.failure(f"status {r.status_code}; page marker {marker!r} expected")


class PortfolioUser(Dashboard):
    weight = 9
    role = "user"
    home = "/me"

    @task(10)
    def portfolio(self) -> None:
        self.get_json("/api/v1/portfolio", ("totals", "risk", "holdings"))

    @task(3)
    def trades(self) -> None:
        self.get_json("/api/v1/portfolio/trades?limit=25", ("trades",))

    @task(2)
    def equity(self) -> None:
        self.get_json("/api/v1/portfolio/equity", ("day", "points"))

    @task(2)
    def prices(self) -> None:
        self.get_json("/api/v1/prices", ("as_of", "prices"))

    @task(1)
    def page(self) -> None:
        self.get_page("/me", 'id="holdings"')


class FirmAnalyst(Dashboard):
    weight = 1
    role = "firm"
    home = "/firm"

    @task(4)
    def activity(self) -> None:
        self.get_json("/api/v1/firm/activity", ("day", "minutes"))

    @task(4)
    def symbols(self) -> None:
        sort = random.choice(("trades", "notional", "net_flow"))
        self.get_json(f"/api/v1/firm/symbols?sort={sort}&limit=15", ("day", "symbols"))

    @task(2)
    def sectors(self) -> None:
        self.get_json("/api/v1/firm/sectors", ("day", "sectors"))

    @task(3)
    def health(self) -> None:
        self.get_json("/api/v1/firm/health", ("job", "batches"))

    @task(1)
    def top_users(self) -> None:
        self.get_json("/api/v1/firm/top-users?metric=trades", ("status", "users"))

    @task(1)
    def nightly(self) -> None:
        self.get_json("/api/v1/firm/nightly", ("status", "views"))

    @task(1)
    def page(self) -> None:
        self.get_page("/firm", 'id="activity-chart"')


class Bounded(LoadTestShape):
    """Ramp to -u users at -r per second, hold, and stop at -t (at most 10 minutes without -t)."""

    use_common_options = True
    MAX_SECONDS = 600

    def tick(self):
        opts = self.runner.environment.parsed_options
        limit = opts.run_time or self.MAX_SECONDS
        if self.get_run_time() >= limit:
            return None
        return opts.num_users or 10, opts.spawn_rate or 5
