"""The driver's read of a micro-batch's records straight from Kafka against Spark's own: in every
batch of a real Kafka source (batch 0, the batches of a restarted query, a partition added in between)
`RangeReader.read(batch_ranges(...))` is the frame `collect_raw` gives; records Kafka no longer has are
an error, never fewer records."""

from __future__ import annotations

import pandas as pd
import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import NewPartitions

from stockafolio.settings import Endpoints, kafka_client_config, spark_kafka_options
from streaming import health
from streaming.parse import collect_raw
from streaming.source import EARLIEST, MissingRecords, RangeReader, batch_ranges
from tests.integration.conftest import create_topics, drop_topics

# pyspark 3.5's pandas conversions call APIs that pandas 2.2 deprecates (warnings are errors here)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PER_BATCH = 70  # maxOffsetsPerTrigger: several batches from a few hundred records


@pytest.fixture()
def topic(endpoints: Endpoints, unique: str):
    admin = create_topics(endpoints, [unique], partitions=2)
    yield unique, admin
    drop_topics(admin, [unique])


@pytest.fixture()
def reader(endpoints: Endpoints):
    reader = RangeReader(endpoints.kafka.bootstrap_servers, kafka_client_config(endpoints.kafka.auth))
    yield reader
    reader.close()


def produce(endpoints: Endpoints, topic: str, numbers: range, partitions: int) -> None:
    """Records of varied sizes, a few tombstones and a few with an old creation time (ms precision)."""
    producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "enable.idempotence": True,
                         **kafka_client_config(endpoints.kafka.auth)})
    for n in numbers:
        value = None if n % 37 == 5 else f'{{"n":{n},"pad":"{"x" * (n % 50)}"}}'.encode()
        stamp = {"timestamp": 1_000_000_000_123 + n} if n % 11 == 3 else {}
        producer.produce(topic, key=str(n), value=value, partition=n % partitions, **stamp)
    assert producer.flush(30) == 0


class Compare:
    """foreachBatch: Spark's frame of the batch, and the reader's of the batch's range in the checkpoint."""

    def __init__(self, spark, checkpoint: str, reader: RangeReader) -> None:
        self.checkpoint, self.reader = checkpoint, reader
        self.read_checkpoint = health.hadoop_reader(spark)  # as the job reads it (hdfs:// too)
        self.batches: list[tuple[int, dict, pd.DataFrame, pd.DataFrame]] = []
        self.empty: tuple[pd.DataFrame, pd.DataFrame] | None = None

    def __call__(self, raw, batch_id: int) -> None:
        ranges = batch_ranges(self.checkpoint, batch_id, self.read_checkpoint)
        self.batches.append((batch_id, ranges, collect_raw(raw), self.reader.read(ranges)))
        if self.empty is None:
            self.empty = (collect_raw(raw.limit(0)), self.reader.read({}))


def run_query(spark, endpoints: Endpoints, topic: str, compare: Compare) -> None:
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")  # as the job's collect_raw runs
    spark.conf.set("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
    raw = (spark.readStream.format("kafka")  # the job's source options
           .option("kafka.bootstrap.servers", endpoints.kafka.bootstrap_servers)
           .options(**spark_kafka_options(endpoints.kafka.auth)).option("subscribe", topic)
           .option("startingOffsets", "earliest").option("maxOffsetsPerTrigger", PER_BATCH).load())
    query = (raw.writeStream.foreachBatch(compare).option("checkpointLocation", compare.checkpoint)
             .trigger(availableNow=True).start())
    query.awaitTermination(300)
    assert query.exception() is None


def test_every_batch_reads_the_records_spark_gives_it(spark, endpoints: Endpoints, topic, reader,
                                                      tmp_path) -> None:
    name, admin = topic
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"  # kafka_time is naive UTC
    compare = Compare(spark, str(tmp_path / "checkpoint"), reader)
    produce(endpoints, name, range(250), partitions=2)
    run_query(spark, endpoints, name, compare)
    first_run = len(compare.batches)
    for future in admin.create_partitions([NewPartitions(name, 3)]).values():
        future.result(30)
    produce(endpoints, name, range(250, 370), partitions=3)
    run_query(spark, endpoints, name, compare)  # a restart: batch ids go on from the offsets log

    assert first_run >= 3 and len(compare.batches) > first_run
    assert [batch_id for batch_id, *_ in compare.batches] == list(range(len(compare.batches)))
    for batch_id, _, by_spark, by_reader in compare.batches:
        assert not by_spark.empty, batch_id
        pd.testing.assert_frame_equal(by_reader, by_spark.sort_values(["partition", "offset"])
                                      .reset_index(drop=True), obj=f"batch {batch_id}")
    pd.testing.assert_frame_equal(*compare.empty)
    assert any(start == EARLIEST for _, ranges, *_ in compare.batches for start, _ in ranges.values())
    read = pd.concat([by_reader for *_, by_reader in compare.batches])
    assert len(read) == 370 and not read.duplicated(["partition", "offset"]).any()


def test_records_kafka_deleted_are_missing_not_skipped(endpoints: Endpoints, topic, reader) -> None:
    name, admin = topic
    produce(endpoints, name, range(20), partitions=2)
    for future in admin.delete_records([TopicPartition(name, 0, 5)]).values():
        future.result(30)
    with pytest.raises(MissingRecords, match=rf"needs offsets \[0, 10\) of topic {name} partition 0, Kafka "
                                             r"holds \[5, 10\): records \[0, 5\) are below the log start"):
        reader.read({(name, 0): (0, 10), (name, 1): (0, 10)})
    assert reader.read({(name, 0): (5, 10), (name, 1): (0, 10)})["offset"].tolist() == [5, 6, 7, 8, 9,
                                                                                        *range(10)]


def test_a_range_past_the_log_end_is_missing_records_not_a_hang(endpoints: Endpoints, topic) -> None:
    name, _ = topic
    produce(endpoints, name, range(20), partitions=2)
    reader = RangeReader(endpoints.kafka.bootstrap_servers, kafka_client_config(endpoints.kafka.auth),
                         timeout_s=1.0)
    try:
        with pytest.raises(MissingRecords, match=r"records \[10, 12\) are beyond the log end"):
            reader.read({(name, 1): (8, 12)})
    finally:
        reader.close()
