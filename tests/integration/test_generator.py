"""The generator against the real Kafka and S3 (MinIO): every trade in the topic is in the archive,
by id, and nothing is archived twice, also after an archiver crash; poison records in the topic go to
the quarantine and the archiver carries on; batch mode writes a day that reads back. Each test has its
own topics, consumer groups and bucket, and removes them."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from generator import archiver as archiver_module
from generator import cli
from generator.archive import QUARANTINE_SCHEMA, universe_symbols
from generator.trades import day_schedule
from stack.config import StackConfig
from stockafolio import s3 as s3lib
from stockafolio.records import TRADE_ARROW_SCHEMA, decode_trade, invalid_trade_reason
from stockafolio.reference import load_universe
from stockafolio.settings import Endpoints
from tests.integration.conftest import create_topics
from tests.poison import CORPUS, good

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def names(unique: str, endpoints: Endpoints) -> Iterator[dict[str, str]]:
    """Topics, group and bucket for one test; deleted afterwards."""
    made = {"trades": f"{unique}_trades", "prices": f"{unique}_prices", "group": f"{unique}_archiver",
            "bucket": unique.replace("_", "-")[:63]}
    yield made
    admin = AdminClient({"bootstrap.servers": endpoints.kafka.bootstrap_servers})
    topics = [t for t in (made["trades"], made["prices"]) if t in admin.list_topics(timeout=10).topics]
    if topics:
        for future in admin.delete_topics(topics).values():
            future.result(30)
    groups = {g.group_id for g in admin.list_consumer_groups().result(30).valid}
    doomed = [g for g in (made["group"], f"{made['trades']}_check", f"{made['prices']}_check") if g in groups]
    if doomed:
        for future in admin.delete_consumer_groups(doomed).values():
            future.result(30)
    _delete_bucket(endpoints, made["bucket"])


def _delete_bucket(endpoints: Endpoints, bucket: str) -> None:
    s3 = s3lib.client(endpoints.s3)
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    s3.delete_bucket(Bucket=bucket)


def _objects(endpoints: Endpoints, bucket: str, prefix: str) -> dict[str, bytes]:
    s3 = s3lib.client(endpoints.s3)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _archive(endpoints: Endpoints, bucket: str, prefix: str = "trades/") -> pa.Table:
    """Every archived row, after checking each object sits in its event time's date and hour."""
    tables = []
    for key, body in _objects(endpoints, bucket, prefix).items():
        table = pq.read_table(io.BytesIO(body))
        assert table.schema.equals(TRADE_ARROW_SCHEMA if prefix == "trades/" else table.schema), key
        if "event_time" in table.column_names and prefix == "trades/":
            hours = {t.strftime("date=%Y-%m-%d/hour=%H") for t in table.column("event_time").to_pylist()}
            assert hours == {"/".join(key.split("/")[1:3])}, key
        tables.append(table)
    return pa.concat_tables(tables) if tables else TRADE_ARROW_SCHEMA.empty_table()


