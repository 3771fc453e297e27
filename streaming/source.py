"""A micro-batch's Kafka records, read by the driver straight from Kafka with librdkafka.

Why: `parse.collect_raw` brings a batch's records to the driver with a Spark job, the largest fixed
cost of a micro-batch. The driver reads exactly the same records itself, from the offset range Spark
planned for that batch id and wrote to the checkpoint before running it; a replayed batch id has the
same range, so exactly-once is unchanged.

Where Spark 3.5's Kafka source (spark-sql-kafka-0-10) takes a batch's range from:
- end (exclusive): the last line of `<checkpoint>/offsets/<batch id>` (`health.batch_end_offsets`);
- start: the end of the batch before (`offsets/<batch id - 1>`: Spark purges only entries older than
  spark.sql.streaming.minBatchesToRetain, so the two newest are always there); for batch 0 the
  source's initial offsets, written once to `<checkpoint>/sources/0/0` (the query's only source): a
  0 byte, a line `v1`, then the same JSON (topic -> partition -> offset), no newline;
- a partition in the end offsets but not in the start ones (added to the topic) starts at its
  earliest offset (Spark looks it up when it plans the batch, and with failOnDataLoss, the job's
  default, fails the query if that is not 0): here EARLIEST, resolved when the batch is read;
- a partition only in the start offsets (deleted) is not read.

Records are those Spark's reader returns (isolation read_uncommitted, its default): offsets Kafka
skips above the log start (transaction markers, compaction) hold no record; records below the log start
(retention) or beyond the log's end (a recreated topic) are missing, an error (failOnDataLoss).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from stockafolio.errors import ServiceUnavailable, StockafolioError
from streaming.health import Offsets, batch_end_offsets
from streaming.parse import RAW_COLUMNS

Key = tuple[str, int]  # (topic, partition)
Ranges = dict[Key, tuple[int, int]]
EARLIEST = -2  # a start at the partition's earliest offset (Spark's and librdkafka's code for it)
INITIAL_OFFSETS = "sources/0/0"
GROUP = "spark-kafka-source-batch-reader"  # assigned, never joined nor committed; the job's group grant
CHUNK = 10_000  # messages per consume() call
POLL_S = 0.2
_OUT_OF_RANGE = {KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE}
_UNKNOWN = {KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART}


class MissingRecords(StockafolioError):
    """Records of a batch's range that Kafka no longer has (or never had)."""


def batch_ranges(checkpoint: str, batch_id: int, read: Callable[[str], str] | None = None) -> Ranges:
    """(topic, partition) -> (start, end): the offsets [start, end) micro-batch `batch_id` reads, from
    Spark's checkpoint; start is EARLIEST for a partition the batch before did not know. `read` reads a
    file of the checkpoint (default: a local folder; see `health.hadoop_reader`)."""
    ends = batch_end_offsets(checkpoint, batch_id, read)
    starts = (batch_end_offsets(checkpoint, batch_id - 1, read) if batch_id > 0
              else initial_offsets(checkpoint, read))
    return {key: (starts.get(key, EARLIEST), end) for key, end in ends.items()}


def initial_offsets(checkpoint: str, read: Callable[[str], str] | None = None) -> Offsets:
    """Where the Kafka source started the query: its `sources/0/0` in the checkpoint."""
    path = f"{checkpoint.rstrip('/')}/{INITIAL_OFFSETS}"
    return parse_initial_offsets(read(path) if read else Path(path).read_text(), path)


def parse_initial_offsets(text: str, path: str) -> Offsets:
    """The offsets of a KafkaSourceInitialOffsetWriter file: one byte (0), then `v1` and a newline,
    then JSON; Spark 2.1.0 wrote the byte and the JSON only, and Spark still reads that."""
    body = text[1:]
    if body.startswith("v"):
        version, _, body = body.partition("\n")
        if version != "v1":
            raise StockafolioError(f"{path}: expected the version line v1 (Spark 3.5), got {version!r}")
    try:
        sources = json.loads(body)
        return {(topic, int(p)): int(o) for topic, parts in sources.items() for p, o in parts.items()}
    except (ValueError, AttributeError) as exc:
        raise StockafolioError(f"{path}: expected topic -> partition -> offset in JSON, got "
                               f"{body[:80]!r} ({exc})") from None


