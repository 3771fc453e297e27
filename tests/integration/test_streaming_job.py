"""The streaming job against the real stack: trades in, exact holdings out; malformed records to the
dead-letter topic; re-reading the whole topic from a fresh checkpoint changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer

from stockafolio.records import PriceTick, Trade, encode
from stockafolio.settings import Endpoints
from streaming import job
from tests.integration.conftest import create_topics, drop_topics
from tests.unit.streaming.test_accounting import reference

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
OPENING_CENTS = 10_000_000
# pyspark 3.5's pandas conversions call distutils and pandas APIs that pandas 2.2 deprecates (warnings
# are errors here); they are pyspark's, raised in the job's foreachBatch thread.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
MALFORMED = {
    b"not json": "bad_json",
    b'{"trade_id":1,"user_id":1,"symbol":"NOPE","side":"buy","quantity":1,"price":1.0,'
    b'"event_time":"2026-11-20T14:30:00.000Z","schema_version":1}': "unknown_symbol",
    b'{"trade_id":2,"user_id":1,"symbol":"AAPL","side":"hold","quantity":1,"price":1.0,'
    b'"event_time":"2026-11-20T14:30:00.000Z","schema_version":1}': "bad_side",
    b'{"trade_id":3,"user_id":1,"symbol":"AAPL","side":"buy","quantity":-5,"price":1.0,'
    b'"event_time":"2026-11-20T14:30:00.000Z","schema_version":1}': "non_positive",
}


def random_trades(n: int = 240) -> list[Trade]:
    rng = np.random.default_rng(11)
    return [Trade(trade_id=1000 + i, user_id=int(rng.integers(1, 5)),
                  symbol=str(rng.choice(["AAPL", "MSFT"])),
                  side="buy" if rng.random() < 0.6 else "sell", quantity=int(rng.integers(1, 40)),
                  price=round(float(rng.uniform(50, 400)), 2), event_time=T0 + timedelta(seconds=i))
            for i in range(n)]


@pytest.fixture()
def topics(endpoints: Endpoints, unique: str):
    names = {"trades": unique, "dead": f"{unique}_dead", "events": f"{unique}_events",
             "prices": f"{unique}_prices"}
    admin = create_topics(endpoints, list(names.values()))
    yield names
    drop_topics(admin, list(names.values()))



def produce(endpoints: Endpoints, topic: str, trades: list[Trade]) -> None:
    producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "enable.idempotence": True})
    for trade in trades:
        producer.produce(topic, key=str(trade.user_id), value=encode(trade))
    for raw in MALFORMED:
        producer.produce(topic, key="1", value=raw)
    assert producer.flush(30) == 0


def run_job(spark, settings: job.JobSettings) -> None:
    query = job.start(spark, settings, available_now=True)
    query.awaitTermination(300)
    assert query.exception() is None


def stored(session, ks: str) -> tuple[dict, dict]:
    rows = list(session.execute(f"SELECT * FROM {ks}.portfolio_by_user"))  # noqa: S608 (test keyspace)
    book = {(r.user_id, r.symbol): (r.quantity, r.cost_basis_cents, r.realized_pnl_cents, r.last_trade_id)
            for r in rows}
    return book, {r.user_id: r.cash_cents for r in rows}


def consume(endpoints: Endpoints, topic: str, group: str, expected: int) -> list[dict]:
    consumer = Consumer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "group.id": group,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[dict] = []
    try:
        for _ in range(60):
            got += [orjson.loads(m.value()) for m in consumer.consume(100, timeout=1) if not m.error()]
            if len(got) >= expected:
                break
    finally:
        consumer.close()
    return got


def test_trades_in_exact_holdings_out(spark, endpoints: Endpoints, cassandra_session, topics, keyspace,
                                      unique: str, tmp_path: Path) -> None:
    trades = random_trades()
    produce(endpoints, topics["trades"], trades)
    prices = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers})
    tick = PriceTick("AAPL", 200.0, datetime(2026, 11, 20, 14, 29, tzinfo=UTC))
    prices.produce(topics["prices"], encode(tick), b"AAPL")
    assert prices.flush(30) == 0  # the job's price feed reads the topic's tail before its first batch
    settings = job.JobSettings(endpoints.kafka.bootstrap_servers, keyspace, str(tmp_path / "first"),
                               cassandra=endpoints.cassandra, trades_topic=topics["trades"],
                               prices_topic=topics["prices"],
                               dead_letter_topic=topics["dead"],
                               events_topic=topics["events"], max_offsets_per_trigger=60,
                               opening_cash_cents=OPENING_CENTS,
                               executor_write_users=1,  # every batch written from the executors ...
                               driver_read_users=0)     # ... after reading through the direct join
    run_job(spark, settings)

    frame = pd.DataFrame([t.__dict__ for t in trades])
    expected = reference(frame, opening=OPENING_CENTS)
    assert stored(cassandra_session, keyspace) == expected
    assert_driver_read_equals_direct_join(spark, cassandra_session, keyspace, users=[1, 2, 3, 4, 999])

    # the whole topic again, from a fresh checkpoint in one batch: every trade is a replay. The
    # checkpoint is on HDFS, as on the cluster: the batch health still finds its end offsets there.
    again = f"{endpoints.hdfs.url.rstrip('/')}/tmp/stockafolio-tests/{unique}/checkpoint"
    try:
        run_job(spark, job.JobSettings(**{**settings.__dict__, "checkpoint": again,
                                          "max_offsets_per_trigger": 10_000,
                                          "executor_write_users": 10**9,  # written from the driver,
                                          "driver_read_users": 10**9}))   # read through the driver
        assert stored(cassandra_session, keyspace) == expected
        (health,) = cassandra_session.execute(f"SELECT input_rows, kafka_lag FROM {keyspace}.batches_by_job "  # noqa: S608
                                              "WHERE job = 'portfolio' AND batch_id = 0")
        assert (health.input_rows, health.kafka_lag) == (len(trades) + len(MALFORMED), 0)
        # the first run's batches 1.. belonged to the deleted checkpoint: gone, so Q8's newest row is
        # this run's
        kept = [r.batch_id for r in cassandra_session.execute(
            f"SELECT batch_id FROM {keyspace}.batches_by_job WHERE job = 'portfolio'")]  # noqa: S608
        assert kept == [0]
    finally:
        jvm = spark._jvm
        path = jvm.org.apache.hadoop.fs.Path(again).getParent()
        path.getFileSystem(spark._jsc.hadoopConfiguration()).delete(path, True)

    dead = consume(endpoints, topics["dead"], f"{unique}_d", expected=2 * len(MALFORMED))
    reasons = {d["raw"]: d["reason"].split(":")[0] for d in dead}
    assert reasons == {k.decode(): v for k, v in MALFORMED.items()}
    events = consume(endpoints, topics["events"], f"{unique}_e", expected=4)
    assert {e["user_id"] for e in events} == {t.user_id for t in trades}
    query = (f"SELECT market_value_cents, unrealized_pnl_cents, cost_basis_cents, quantity "  # noqa: S608
             f"FROM {keyspace}.portfolio_by_user WHERE user_id = 1 AND symbol = 'AAPL'")
    (aapl,) = cassandra_session.execute(query)
    assert aapl.market_value_cents == aapl.quantity * 20_000
    assert aapl.unrealized_pnl_cents == aapl.market_value_cents - aapl.cost_basis_cents


def assert_driver_read_equals_direct_join(spark, session, keyspace: str, users: list[int]) -> None:
    """The two ways a batch reads its users' prior state give the same frame (columns the state uses,
    types included), a user without a partition giving no row in both."""
    from streaming import store

    joined = store.portfolios_of(spark, keyspace, users)[list(store.PRIOR_COLUMNS)]
    read = store.PriorReader(session, keyspace).read(users)
    order = ["user_id", "symbol"]
    joined = joined.sort_values(order, na_position="first").reset_index(drop=True)
    read = read.sort_values(order, na_position="first").reset_index(drop=True)
    assert len(read) >= 4 and 999 not in set(read["user_id"])
    pd.testing.assert_frame_equal(read, joined)


def test_driver_parse_of_canonical_trades_equals_the_jvm_parse(spark, endpoints: Endpoints, topics) -> None:
    """On a batch of generator-encoded trades (some odd but canonical values: an integral price, ids
    near the int64 limit) the driver's parse gives the JVM's frame exactly; one malformed record
    anywhere sends the whole batch back to the JVM."""
    from streaming import parse
    from streaming.job import collect

    trades = [*random_trades(50),
        Trade(trade_id=(1 << 63) - 1, user_id=(1 << 62), symbol="MSFT", side="sell", quantity=1, price=100,
              event_time=T0),
        Trade(trade_id=7, user_id=1, symbol="AAPL", side="buy", quantity=3, price=0.01,
              event_time=T0 + timedelta(milliseconds=999))]
    producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers})
    for trade in trades:
        producer.produce(topics["trades"], key=str(trade.user_id), value=encode(trade))
    assert producer.flush(30) == 0
    symbols = ["AAPL", "MSFT"]
    job._configure(spark)  # Arrow conversions, as in the job
    raw = (spark.read.format("kafka").option("kafka.bootstrap.servers", endpoints.kafka.bootstrap_servers)
           .option("subscribe", topics["trades"]).option("startingOffsets", "earliest").load())
    fast = parse.canonical_trades(parse.collect_raw(raw), frozenset(symbols))
    assert fast is not None and len(fast) == len(trades)
    jvm = collect(parse.parse_trades(raw, symbols))
    order = ["partition", "offset"]
    pd.testing.assert_frame_equal(fast.sort_values(order).reset_index(drop=True),
                                  jvm.sort_values(order).reset_index(drop=True))

    collected = parse.collect_raw(raw)
    for bad in MALFORMED:
        middle = len(collected) // 2
        batch = collected.assign(value=[bad if i == middle else v for i, v in enumerate(collected["value"])])
        assert parse.canonical_trades(batch, frozenset(symbols)) is None