def _topic(endpoints: Endpoints, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message, read from the beginning."""
    consumer = Consumer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "group.id": f"{topic}_check",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[tuple[bytes, bytes]] = []
    try:
        for _ in range(120):
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                assert msg.error() is None, msg.error()
                got.append((msg.key(), msg.value()))
            if len(got) >= expected:
                break
    finally:
        consumer.close()
    return got


def _common(stack_config: StackConfig, names: dict[str, str], *more: str) -> list[str]:
    return ["--var", str(stack_config.var), "--bucket", names["bucket"], "--users", "50000", "--seed", "3",
            "--date", "2026-11-20", *more]


def test_every_trade_in_the_topic_is_in_the_archive(endpoints: Endpoints, stack_config: StackConfig,
                                                    names: dict[str, str]) -> None:
    code = cli.main(["live", *_common(stack_config, names), "--rate", "20000", "--trades", "30000",
                     "--speed", "30", "--trades-topic", names["trades"], "--prices-topic", names["prices"],
                     "--archive-group", names["group"], "--partitions", "3"])
    assert code == 0

    messages = _topic(endpoints, names["trades"], 30_000)
    trades = [decode_trade(value) for _, value in messages]
    assert len(trades) == 30_000 and all(key == str(t.user_id).encode() for (key, _), t in zip(
        messages, trades, strict=True))
    archived = _archive(endpoints, names["bucket"]).column("trade_id").to_pylist()
    assert len(archived) == len(set(archived)), "a trade was archived twice"
    assert set(archived) == {t.trade_id for t in trades}

    ticks = _topic(endpoints, names["prices"], 45 * 503)  # 30,000 trades at 20,000/30 per second
    assert len(ticks) == 45 * 503 and {k.decode() for k, _ in ticks} == {s.symbol for s in load_universe()}


def test_an_archiver_crash_between_upload_and_commit_doubles_nothing(
        endpoints: Endpoints, stack_config: StackConfig, names: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["live", *_common(stack_config, names), "--rate", "20000", "--trades", "20000",
                     "--speed", "30", "--trades-topic", names["trades"], "--prices-topic", names["prices"],
                     "--no-archive"]) == 0
    archive_args = ["archive", "--var", str(stack_config.var), "--bucket", names["bucket"], "--topic",
                    names["trades"], "--group", names["group"], "--until-caught-up", "--batch-trades", "3000"]
    commits = {"n": 0}
    real_commit = archiver_module.TopicArchiver._commit

    def crash_on_third(self, partitions: np.ndarray, offsets: np.ndarray) -> None:
        commits["n"] += 1
        if commits["n"] == 3:
            raise KeyboardInterrupt("simulated crash after the upload, before the commit")
        real_commit(self, partitions, offsets)

    monkeypatch.setattr(archiver_module.TopicArchiver, "_commit", crash_on_third)
    assert cli.main(archive_args) == 130
    before = set(_objects(endpoints, names["bucket"], "trades/"))
    monkeypatch.setattr(archiver_module.TopicArchiver, "_commit", real_commit)
    assert cli.main(archive_args) == 0

    archived = _archive(endpoints, names["bucket"]).column("trade_id").to_pylist()
    assert len(archived) == len(set(archived)) == 20_000
    assert before <= set(_objects(endpoints, names["bucket"], "trades/"))  # rewritten, not added to


def test_poison_records_are_quarantined_and_the_archiver_carries_on(
        endpoints: Endpoints, stack_config: StackConfig, names: dict[str, str],
        capfd: pytest.CaptureFixture[str]) -> None:
    """Good trades with the poison corpus among them (a null value, 1 MB of control bytes, NaN,
    2**63...): `generator archive` exits 0, the archive holds every good trade and the quarantine
    every poison record, with the contract's reason, its bytes and where it was in Kafka."""
    create_topics(endpoints, [names["trades"]], partitions=2)
    goods = [good(trade_id=1_000 + i, user_id=1 + i % 50) for i in range(2_000)]
    records = list(goods)
    for n, (value, _) in enumerate(CORPUS.values()):
        records.insert(37 + 61 * n, value)
    producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "enable.idempotence": True,
                         "compression.type": "zstd", "message.max.bytes": 4_000_000})  # the 1 MB record
    for i, value in enumerate(records):
        producer.produce(names["trades"], value=value, key=b"k%d" % i, partition=i % 2)
    assert producer.flush(30) == 0

    code = cli.main(["archive", "--var", str(stack_config.var), "--bucket", names["bucket"], "--topic",
                     names["trades"], "--group", names["group"], "--until-caught-up",
                     "--batch-trades", "500"])
    captured = capfd.readouterr()
    assert code == 0 and "Traceback" not in captured.err
    archived = _archive(endpoints, names["bucket"]).column("trade_id").to_pylist()
    assert sorted(archived) == [1_000 + i for i in range(2_000)]

    rows = [row for body in _objects(endpoints, names["bucket"], "trades-quarantine/").values()
            for row in _quarantine_rows(body)]
    codes, valid = {value: code for value, code in CORPUS.values()}, set(goods)
    assert sorted((r["partition"], r["offset"]) for r in rows) == sorted(
        (i % 2, i // 2) for i, value in enumerate(records) if value not in valid)
    for row in rows:
        value = records[2 * row["offset"] + row["partition"]]  # partition i % 2, in order
        assert row["raw"] == value and row["key"] == b"k%d" % (2 * row["offset"] + row["partition"])
        assert row["reason"] == invalid_trade_reason(value, universe_symbols())
        assert row["reason_code"] == codes[value] and row["kafka_timestamp"] is not None
    where = f"s3://{names['bucket']}/trades-quarantine/"
    assert f"invalid records out of the archive, quarantined under {where}" in captured.out + captured.err
    assert f"{len(CORPUS)} invalid records left out" in captured.out


def _quarantine_rows(body: bytes) -> list[dict]:
    table = pq.read_table(io.BytesIO(body))
    assert table.schema.equals(QUARANTINE_SCHEMA)
    return table.to_pylist()


def test_batch_mode_writes_a_day_that_reads_back(endpoints: Endpoints, stack_config: StackConfig,
                                                 names: dict[str, str]) -> None:
    argv = ["batch", *_common(stack_config, names), "--trades", "400000", "--seconds", "7200",
            "--run-id", "4242", "--rows-per-object", "20000"]
    assert cli.main(argv) == 0
    first = _objects(endpoints, names["bucket"], "")
    table = _archive(endpoints, names["bucket"])
    ids = table.column("trade_id").to_pylist()
    assert len(ids) == len(set(ids)) == day_schedule(400_000)[:7200].sum()
    hours = sorted({k.split("/")[2] for k in first if k.startswith("trades/")})
    assert hours == ["hour=14", "hour=15", "hour=16"]  # 09:30-11:30 New York, in UTC
    prices = _archive(endpoints, names["bucket"], "prices/")
    assert len(prices) == 7200 * 503

    assert cli.main(argv) == 0  # a rerun with the same seed and run id rewrites the same bytes
    assert _objects(endpoints, names["bucket"], "") == first


def test_unreachable_s3_stops_the_live_run_cleanly(endpoints: Endpoints, stack_config: StackConfig,
                                                   names: dict[str, str], tmp_path: Path,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(stack_config.var / "endpoints", tmp_path / "endpoints")
    s3 = json.loads((tmp_path / "endpoints" / "s3.json").read_text())
    (tmp_path / "endpoints" / "s3.json").write_text(json.dumps({**s3, "endpoint_url": "http://127.0.0.1:9"}))
    code = cli.main(["live", "--var", str(tmp_path), "--bucket", names["bucket"], "--users", "1000",
                     "--rate", "1000", "--duration", "30", "--give-up", "3", "--trades-topic",
                     names["trades"], "--prices-topic", names["prices"], "--archive-group", names["group"]])
    captured = capfd.readouterr()  # the archiver process writes to the inherited stderr
    assert code == 1 and "Traceback" not in captured.err
    assert "S3 at http://127.0.0.1:9 unreachable" in captured.err
    assert "the trades are safe in Kafka" in captured.out + captured.err