@dataclass
class _Partition:
    """One partition's range and what was read of it."""

    topic: str
    partition: int
    start: int
    end: int
    next: int = field(init=False)  # the lowest offset still wanted
    values: list[bytes | None] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)  # Kafka timestamps, ms since the epoch
    log_end: int | None = None  # where Kafka said the log ends, while that was before `end`

    def __post_init__(self) -> None:
        self.next = self.start

    def wanted(self) -> str:
        return f"offsets [{self.next}, {self.end}) of topic {self.topic} partition {self.partition}"


class _Reading:
    """What is left to read of a batch's ranges; `take` accepts the consumer's messages in any order
    (beyond a partition's end they are dropped). `held` tells which offsets Kafka holds of a
    partition (None if it cannot say), to name the missing records."""

    def __init__(self, ranges: Mapping[Key, tuple[int, int]],
                 held: Callable[[str, int], tuple[int, int] | None]) -> None:
        self.parts = {key: _Partition(*key, start, end) for key, (start, end) in sorted(ranges.items())
                      if start < end}
        self.open = dict(self.parts)
        self.held = held
        self.last_error: str | None = None

    def remaining(self) -> int:
        """At most this many records are still to come (fewer if Kafka skips offsets)."""
        return sum(part.end - part.next for part in self.open.values())

    def take(self, messages: Iterable[Message]) -> bool:
        """Keep the records in range; True if any message moved an open partition on."""
        moved = False
        for msg in messages:
            key = (msg.topic(), msg.partition())
            part = self.open.get(key)
            error = msg.error()
            if error is not None:
                moved |= self._on_error(part, error, msg)
                continue
            if part is None:
                continue
            offset = msg.offset()
            moved = True
            if offset >= part.end:  # past the end: the offsets before it held no record (a marker)
                del self.open[key]
                continue
            if offset < part.next:
                continue
            part.values.append(msg.value())
            part.offsets.append(offset)
            part.times.append(msg.timestamp()[1])
            part.next = offset + 1
            if part.next >= part.end:
                del self.open[key]
        return moved

    def _on_error(self, part: _Partition | None, error: KafkaError, msg: Message) -> bool:
        code = error.code()
        if code == KafkaError._PARTITION_EOF:
            if part is None:
                return False
            if msg.offset() >= part.end:  # every record before the end was delivered
                del self.open[(part.topic, part.partition)]
            else:  # waits: a new leader can briefly report a lower end
                part.log_end = msg.offset()
            return True
        if part is not None and code in _OUT_OF_RANGE:
            raise MissingRecords(missing_message(part, self.held(part.topic, part.partition)))
        self.last_error = error.str()  # librdkafka retries (a broker down, a leader moving)
        return False

    def stalled(self, bootstrap: str, timeout_s: float) -> StockafolioError:
        """The error when Kafka sent nothing for `timeout_s`."""
        for part in self.open.values():
            if part.log_end is not None:  # Kafka said the log ends before the range does
                held = self.held(part.topic, part.partition)
                if held is None or held[1] < part.end:
                    return MissingRecords(missing_message(part, held or (part.start, part.log_end)))
        waiting = ", ".join(part.wanted() for part in list(self.open.values())[:3])
        cause = f" (last error: {self.last_error})" if self.last_error else ""
        return ServiceUnavailable("Kafka", f"{bootstrap} sent no record for {timeout_s:g} s while the "
                                           f"micro-batch still needs {waiting}{cause}")

    def frame(self) -> pd.DataFrame:
        return records_frame(self.parts.values())


def missing_message(part: _Partition, held: tuple[int, int] | None) -> str:
    """Which records of the batch's range Kafka lacks, and why that happens."""
    where = f"topic {part.topic} partition {part.partition}"
    need = f"the micro-batch needs offsets [{part.start}, {part.end}) of {where}"
    if held is None:
        return f"{need}; Kafka no longer has offset {part.next} (offset out of range)"
    low, high = held
    gone = []
    if part.next < low:
        gone.append(f"[{part.next}, {min(low, part.end)}) are below the log start (deleted by retention)")
    if part.end > high:
        gone.append(f"[{max(part.next, high)}, {part.end}) are beyond the log end (the topic was "
                    "recreated or its log truncated)")
    return f"{need}, Kafka holds [{low}, {high}): records {' and '.join(gone) or 'are missing'}"


