"""Load test of the Stockafolio web app: the people who use it, as locust personas.

- `PortfolioUser` (weight 9): a retail user opening their dashboard: the page and the requests the
  browser makes when it loads (portfolio, recent trades, value curve, historical risk, S&P sectors),
  then `--rereads` re-reads (portfolio most, then trades, the value curve, prices).
- `FirmAnalyst` (weight 1): the firm's analyst opening the firm dashboard (activity, flows, health,
  top users, the nightly views), then re-reads.

A simulated user opens one dashboard after another, each time as the next account of its role from
--accounts-file (a JSON list [{username, password, role, user_id}], or the same list under
"accounts": the demo accounts `bin/stockafolio run` writes, or the 10,000 load-test accounts of
`bench/webapp_load.py --accounts N`), so the load spreads over every account of the file, as a
platform's traffic spreads over its users. An account is logged in once, on its first visit
(`--sign-in lazy`: the logins are part of the measured traffic) or all of them before the test
starts (`--sign-in first`, `--sign-in-concurrency` at a time); its session is then shared by every
visit (like the tabs of one browser) and, with --sessions-file, kept for the next run. Only failed
logins count against the web app's login limit, so any number of successful ones from this one
address are fine.

Every response is checked explicitly (status and shape). The shape is bounded: ramp to -u users at
-r per second, hold until -t, stop. At the end the run fails (exit 1) when the failure ratio exceeds
--max-fail-ratio or nothing was requested. --report FILE writes a JSON summary of the measured
window (from the statistics' reset on): distinct accounts visited, the sign-ins, and the hit ratio
of the web app's per-user cache, measured where it matters, in Cassandra: the share of the requests
for a user's own rows (portfolio, trades, value curve) that caused no read of those tables
(`system_views.coordinator_read_latency` counts, keyspace --keyspace, endpoints from
$STOCKAFOLIO_VAR; nothing else may read those tables meanwhile, i.e. the pipeline idle; a missed
trades request reads two days, so its reads count half), and those reads per request.

    locust -f tests/load/locustfile.py --headless -H http://127.0.0.1:8000 -u 20 -r 10 -t 30s \
        --accounts-file var/secrets/demo-accounts.json
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
import statistics
import sys
import time
from http.cookiejar import Cookie
from pathlib import Path
from urllib.parse import urlparse

import gevent
import gevent.lock
import gevent.pool
from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import StopUser

REPO = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The routes answered from the per-user cache (webapp/cache.py), and the tables they read on a miss:
# one partition each, except the trades (today's, then yesterday's unless today fills the limit: two
# reads a miss for nearly every user, so its reads count half when misses are counted).
CACHED_ROUTES = ("/api/v1/portfolio", "/api/v1/portfolio/trades", "/api/v1/portfolio/equity")
CACHED_TABLES = ("portfolio_by_user", "trades_by_user_day", "equity_by_user_day")


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--accounts-file", default="var/secrets/demo-accounts.json",
                        env_var="STOCKAFOLIO_DEMO_ACCOUNTS",
                        help="JSON list of accounts [{username, password, role, user_id}]")
    parser.add_argument("--no-think", action="store_true", default=False,
                        help="no pause between a user's requests: a capacity test, not a dashboard's pace")
    parser.add_argument("--max-fail-ratio", type=float, default=0.01,
                        help="fail the run (exit 1) above this share of failed requests (default 0.01)")
    parser.add_argument("--rereads", type=int, default=4,
                        help="requests of a visit after the dashboard has loaded (default 4)")
    parser.add_argument("--sign-in", choices=("lazy", "first"), default="lazy",
                        help="log each account in on its first visit, or all of them before the test")
    parser.add_argument("--sign-in-concurrency", type=int, default=16,
                        help="logins at a time with --sign-in first (default 16)")
    parser.add_argument("--sessions-file", default="",
                        help="keep the accounts' session cookies in this file for the next run (secret: "
                             "put it somewhere private and delete it afterwards)")
    parser.add_argument("--report", default="", help="write the run's JSON summary here (see the docstring)")
    parser.add_argument("--keyspace", default=os.environ.get("STOCKAFOLIO_KEYSPACE", "stockafolio"),
                        help="the web app's keyspace, for the cache hit ratio (default %(default)s)")


# ---------------------------------------------------------------- accounts and their sessions


class Accounts:
    """The accounts of the file, handed out in turn (each role's list shuffled once), and the session
    cookies of those logged in. One per locust process."""

    def __init__(self, accounts: list[dict]) -> None:
        self.by_name = {a["username"]: a for a in accounts}
        self._turns = {}
        for role in ("user", "firm"):
            mine = [a for a in accounts if a.get("role") == role]
            random.shuffle(mine)
            self._turns[role] = itertools.cycle(mine) if mine else None
        self.sessions: dict[str, list[Cookie]] = {}
        self._locks: dict[str, gevent.lock.Semaphore] = {}
        self.visited: set[str] = set()

    def next(self, role: str) -> dict:
        turns = self._turns.get(role)
        if turns is None:
            raise SystemExit(f"the accounts file has no account with role {role!r}")
        return next(turns)

    def lock(self, name: str) -> gevent.lock.Semaphore:
        return self._locks.setdefault(name, gevent.lock.Semaphore())


ACCOUNTS: Accounts | None = None


def read_accounts(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read the accounts file {path}: {exc}") from None
    found = data.get("accounts") if isinstance(data, dict) else data
    if not isinstance(found, list) or not found:
        raise SystemExit(f"{path} holds no accounts")
    return found


def sign_in(client: FastHttpSession, account: dict, home: str) -> str | None:
    """Log `client` in as `account` through the login form; None when it worked, else what failed
    (also marked as a failure in the statistics). The session cookie is then in client.cookiejar."""
    client.cookiejar.clear()
    with client.get("/login", catch_response=True) as r:
        token = CSRF.search(r.text or "")
        if r.status_code != 200 or token is None:
            r.failure(failed := f"login page: status {r.status_code}, "
                                f"csrf token {'found' if token else 'missing'}")
            return failed
    form = {"username": account["username"], "password": account["password"], "csrf_token": token.group(1)}
    with client.post("/login", data=form, allow_redirects=False, catch_response=True) as r:
        if r.status_code not in (302, 303) or not (r.headers.get("Location") or "").endswith(home):
            r.failure(failed := f"login as {account['username']}: status {r.status_code}, "
                                f"location {r.headers.get('Location')!r}")
            return failed
    return None


HOMES = {"user": "/me", "firm": "/firm"}


class Timings:
    """A request event hook that only keeps response times and failures (the sign-ins before the
    test: not part of the measured traffic)."""

    def __init__(self) -> None:
        self.ms: list[float] = []
        self.failures = 0

    def fire(self, *, response_time: float, exception: Exception | None = None, **_kw) -> None:
        self.ms.append(response_time)
        self.failures += exception is not None


def sign_in_all(environment, accounts: Accounts) -> dict | None:
    """Every account not yet logged in (--sign-in first), `--sign-in-concurrency` at a time; what it
    took, None if every account already had a session."""
    opts = environment.parsed_options
    todo = [a for name, a in accounts.by_name.items() if name not in accounts.sessions]
    if not todo:
        return None
    timings, began = Timings(), time.monotonic()
    queue = iter(todo)

    def worker() -> None:
        client = FastHttpSession(environment.host, timings, user=None)
        for account in queue:
            if sign_in(client, account, HOMES[account["role"]]) is None:
                accounts.sessions[account["username"]] = list(client.cookiejar)

    pool = gevent.pool.Pool(max(1, opts.sign_in_concurrency))
    for _ in range(max(1, opts.sign_in_concurrency)):
        pool.spawn(worker)
    pool.join()
    took = time.monotonic() - began
    done = sum(1 for a in todo if a["username"] in accounts.sessions)
    ms = sorted(timings.ms) or [0.0]
    summary = {"accounts": len(todo), "signed_in": done, "seconds": round(took, 1),
               "logins_per_s": round(done / took, 1) if took else None,
               "request_p50_ms": round(statistics.median(ms), 1),
               "request_p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
               "failed_requests": timings.failures}
    logging.warning("signed in %d of %d accounts in %.1f s", done, len(todo), took)
    if done < len(todo):
        raise SystemExit(f"only {done} of {len(todo)} accounts could log in; is the file's password right?")
    return summary


def load_sessions(path: str, accounts: Accounts) -> None:
    try:
        saved = json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return
    for name, cookies in saved.items():
        if name in accounts.by_name:
            accounts.sessions[name] = [_cookie(*c) for c in cookies]


def save_sessions(path: str, accounts: Accounts) -> None:
    data = {name: [[getattr(c, field) for field in COOKIE_FIELDS] + [c._rest] for c in cookies]
            for name, cookies in accounts.sessions.items()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)


# http.cookiejar.Cookie's arguments in order, before `rest` (its non-standard attributes)
COOKIE_FIELDS = ("version", "name", "value", "port", "port_specified", "domain", "domain_specified",
                 "domain_initial_dot", "path", "path_specified", "secure", "expires", "discard", "comment",
                 "comment_url")


def _cookie(*fields) -> Cookie:
    return Cookie(*fields)


# ---------------------------------------------------------------- the per-user cache, seen from Cassandra


class CassandraReads:
    """Reads per table of a keyspace so far, from Cassandra's own counters (a single node: the local
    stack)."""

    def __init__(self, keyspace: str) -> None:
        sys.path.insert(0, str(REPO))
        from cassandra.io.geventreactor import GeventConnection  # locust runs under gevent
        from stockafolio import cql
        from stockafolio.settings import Endpoints, default_var_dir

        self.keyspace = keyspace
        self.cluster, self.session = cql.connect(Endpoints.load(default_var_dir()).cassandra,
                                                 connection_class=GeventConnection)

    def counts(self) -> dict[str, int]:
        rows = self.session.execute("SELECT table_name, count FROM system_views.coordinator_read_latency "
                                    "WHERE keyspace_name = %s", (self.keyspace,))
        return {r.table_name: int(r.count) for r in rows}

    def close(self) -> None:
        self.cluster.shutdown()


RUN: dict = {}  # what the report says: set by the events below


@events.init.add_listener
def _prepare(environment, **_kw) -> None:
    global ACCOUNTS
    opts = environment.parsed_options
    if opts is None:  # imported by a tool, not run
        return
    ACCOUNTS = Accounts(read_accounts(Path(opts.accounts_file)))
    if opts.sessions_file:
        load_sessions(opts.sessions_file, ACCOUNTS)
    RUN.update(accounts_in_file=len(ACCOUNTS.by_name), sessions_reused=len(ACCOUNTS.sessions))
    if opts.sign_in == "first" and environment.host:
        _local_only(environment)
        if (took := sign_in_all(environment, ACCOUNTS)) is not None:
            RUN["sign_in"] = took
    if opts.report:
        RUN["cassandra"] = CassandraReads(opts.keyspace)


@events.test_start.add_listener
def _local_only(environment, **_kw) -> None:
    host = urlparse(environment.host or "").hostname
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"refusing to load-test {environment.host!r}: only 127.0.0.1 / localhost")


@events.spawning_complete.add_listener
def _window_opens(user_count: int, **_kw) -> None:
    """Where locust resets its statistics (--reset-stats): the measured window starts here."""
    if ACCOUNTS is not None:
        ACCOUNTS.visited.clear()
    if "cassandra" in RUN:
        RUN["reads_at_start"] = RUN["cassandra"].counts()


@events.test_stop.add_listener
def _window_closes(environment, **_kw) -> None:
    opts = environment.parsed_options
    if "cassandra" in RUN and "reads_at_start" in RUN:
        RUN["reads_at_end"] = RUN["cassandra"].counts()
    if opts.sessions_file and ACCOUNTS is not None:
        save_sessions(opts.sessions_file, ACCOUNTS)
    if opts.report:
        report = summary(environment)
        Path(opts.report).write_text(json.dumps(report, indent=2) + "\n")
        cache = report.get("user_cache") or {}
        logging.warning("%d distinct accounts visited; per-user cache hit ratio %s",
                        report["accounts_visited"], cache.get("hit_ratio"))


def summary(environment) -> dict:
    """The measured window: accounts visited, the sign-ins, the per-user cache's hit ratio."""
    stats = environment.stats
    out = {key: RUN[key] for key in ("accounts_in_file", "sessions_reused", "sign_in") if key in RUN}
    out["accounts_visited"] = len(ACCOUNTS.visited) if ACCOUNTS else 0
    out["requests"] = stats.total.num_requests
    start, end = RUN.get("reads_at_start"), RUN.get("reads_at_end")
    if start is not None and end is not None:
        reads = {t: end.get(t, 0) - start.get(t, 0) for t in end}
        entries = [stats.entries.get((route, "GET")) for route in CACHED_ROUTES]
        cached = sum(e.num_requests - e.num_failures for e in entries if e is not None)
        own_reads = sum(reads.get(t, 0) for t in CACHED_TABLES)
        misses = own_reads - reads.get("trades_by_user_day", 0) / 2
        out["user_cache"] = {"requests": cached, "cassandra_reads": own_reads,
                             "reads_per_request": round(own_reads / cached, 3) if cached else None,
                             "hit_ratio": round(1 - misses / cached, 4) if cached else None}
        out["cassandra_reads_per_request"] = round(sum(reads.values()) / out["requests"], 3) \
            if out["requests"] else None
        out["cassandra_reads_by_table"] = {t: n for t, n in sorted(reads.items()) if n}
    return out


