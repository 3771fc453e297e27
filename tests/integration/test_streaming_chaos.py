"""Exactly once under kill -9: the streaming job runs as a real process while generator trades flow in;
the job, then Kafka, then Cassandra are killed with SIGKILL mid-run and started again. Once the job has
caught up, every user's holdings (quantity, cost basis, realized P&L, last trade), cash and the firm's
day totals equal what `stockafolio.accounting` computes from all the trades in the topic, to the share
and the cent: no trade lost, none applied twice. The stack is left healthy whatever happens."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from generator.clock import SessionClock
from generator.market import Market
from generator.trades import TradeGenerator
from stack import process, services
from stockafolio import accounting, cash, cql
from stockafolio.records import decode_trade, encode
from stockafolio.reference import load_factor_model, load_universe
from stockafolio.settings import Endpoints
from streaming import health
from tests.integration.conftest import create_topics, drop_topics, migrate_keyspace
from tests.unit.generator.conftest import DAY

REPO = Path(__file__).resolve().parents[2]
SEED, USERS, SECONDS, PER_SECOND = 5, 400, 60, 120  # 7,200 generator trades over ~60 s
PARTITIONS = 3
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.restarts_stack]


class Job:
    """`python -m streaming.job` as its own process group, restarted like a supervisor would."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.argv, self.log, self.env = argv, log, env
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=out, stderr=out,
                                         start_new_session=True)
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)
            self.proc.wait(60)

    def ensure_running(self) -> None:
        if not self.alive():
            self.start()


@pytest.fixture()
def names(endpoints: Endpoints, cassandra_session, unique: str) -> Iterator[dict[str, str]]:
    topics = {k: f"{unique}_{k}" for k in ("trades", "prices", "events", "dead")}
    create_topics(endpoints, list(topics.values()), PARTITIONS)
    ks = migrate_keyspace(cassandra_session, f"{unique}_ks"[:48])
    yield {**topics, "keyspace": ks}
    drop_topics(AdminClient({"bootstrap.servers": endpoints.kafka.bootstrap_servers}), list(topics.values()))
    with fresh_session(endpoints) as session:  # the shared session may still be reconnecting
        session.execute(f"DROP KEYSPACE IF EXISTS {ks}")


@contextlib.contextmanager
def fresh_session(endpoints: Endpoints) -> Iterator:
    cluster, session = cql.connect(endpoints.cassandra, timeout_s=30)
    try:
        yield session
    finally:
        cluster.shutdown()


def produce_in_background(endpoints: Endpoints, topic: str) -> threading.Thread:
    """Generator trades, one simulated second per wall second; the idempotent producer rides out the
    Kafka outage (its buffer waits for the broker)."""
    gen = TradeGenerator.create(Market.from_model(load_factor_model(), load_universe()), USERS, SEED,
                                run_id=77, clock=SessionClock(DAY))

    def run() -> None:
        producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers,
                             "enable.idempotence": True, "message.timeout.ms": 300_000})
        for _ in range(SECONDS):
            batch, _ = gen.generate(np.array([PER_SECOND]))
            for trade in batch.records():
                producer.produce(topic, key=str(trade.user_id), value=encode(trade))
            producer.poll(0)
            time.sleep(1.0)
        assert producer.flush(300) == 0

    thread = threading.Thread(target=run, name="producer", daemon=True)
    thread.start()
    return thread


def wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: S110 (a service is down on purpose; keep polling)
            pass
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def committed_batches(checkpoint: Path) -> list[int]:
    folder = checkpoint / "commits"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


def caught_up(checkpoint: Path, ends: dict[tuple[str, int], int]) -> bool:
    done = committed_batches(checkpoint)
    return bool(done) and health.lag(ends, health.batch_end_offsets(str(checkpoint), done[-1])) == 0


def topic_ends(endpoints: Endpoints, topic: str) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "group.id": "chaos-ends"})
    try:
        return {(topic, p): consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
                for p in range(PARTITIONS)}
    finally:
        consumer.close()


def read_topic(endpoints: Endpoints, topic: str, ends: dict[tuple[str, int], int]) -> pd.DataFrame:
    consumer = Consumer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "group.id": "chaos-read",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    trades, total = [], sum(ends.values())
    try:
        while len(trades) < total:
            trades += [decode_trade(m.value()) for m in consumer.consume(1000, timeout=2) if not m.error()]
    finally:
        consumer.close()
    return pd.DataFrame([t.__dict__ for t in trades])


def kill_service(stack_config, name: str) -> None:
    pid = process.running_pid(stack_config.run_dir, name)
    assert pid is not None, f"{name} is not running"
    os.killpg(pid, signal.SIGKILL)
    wait_for(f"{name} to die", lambda: not process.alive(pid), 30)


def batches_recorded(session, ks: str) -> int:
    return session.execute(f"SELECT count(*) FROM {ks}.batches_by_job WHERE job = 'portfolio'").one()[0]  # noqa: S608