def records_frame(parts: Iterable[_Partition]) -> pd.DataFrame:
    """The frame `parse.collect_raw` gives for these records (Arrow's toPandas, session time zone
    UTC): value bytes or None, topic str, partition int32, offset int64 and kafka_time naive UTC
    datetime64[us] (datetime64[ns] in an empty frame, as pyspark gives it), ordered by topic,
    partition and offset."""
    parts = [part for part in parts if part.offsets]
    if not parts:
        return _empty_frame()
    counts = [len(part.offsets) for part in parts]
    times = np.concatenate([np.asarray(part.times, dtype=np.int64) for part in parts])
    frame = pd.DataFrame({
        "value": pd.Series([v for part in parts for v in part.values], dtype=object),
        "topic": np.repeat(np.array([part.topic for part in parts], dtype=object), counts),
        "partition": np.repeat(np.array([part.partition for part in parts], dtype=np.int32), counts),
        "offset": np.concatenate([np.asarray(part.offsets, dtype=np.int64) for part in parts]),
        "kafka_time": times.astype("datetime64[ms]").astype("datetime64[us]"),
    })
    return frame[list(RAW_COLUMNS)]


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({"value": pd.Series([], dtype=object), "topic": pd.Series([], dtype=object),
                         "partition": pd.Series([], dtype=np.int32),
                         "offset": pd.Series([], dtype=np.int64),
                         "kafka_time": pd.Series([], dtype="datetime64[ns]")})


class RangeReader:
    """Reads offset ranges with one consumer for the life of the job: no consumer group joined, no
    offsets committed, partitions assigned at explicit offsets for each read. `client_config` holds
    the login (`stockafolio.settings.kafka_client_config`); Kafka's silence for `timeout_s` is an
    error (ServiceUnavailable), never a hang."""

    def __init__(self, bootstrap: str, client_config: Mapping[str, str] | None = None,
                 timeout_s: float = 30.0) -> None:
        self.bootstrap, self.timeout_s = bootstrap, timeout_s
        self.consumer = Consumer({
            **(client_config or {}), "bootstrap.servers": bootstrap, "group.id": GROUP,
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": True,  # tells when a range's last offsets hold no record
            "auto.offset.reset": "error",  # an offset Kafka no longer has is an error, not a jump
            "isolation.level": "read_uncommitted",  # as Spark's Kafka source reads
            # a fetch the broker holds at a log's end (500 ms by default) delays the next read's fetches
            "fetch.wait.max.ms": 10,
        })

    def read(self, ranges: Mapping[Key, tuple[int, int]]) -> pd.DataFrame:
        """The records of `ranges` ((topic, partition) -> [start, end)) as `parse.collect_raw` gives
        them; raises MissingRecords if Kafka lacks some of them, ServiceUnavailable if it is silent."""
        reading = _Reading(self._resolved(ranges), self._held)
        if not reading.open:
            return reading.frame()
        self.consumer.assign([TopicPartition(p.topic, p.partition, p.start) for p in reading.open.values()])
        try:
            self._drain(reading)
        finally:
            self.consumer.unassign()  # stops prefetching between batches
        return reading.frame()

    def close(self) -> None:
        self.consumer.close()

    def _drain(self, reading: _Reading) -> None:
        deadline = time.monotonic() + self.timeout_s
        while reading.open:
            # consume() waits until it has that many messages or the timeout: ask for no more than can come
            messages = self.consumer.consume(num_messages=min(CHUNK, reading.remaining()), timeout=POLL_S)
            if reading.take(messages):
                deadline = time.monotonic() + self.timeout_s
            elif time.monotonic() > deadline:
                raise reading.stalled(self.bootstrap, self.timeout_s)

    def _resolved(self, ranges: Mapping[Key, tuple[int, int]]) -> Ranges:
        """EARLIEST starts replaced by the partition's log start."""
        return {key: ((self._log_start(*key) if start == EARLIEST else start), end)
                for key, (start, end) in ranges.items()}

    def _log_start(self, topic: str, partition: int) -> int:
        try:  # the partition is new: this consumer's metadata may not have it yet
            self.consumer.list_topics(topic, timeout=self.timeout_s)
        except KafkaException as exc:
            raise ServiceUnavailable("Kafka", f"{self.bootstrap}: no metadata of {topic} ({exc})") from None
        return self._watermarks(topic, partition)[0]

    def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        where = f"topic {topic} partition {partition}"
        try:
            return self.consumer.get_watermark_offsets(TopicPartition(topic, partition), self.timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() in _UNKNOWN:
                raise MissingRecords(f"the micro-batch needs {where}, which Kafka does not have "
                                     "(the topic was deleted?)") from None
            raise ServiceUnavailable("Kafka", f"{self.bootstrap}: no offsets of {where} ({exc})") from None

    def _held(self, topic: str, partition: int) -> tuple[int, int] | None:
        try:
            return self._watermarks(topic, partition)
        except StockafolioError:
            return None
