"""The real web stack for browser and load tests, per test module: a migrated keyspace of its own,
unique Kafka topics, demo accounts, the streaming job and the web app as subprocesses (each with
its log under the test's tmp folder, shown when it fails to start)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from stack.cli import LOCAL_REPLICATION
from stockafolio import cql, migrations
from stockafolio.records import RUN_EPOCH, PriceTick, Trade, encode, trade_id
from stockafolio.settings import Endpoints

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"   # test accounts only, in a keyspace dropped afterwards
OPENING_CASH = 100_000.0


@dataclass(frozen=True)
class Topics:
    trades: str
    prices: str
    events: str
    dead: str

    def all(self) -> list[str]:
        return [self.trades, self.prices, self.events, self.dead]


@dataclass(frozen=True)
class Server:
    url: str
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def keyspace(endpoints: Endpoints, name: str) -> Iterator[str]:
    cluster, session = cql.connect(endpoints.cassandra)
    try:
        migrations.apply(session, name, migrations.load(REPO / "cassandra" / "migrations"), LOCAL_REPLICATION)
        yield name
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {name}")
        cluster.shutdown()


@contextmanager
def kafka_topics(endpoints: Endpoints, prefix: str) -> Iterator[Topics]:
    names = Topics(f"{prefix}_trades", f"{prefix}_prices", f"{prefix}_events", f"{prefix}_dead")
    admin = AdminClient({"bootstrap.servers": endpoints.kafka.bootstrap_servers})
    for future in admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)
                                       for t in names.all()]).values():
        future.result(30)
    try:
        yield names
    finally:
        for future in admin.delete_topics(names.all()).values():
            future.result(30)


def seed_accounts(endpoints: Endpoints, ks: str, users: dict[str, int], analyst: str) -> None:
    """User accounts (name -> simulated user id) and one firm analyst, through the web app's own
    account code (hashing, validation) and store."""
    from webapp import accounts
    from webapp.store import Store

    store = Store(endpoints.cassandra, ks)
    try:
        for name, user_id in users.items():
            accounts.create(store, name, PASSWORD, "user", user_id, method="pbkdf2:sha256:1000")
        accounts.create(store, analyst, PASSWORD, "firm", None, method="pbkdf2:sha256:1000")
    finally:
        store.close()


class TradeFeed:
    """Trades and price ticks into the test topics, with increasing trade ids and event time now."""

    def __init__(self, endpoints: Endpoints, topics: Topics) -> None:
        self.topics = topics
        self.producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers,
                                  "enable.idempotence": True, "linger.ms": 0})
        self.run = int((datetime.now(UTC) - RUN_EPOCH).total_seconds())
        self.sequence = 0

    def trade(self, user_id: int, symbol: str, side: str, quantity: int, price: float) -> Trade:
        self.sequence += 1
        t = Trade(trade_id(self.run, self.sequence), user_id, symbol, side, quantity,  # type: ignore[arg-type]
                  price, datetime.now(UTC))
        self.producer.produce(self.topics.trades, key=str(user_id), value=encode(t))
        return t

    def prices(self, prices: dict[str, float]) -> None:
        now = datetime.now(UTC)
        for symbol, price in prices.items():
            self.producer.produce(self.topics.prices, key=symbol, value=encode(PriceTick(symbol, price, now)))

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "Kafka did not acknowledge every test record"


def _env(ks: str) -> dict[str, str]:
    return {**os.environ, "STOCKAFOLIO_KEYSPACE": ks, "PYTHONUNBUFFERED": "1"}


@contextmanager
def process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@contextmanager
def streaming_job(ks: str, topics: Topics, checkpoint: Path, log: Path) -> Iterator[subprocess.Popen]:
    argv = [sys.executable, "-m", "streaming.job", "--keyspace", ks, "--checkpoint", str(checkpoint),
            "--trades-topic", topics.trades, "--prices-topic", topics.prices,
            "--events-topic", topics.events, "--dead-letter-topic", topics.dead,
            "--opening-cash", str(OPENING_CASH), "--trigger-seconds", "1"]
    with process(argv, log, _env(ks)) as proc:
        yield proc


def webapp_argv(port: int, ks: str, topics: Topics | None) -> list[str]:
    """One gunicorn worker (the tests share 2 cores); the vendor folder is the app's default, the
    one `vendor_dir()` installs."""
    argv = [sys.executable, "-m", "webapp", "--host", "127.0.0.1", "--port", str(port), "--keyspace", ks,
            "--workers", "1"]
    if topics is not None:
        argv += ["--events-topic", topics.events]
    return argv


@contextmanager
def webapp(ks: str, topics: Topics | None, log: Path, extra: Iterable[str] = ()) -> Iterator[Server]:
    vendor_dir()
    port = free_port()
    with process([*webapp_argv(port, ks, topics), *extra], log, _env(ks)) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", proc, log)
        yield Server(url, log)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[:3]} exited with {proc.returncode}:\n{tail(log)}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s:\n{tail(log)}")


def wait_for(check, what: str, timeout: float, procs: dict[str, tuple[subprocess.Popen, Path]]):
    """Poll `check()` until it returns something truthy; fail early (with its log) if a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, (proc, log) in procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                                     f"{tail(log)}")
        found = check()
        if found:
            return found
        time.sleep(0.5)
    logs = "\n".join(f"--- {name}\n{tail(log, 15)}" for name, (_, log) in procs.items())
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def login(url: str, username: str) -> requests.Session:
    """A logged-in HTTP session (the same form the browser posts)."""
    import re

    s = requests.Session()
    page = s.get(f"{url}/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, f"no CSRF token on the login page (status {page.status_code})"
    form = {"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    r = s.post(f"{url}/login", data=form, allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303), f"login as {username}: {r.status_code} {r.text[:200]}"
    return s


def chromium_path() -> Path:
    from stack import tools

    return tools.chromium()


def vendor_dir() -> Path:
    from stack import tools
    from stack.config import StackConfig

    return tools.npm_assets(StackConfig.from_env())