def test_exactly_once_through_kill_9_of_job_kafka_and_cassandra(
        stack_config, endpoints: Endpoints, cassandra_session, names, tmp_path: Path) -> None:
    ks, checkpoint = names["keyspace"], tmp_path / "checkpoint"
    argv = [sys.executable, "-m", "streaming.job", "--keyspace", ks, "--checkpoint", str(checkpoint),
            "--trades-topic", names["trades"], "--prices-topic", names["prices"],
            "--events-topic", names["events"], "--dead-letter-topic", names["dead"], "--seed", str(SEED),
            "--trigger-seconds", "1", "--max-offsets-per-trigger", "1500",
            "--executor-write-users", "1"]  # the writes from the executors, as large batches do
    env = {**os.environ, "PYTHONPATH": str(REPO), "STOCKAFOLIO_VAR": str(stack_config.var)}
    job = Job(argv, tmp_path / "job.log", env)
    session = cassandra_session
    try:
        job.start()
        producer = produce_in_background(endpoints, names["trades"])
        wait_for("two batches", lambda: batches_recorded(session, ks) >= 2, 120)

        job.kill()  # mid-run: trades keep arriving, a batch is most likely in flight
        job.start()
        before = batches_recorded(session, ks)
        wait_for("a batch after the job's restart", lambda: batches_recorded(session, ks) > before, 120)

        kill_service(stack_config, "kafka")
        time.sleep(3)
        services.start_all(stack_config, out=lambda _: None)
        job.ensure_running()  # a supervisor restarts a job that gave up
        before = batches_recorded(session, ks)
        wait_for("a batch after Kafka's restart", lambda: batches_recorded(session, ks) > before, 120)

        kill_service(stack_config, "cassandra")
        time.sleep(3)
        services.start_all(stack_config, out=lambda _: None)
        job.ensure_running()
        producer.join(240)
        assert not producer.is_alive(), "the producer did not finish"

        ends = topic_ends(endpoints, names["trades"])
        assert sum(ends.values()) == SECONDS * PER_SECOND

        def all_caught_up() -> bool:
            job.ensure_running()
            return caught_up(checkpoint, ends)

        wait_for("the job to catch up", all_caught_up, 180)
        job.kill(signal.SIGTERM)
        with fresh_session(endpoints) as fresh:
            assert_exactly_once(fresh, ks, read_topic(endpoints, names["trades"], ends))
        print(f"job started {job.starts} times")  # shown with -s
    finally:
        job.kill()
        services.start_all(stack_config, out=lambda _: None)  # whatever was killed comes back
        assert services.all_healthy(stack_config)


def book(row) -> tuple[int, int, int, int]:
    return int(row.quantity), int(row.cost_basis_cents), int(row.realized_pnl_cents), int(row.last_trade_id)


def assert_exactly_once(session, ks: str, trades: pd.DataFrame) -> None:
    assert trades["trade_id"].is_unique
    opening = functools.partial(cash.opening_cash_cents, seed=SEED)
    want = accounting.apply_batch(trades, accounting.empty_holdings(), accounting.empty_cash(), opening)
    rows = list(session.execute(f"SELECT * FROM {ks}.portfolio_by_user"))  # noqa: S608
    assert {(r.user_id, r.symbol): book(r) for r in rows if r.symbol is not None} == {
        (r.user_id, r.symbol): book(r) for r in want.holdings.itertuples()}
    assert {r.user_id: r.cash_cents for r in rows} == dict(zip(want.cash["user_id"], want.cash["cash_cents"],
                                                                  strict=True))
    stored_trades = session.execute(f"SELECT count(*) FROM {ks}.trades_by_user_day").one()[0]  # noqa: S608
    assert stored_trades == len(trades)
    cents = trades["quantity"] * np.rint(trades["price"] * 100).astype(np.int64)
    want_totals = trades.assign(notional_cents=cents).groupby("symbol")[["quantity", "notional_cents"]].sum()
    got_totals = {r.symbol: (r.volume, r.notional_cents)
                  for r in session.execute(f"SELECT * FROM {ks}.symbol_totals_by_day")}  # noqa: S608
    assert got_totals == {s: (int(v.quantity), int(v.notional_cents)) for s, v in want_totals.iterrows()}
    # Q6: every trade once per minute, and each minute's distinct users
    minutes = pd.to_datetime(trades["event_time"], utc=True).dt.floor("min").dt.tz_convert(None)
    per_minute = trades.assign(minute=minutes).groupby("minute").agg(n=("trade_id", "size"),
                                                                     users=("user_id", "nunique"))
    got_minutes = {pd.Timestamp(r.minute): (r.trades, r.active_users)
                   for r in session.execute(f"SELECT * FROM {ks}.firm_activity_by_day")}  # noqa: S608
    assert got_minutes == {m: (int(v.n), int(v.users)) for m, v in per_minute.iterrows()}