@events.quitting.add_listener
def _failure_guard(environment, **_kw) -> None:
    if "cassandra" in RUN:
        RUN.pop("cassandra").close()
    total = environment.stats.total
    limit = environment.parsed_options.max_fail_ratio
    if total.num_requests == 0:
        logging.error("no request was made")
        environment.process_exit_code = 1
    elif total.fail_ratio > limit:
        logging.error("failure ratio %.4f above the limit %.4f", total.fail_ratio, limit)
        environment.process_exit_code = 1


# ---------------------------------------------------------------- personas


class Dashboard(FastHttpUser):
    """Opens the dashboard of one account after another (see the module docstring)."""

    abstract = True
    role = "user"
    paced = between(1, 3)   # a dashboard re-reads every few seconds, not in a tight loop
    rereads: tuple[tuple[str, int], ...] = ()  # (method name, weight)

    def wait_time(self) -> float:
        return 0.0 if self.environment.parsed_options.no_think else self.paced()

    @task
    def visit(self) -> None:
        self.become(ACCOUNTS.next(self.role))
        self.open_dashboard()
        names, weights = zip(*self.rereads, strict=True)
        for _ in range(self.environment.parsed_options.rereads):
            self.wait()
            getattr(self, random.choices(names, weights)[0])()

    def become(self, account: dict) -> None:
        """This user's next requests are `account`'s: its session, logged in now if it has none."""
        name = account["username"]
        with ACCOUNTS.lock(name):
            if name not in ACCOUNTS.sessions:
                if sign_in(self.client, account, HOMES[self.role]) is not None:
                    raise StopUser
                ACCOUNTS.sessions[name] = list(self.client.cookiejar)
        self.client.cookiejar.clear()
        for cookie in ACCOUNTS.sessions[name]:
            self.client.cookiejar.set_cookie(cookie)
        ACCOUNTS.visited.add(name)

    def open_dashboard(self) -> None:
        raise NotImplementedError

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
    rereads = (("portfolio", 10), ("trades", 3), ("equity", 2), ("prices", 2), ("page", 1))

    def open_dashboard(self) -> None:
        """What webapp/static/js/user.js asks for when the page loads."""
        self.page()
        self.get_json("/api/v1/portfolio?fresh=0", ("totals", "risk", "holdings"))
        self.get_json("/api/v1/portfolio/trades?limit=25&fresh=0", ("trades",))
        self.equity()
        self.get_json("/api/v1/portfolio/historical-risk", ("nights",))
        self.get_json("/api/v1/reference/sectors", ("sectors",))

    def portfolio(self) -> None:
        self.get_json("/api/v1/portfolio", ("totals", "risk", "holdings"))

    def trades(self) -> None:
        self.get_json("/api/v1/portfolio/trades?limit=25", ("trades",))

    def equity(self) -> None:
        self.get_json("/api/v1/portfolio/equity", ("day", "points"))

    def prices(self) -> None:
        self.get_json("/api/v1/prices", ("as_of", "prices"))

    def page(self) -> None:
        self.get_page("/me", 'id="holdings"')


