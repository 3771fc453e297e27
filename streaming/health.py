"""What `batches_by_job` records about each micro-batch besides its counts: the input rate, the Kafka
lag left behind it and the trade-to-Cassandra latency of its trades.

- the batch's end offsets are those Spark wrote to `<checkpoint>/offsets/<batch id>` before running it
  (exact for every partition, also those the batch read nothing from);
- lag = sum over partitions of (Kafka's end offset now - the batch's end offset), taken when the batch
  has written everything;
- latency of a trade = (time its batch's Cassandra writes finished) - (its Kafka record timestamp).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, KafkaException, TopicPartition
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from stockafolio.settings import KafkaAuth, kafka_client_config

PERCENTILES = (50, 95, 99)
Offsets = dict[tuple[str, int], int]


def batch_end_offsets(checkpoint: str, batch_id: int, read: Callable[[str], str] | None = None) -> Offsets:
    """(topic, partition) -> the offset the batch reads up to (exclusive), from Spark's offsets log.
    `read` reads a file of the checkpoint (default: a local folder; the job passes `hadoop_reader`, so
    an hdfs:// or s3a:// checkpoint works too)."""
    path = f"{checkpoint.rstrip('/')}/offsets/{batch_id}"
    lines = (read(path) if read else Path(path).read_text()).splitlines()
    sources = json.loads(lines[-1])
    return {(topic, int(p)): int(o) for topic, parts in sources.items() for p, o in parts.items()}


def hadoop_reader(spark: SparkSession) -> Callable[[str], str]:
    """Reads a whole text file through Spark's Hadoop file systems (file:, hdfs:, s3a:), as Spark itself
    reads its checkpoint; raises OSError when the file cannot be read."""
    jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()  # the py4j gateway to the JVM

    def read(path: str) -> str:
        try:
            hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
            stream = hadoop_path.getFileSystem(conf).open(hadoop_path)
            try:
                return jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
            finally:
                stream.close()
        except Py4JJavaError as exc:
            raise OSError(f"cannot read {path}: {exc.java_exception}") from None
    return read


def lag(ends: Mapping[tuple[str, int], int], processed: Mapping[tuple[str, int], int]) -> int:
    """Records in Kafka not yet processed: per partition end minus processed, never negative."""
    return int(sum(max(0, end - processed.get(key, 0)) for key, end in ends.items()))


def latency_ms(kafka_times: pd.Series, finished: datetime) -> tuple[float | None, ...]:
    """p50, p95, p99 of (finished - Kafka timestamp) in milliseconds; Nones without trades."""
    if kafka_times.empty:
        return (None,) * len(PERCENTILES)
    stamps = pd.to_datetime(kafka_times, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    end = np.datetime64(pd.Timestamp(finished).tz_convert("UTC").tz_localize(None), "us")
    ms = (end - stamps).astype(np.int64) / 1000
    return tuple(float(v) for v in np.percentile(ms, PERCENTILES))


def input_rate(rows: int, started: datetime, previous_start: datetime | None) -> float | None:
    """Rows per second since the previous batch started (Spark's definition); None for the first."""
    if previous_start is None:
        return None
    return rows / max((started - previous_start).total_seconds(), 1e-3)


class KafkaEnds:
    """End offsets of a topic's partitions (no consumer group, nothing committed)."""

    def __init__(self, bootstrap: str, auth: KafkaAuth | None = None) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "stockafolio-lag-probe",
                                  "enable.auto.commit": False, **kafka_client_config(auth)})

    def ends(self, partitions: list[tuple[str, int]], timeout_s: float = 5.0) -> Offsets | None:
        """None when Kafka does not answer (the batch still records its other figures)."""
        try:
            return {(t, p): self.consumer.get_watermark_offsets(TopicPartition(t, p), timeout_s)[1]
                    for t, p in partitions}
        except KafkaException:
            return None
