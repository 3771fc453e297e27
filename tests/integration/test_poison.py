"""No record can stop or corrupt the pipeline. While the generator runs (with its S3 archiver) and the
streaming job (with the market views) consumes, the poison corpus of tests/poison.py goes into the live
trades topic, with an out-of-order trade, a repeated trade id of the same user and another user's trade
id. Then: each bad record is a dead letter with the contract's reason, the archive holds every valid
trade and its quarantine every bad record, the job and the generator never stopped, every user's
holdings and cash equal the accounting of the valid trades of the log (in order), and the poisoned
user's next good trade is applied."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from stockafolio import accounting, cash, records
from stockafolio import s3 as s3lib
from stockafolio.reference import load_factor_model
from stockafolio.settings import Endpoints
from tests.integration.conftest import create_topics
from tests.integration.test_streaming_chaos import REPO, Job, caught_up, fresh_session, wait_for
from tests.poison import CORPUS, POISON_USER, good

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
PARTITIONS, SEED, USERS = 3, 4, 2_000
SYMBOLS = frozenset(load_factor_model().symbols)
OTHER_USER = POISON_USER + 1


@pytest.fixture()
def names(endpoints: Endpoints, cassandra_session, unique: str):
    from tests.integration.conftest import drop_topics, migrate_keyspace
    from tests.integration.test_generator import _delete_bucket

    topics = {k: f"{unique}_{k}" for k in ("trades", "prices", "events", "dead")}
    admin = create_topics(endpoints, list(topics.values()), PARTITIONS)
    made = {**topics, "keyspace": migrate_keyspace(cassandra_session, f"{unique}_ks"[:48]),
            "bucket": unique.replace("_", "-")[:63], "group": f"{unique}_archiver"}
    yield made
    drop_topics(admin, list(topics.values()))
    with fresh_session(endpoints) as session:
        session.execute(f"DROP KEYSPACE IF EXISTS {made['keyspace']}")
    _delete_bucket(endpoints, made["bucket"])


def poison_records() -> list[tuple[str, bytes | None, str | None]]:
    """(what, value, expected dead-letter code) in produce order, all keyed by the poisoned user
    (one partition, in order). The valid ones (code None) are the user's own trades."""
    first = good(trade_id=1_000, quantity=10, price=100.0)
    ordered = [("first good trade", first, None)]
    ordered += [(name, raw, code) for name, (raw, code) in CORPUS.items()]
    ordered += [
        ("out of order", good(trade_id=500, quantity=7), "out_of_order"),
        ("same id again", good(trade_id=1_000, quantity=99), "duplicate"),
        ("another user's id", good(trade_id=1_000, user_id=OTHER_USER, quantity=2, price=50.0), None),
        ("next good trade", good(trade_id=2_000, side="sell", quantity=4, price=110.0), None),
    ]
    return ordered


def produce_poison(endpoints: Endpoints, topic: str) -> None:
    producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "acks": "all",
                         "message.max.bytes": 2_000_000})
    for what, value, _code in poison_records():
        user = OTHER_USER if what == "another user's id" else POISON_USER
        producer.produce(topic, key=str(user), value=value)
        producer.poll(0)
    assert producer.flush(60) == 0


def read_all(endpoints: Endpoints, topic: str) -> list:
    """Every message of `topic` (value, partition, offset), without a consumer group's offsets."""
    consumer = Consumer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "group.id": "poison-read",
                         "enable.auto.commit": False, "fetch.message.max.bytes": 2_000_000})
    meta = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in meta}
    consumer.assign([TopicPartition(topic, p, 0) for p in meta])
    got: list = []
    try:
        while len(got) < sum(ends.values()):
            got += [m for m in consumer.consume(1000, timeout=2) if not m.error()]
    finally:
        consumer.close()
    return got


def expected_state(messages: list) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[int, int], str]]:
    """The accounting of the log's valid trades, each user's taken in Kafka order with the stream's
    rule (a trade id must rise above every id taken before): (holdings, cash, refused (partition,
    offset) -> code)."""
    rows, refused, top = [], {}, {}
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        if records.invalid_trade_reason(m.value(), SYMBOLS) is not None:
            continue
        trade = records.decode_trade(m.value())
        if trade.trade_id <= top.get(trade.user_id, 0):
            refused[(m.partition(), m.offset())] = ("duplicate" if trade.trade_id == top[trade.user_id]
                                                    else "out_of_order")
            continue
        top[trade.user_id] = trade.trade_id
        rows.append(trade.__dict__)
    opening = functools.partial(cash.opening_cash_cents, seed=SEED)
    want = accounting.apply_batch(pd.DataFrame(rows), accounting.empty_holdings(), accounting.empty_cash(),
                                  opening)
    return want.holdings, want.cash, refused