class FirmAnalyst(Dashboard):
    weight = 1
    role = "firm"
    rereads = (("activity", 4), ("symbols", 4), ("sectors", 2), ("health", 3), ("top_users", 1),
               ("nightly", 1), ("page", 1))

    def open_dashboard(self) -> None:
        """What webapp/static/js/firm.js asks for when the page loads."""
        self.page()
        self.get_json("/api/v1/firm/symbols?sort=trades&limit=15", ("day", "symbols"))
        self.get_json("/api/v1/firm/symbols?sort=notional&limit=15", ("day", "symbols"))
        self.sectors()
        self.activity()
        self.top_users()
        self.get_json("/api/v1/firm/top-users?metric=notional", ("status", "users"))
        self.nightly()
        self.health()

    def activity(self) -> None:
        self.get_json("/api/v1/firm/activity", ("day", "minutes"))

    def symbols(self) -> None:
        sort = random.choice(("trades", "notional", "net_flow"))
        self.get_json(f"/api/v1/firm/symbols?sort={sort}&limit=15", ("day", "symbols"))

    def sectors(self) -> None:
        self.get_json("/api/v1/firm/sectors", ("day", "sectors"))

    def health(self) -> None:
        self.get_json("/api/v1/firm/health", ("job", "batches"))

    def top_users(self) -> None:
        self.get_json("/api/v1/firm/top-users?metric=trades", ("status", "users"))

    def nightly(self) -> None:
        self.get_json("/api/v1/firm/nightly", ("status", "views"))

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