def s3_table(endpoints: Endpoints, bucket: str, prefix: str) -> pa.Table:
    s3 = s3lib.client(endpoints.s3)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys]
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def test_poison_records_are_dead_letters_and_nothing_stops(stack_config, endpoints: Endpoints, names,
                                                           tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "STOCKAFOLIO_VAR": str(stack_config.var)}
    checkpoint = tmp_path / "checkpoint"
    job = Job([sys.executable, "-m", "streaming.job", "--keyspace", names["keyspace"],
               "--checkpoint", str(checkpoint), "--trades-topic", names["trades"],
               "--prices-topic", names["prices"], "--events-topic", names["events"],
               "--dead-letter-topic", names["dead"], "--seed", str(SEED), "--trigger-seconds", "1",
               "--local-task-slots", "2"], tmp_path / "job.log", env)
    generator = [sys.executable, "-m", "generator", "live", "--var", str(stack_config.var),
                 "--bucket", names["bucket"], "--users", str(USERS), "--seed", str(SEED),
                 "--date", "2026-11-20", "--rate", "100", "--duration", "40", "--speed", "5",
                 "--trades-topic", names["trades"], "--prices-topic", names["prices"],
                 "--archive-group", names["group"], "--partitions", str(PARTITIONS)]
    job.start()
    with open(tmp_path / "generator.log", "wb") as log:
        gen = subprocess.Popen(generator, cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        time.sleep(15)
        produce_poison(endpoints, names["trades"])
        time.sleep(10)
        assert gen.poll() is None, "the generator (and its archiver) stopped after the poison"
        assert job.alive(), f"the job stopped after the poison: {(tmp_path / 'job.log').read_text()[-2000:]}"
        assert gen.wait(120) == 0, (tmp_path / "generator.log").read_text()[-3000:]

        messages = read_all(endpoints, names["trades"])
        ends = {(names["trades"], p): 0 for p in range(PARTITIONS)}
        for m in messages:
            key = (names["trades"], m.partition())
            ends[key] = max(ends[key], m.offset() + 1)
        wait_for("the job to catch up", lambda: caught_up(checkpoint, ends), 240)
        assert job.alive(), (tmp_path / "job.log").read_text()[-2000:]
        assert_dead_letters(endpoints, names["dead"], messages)
        assert_archive(endpoints, names["bucket"], messages)
        with fresh_session(endpoints) as session:
            assert_state(session, names["keyspace"], messages)
    finally:
        job.kill()
        if gen.poll() is None:
            gen.kill()


def assert_dead_letters(endpoints: Endpoints, topic: str, messages: list) -> None:
    """One dead letter per bad record (the contract's reason) and per refused trade, bounded in size."""
    letters = {}
    for m in read_all(endpoints, topic):
        letter = orjson.loads(m.value())
        assert len(m.value()) <= 16_384
        letters[(letter["partition"], letter["offset"])] = letter
    want = {}
    for m in messages:
        reason = records.invalid_trade_reason(m.value(), SYMBOLS)
        if reason is not None:
            want[(m.partition(), m.offset())] = reason
    _, _, refused = expected_state(messages)
    assert len(want) == len(CORPUS) and len(refused) == 2
    got = {k: v["reason"] for k, v in letters.items()}
    assert {k: got.get(k) for k in want} == want
    assert {k: records.reason_code(got.get(k)) for k in refused} == refused
    extra = {k: letters[k] for k in set(got) - set(want) - set(refused)}
    assert not extra, f"dead letters of records that are neither invalid nor refused: {extra}"
    huge = next(v for v in letters.values() if (v["raw_length"] or 0) >= 1_000_000)
    assert huge["raw_truncated"] and len(huge["raw_sha256"]) == 64


def assert_archive(endpoints: Endpoints, bucket: str, messages: list) -> None:
    """Every valid record archived once; every invalid one quarantined with its place and reason."""
    archived = s3_table(endpoints, bucket, "trades/")
    rows = zip(*(archived.column(c).to_pylist() for c in ("user_id", "trade_id", "quantity")), strict=True)
    valid = [records.decode_trade(m.value()) for m in messages
             if records.invalid_trade_reason(m.value(), SYMBOLS) is None]
    # the archive keeps the log's valid records, one row per record: out-of-order and repeated trades
    # too (the archiver knows no user's history; the nightly's dedup and the stream decide about them)
    assert Counter(rows) == Counter((t.user_id, t.trade_id, t.quantity) for t in valid)
    quarantine = s3_table(endpoints, bucket, "trades-quarantine/")
    got = {(p, o): code for p, o, code in zip(quarantine.column("partition").to_pylist(),
                                              quarantine.column("offset").to_pylist(),
                                              quarantine.column("reason_code").to_pylist(), strict=True)}
    want = {(m.partition(), m.offset()): records.reason_code(records.invalid_trade_reason(m.value(), SYMBOLS))
            for m in messages if records.invalid_trade_reason(m.value(), SYMBOLS) is not None}
    assert got == want


def assert_state(session, ks: str, messages: list) -> None:
    holdings, cash_rows, _ = expected_state(messages)
    rows = list(session.execute(f"SELECT * FROM {ks}.portfolio_by_user"))  # noqa: S608
    book = {(r.user_id, r.symbol): (r.quantity, r.cost_basis_cents, r.realized_pnl_cents, r.last_trade_id)
            for r in rows if r.symbol is not None}
    assert book == {(h.user_id, h.symbol): (h.quantity, h.cost_basis_cents, h.realized_pnl_cents,
                                            h.last_trade_id) for h in holdings.itertuples()}
    assert {r.user_id: r.cash_cents for r in rows} == dict(zip(cash_rows["user_id"], cash_rows["cash_cents"],
                                                                  strict=True))
    assert book[(POISON_USER, "AAPL")][0] == 6  # bought 10, the out-of-order 7 refused, sold 4
    assert book[(OTHER_USER, "AAPL")][0] == 2  # the same trade id on another user is its own trade
