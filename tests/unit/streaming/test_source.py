"""A micro-batch's offset ranges from Spark's checkpoint, and the records frame built from Kafka's
messages (fake messages here; tests/integration/test_source.py compares with Spark's own frame)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import KafkaError

from stockafolio.errors import ServiceUnavailable, StockafolioError
from streaming import source
from streaming.parse import RAW_COLUMNS
from streaming.source import EARLIEST, MissingRecords, RangeReader, batch_ranges

METADATA = '{"batchWatermarkMs":0,"batchTimestampMs":1796679605058,"conf":{}}'


def offsets_log(checkpoint: Path, batch_id: int, offsets: str) -> None:
    (checkpoint / "offsets").mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch_id)).write_text(f"v1\n{METADATA}\n{offsets}")


def initial_offsets(checkpoint: Path, content: bytes) -> None:
    (checkpoint / "sources" / "0").mkdir(parents=True, exist_ok=True)
    (checkpoint / "sources" / "0" / "0").write_bytes(content)


def test_a_batch_starts_where_the_batch_before_ended(tmp_path: Path) -> None:
    offsets_log(tmp_path, 4, '{"trades":{"1":40,"0":25}}')
    offsets_log(tmp_path, 5, '{"trades":{"1":52,"0":25}}')
    assert batch_ranges(str(tmp_path), 5) == {("trades", 0): (25, 25), ("trades", 1): (40, 52)}


def test_a_partition_the_batch_before_did_not_know_starts_at_its_earliest_offset(tmp_path: Path) -> None:
    offsets_log(tmp_path, 0, '{"trades":{"0":10,"1":10}}')
    offsets_log(tmp_path, 1, '{"trades":{"0":12,"2":3}}')  # partition 2 added, partition 1 gone
    assert batch_ranges(str(tmp_path) + "/", 1) == {("trades", 0): (10, 12), ("trades", 2): (EARLIEST, 3)}


def test_batch_zero_starts_at_the_initial_offsets_spark_3_wrote(tmp_path: Path) -> None:
    initial_offsets(tmp_path, b'\x00v1\n{"trades":{"2":0,"1":0,"0":7}}')
    offsets_log(tmp_path, 0, '{"trades":{"2":5,"1":0,"0":9}}')
    assert batch_ranges(str(tmp_path), 0) == {("trades", 0): (7, 9), ("trades", 1): (0, 0),
                                              ("trades", 2): (0, 5)}


def test_batch_zero_reads_initial_offsets_without_a_version_line(tmp_path: Path) -> None:
    initial_offsets(tmp_path, b'\x00{"trades":{"0":3}}')  # as Spark 2.1.0 wrote them; Spark reads them
    offsets_log(tmp_path, 0, '{"trades":{"0":8}}')
    assert batch_ranges(str(tmp_path), 0) == {("trades", 0): (3, 8)}


def test_the_checkpoint_is_read_through_the_reader_given() -> None:
    files = {"hdfs://nn:8020/ck/sources/0/0": '\x00v1\n{"t":{"0":1}}',
             "hdfs://nn:8020/ck/offsets/0": f'v1\n{METADATA}\n{{"t":{{"0":4}}}}'}
    assert batch_ranges("hdfs://nn:8020/ck", 0, files.__getitem__) == {("t", 0): (1, 4)}


@pytest.mark.parametrize(("content", "expected"), [
    (b'\x00v2\n{"t":{"0":1}}', r"expected the version line v1 \(Spark 3.5\), got 'v2'"),
    (b"\x00v1\n[1, 2]", r"expected topic -> partition -> offset in JSON, got '\[1, 2\]'"),
    (b'\x00v1\n{"t":{"0":1}', "expected topic -> partition -> offset in JSON"),
])
def test_initial_offsets_spark_does_not_write_are_refused(tmp_path: Path, content: bytes,
                                                          expected: str) -> None:
    initial_offsets(tmp_path, content)
    offsets_log(tmp_path, 0, '{"t":{"0":8}}')
    with pytest.raises(StockafolioError, match=f"sources/0/0: {expected}"):
        batch_ranges(str(tmp_path), 0)


class Message:
    """What the reader uses of confluent_kafka.Message."""

    def __init__(self, partition: int, offset: int, value: bytes | None = b"v", ms: int = 0,
                 error: int | None = None, topic: str | None = "t") -> None:
        self._partition, self._offset, self._value, self._ms = partition, offset, value, ms
        self._topic = topic
        self._error = None if error is None else KafkaError(error)

    def error(self) -> KafkaError | None:
        return self._error

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ms)


def reading(ranges: dict, held: tuple[int, int] | None = (0, 100)) -> source._Reading:
    return source._Reading(ranges, lambda topic, partition: held)


def test_records_are_kept_up_to_each_partition_end_in_any_order() -> None:
    r = reading({("t", 0): (3, 5), ("t", 1): (0, 2), ("t", 2): (4, 4)})
    assert set(r.open) == {("t", 0), ("t", 1)} and r.remaining() == 4
    assert r.take([Message(1, 0, b"a", 1_000), Message(0, 3, None, 2_000), Message(0, 4, b"c", 3_500)])
    assert list(r.open) == [("t", 1)]
    assert r.take([Message(0, 5), Message(1, 0), Message(1, 1, b"b", -1), Message(1, 2)])
    assert not r.open
    frame = r.frame()
    assert list(frame.columns) == list(RAW_COLUMNS)
    assert frame[["partition", "offset"]].to_numpy().tolist() == [[0, 3], [0, 4], [1, 0], [1, 1]]
    assert frame["value"].tolist() == [None, b"c", b"a", b"b"]
    assert frame["topic"].tolist() == ["t"] * 4
    assert frame["kafka_time"].tolist() == [pd.Timestamp(ms, unit="ms") for ms in (2_000, 3_500, 1_000, -1)]
    assert frame.dtypes.to_dict() == {"value": np.dtype(object), "topic": np.dtype(object),
                                      "partition": np.dtype("int32"), "offset": np.dtype("int64"),
                                      "kafka_time": np.dtype("datetime64[us]")}


def test_an_empty_batch_has_the_dtypes_pyspark_gives_an_empty_frame() -> None:
    frame = reading({("t", 0): (5, 5)}).frame()
    assert frame.empty and list(frame.columns) == list(RAW_COLUMNS)
    assert frame.dtypes.to_dict() == {"value": np.dtype(object), "topic": np.dtype(object),
                                      "partition": np.dtype("int32"), "offset": np.dtype("int64"),
                                      "kafka_time": np.dtype("datetime64[ns]")}


def test_offsets_kafka_skips_are_no_records() -> None:
    r = reading({("t", 0): (0, 6)})
    r.take([Message(0, 0), Message(0, 3)])  # 1 and 2: a transaction's marker, an aborted record
    assert r.open and r.remaining() == 2
    r.take([Message(0, 7)])  # 4..6 held no record either
    assert not r.open and r.frame()["offset"].tolist() == [0, 3]


def test_the_end_of_the_log_at_the_range_end_closes_the_partition() -> None:
    r = reading({("t", 0): (0, 6)})
    assert r.take([Message(0, 4), Message(0, 6, error=KafkaError._PARTITION_EOF)])
    assert not r.open


def test_errors_librdkafka_retries_are_no_progress() -> None:
    r = reading({("t", 0): (0, 6)})
    assert not r.take([Message(0, -1, error=KafkaError._TRANSPORT, topic=None)])
    assert r.last_error is not None and r.open


def test_records_below_the_log_start_are_missing() -> None:
    r = reading({("t", 0): (10, 20)}, held=(15, 30))
    with pytest.raises(MissingRecords, match=r"needs offsets \[10, 20\) of topic t partition 0, Kafka holds "
                                             r"\[15, 30\): records \[10, 15\) are below the log start"):
        r.take([Message(0, 10, error=KafkaError._AUTO_OFFSET_RESET)])


def test_a_log_that_ends_before_the_range_is_missing_records_once_kafka_is_silent() -> None:
    r = reading({("t", 0): (0, 8)}, held=(0, 5))
    assert r.take([Message(0, 3), Message(0, 4), Message(0, 5, error=KafkaError._PARTITION_EOF)])
    assert r.open  # a new leader may briefly report a lower end: not yet an error
    with pytest.raises(MissingRecords, match=r"records \[5, 8\) are beyond the log end"):
        raise r.stalled("k:9092", 30)


def test_silence_names_kafka_what_is_missing_and_how_to_start_it() -> None:
    r = reading({("t", 0): (0, 8)})
    r.take([Message(0, 0), Message(0, -1, error=KafkaError._ALL_BROKERS_DOWN, topic=None)])
    error = r.stalled("k:9092", 30)
    assert isinstance(error, ServiceUnavailable)
    assert str(error).startswith("Kafka is not reachable: k:9092 sent no record for 30 s while the "
                                 "micro-batch still needs offsets [1, 8) of topic t partition 0 (last error:")
    assert str(error).endswith("start it with: bin/stockafolio run")


def test_a_reader_without_kafka_raises_instead_of_hanging() -> None:
    reader = RangeReader("127.0.0.1:1", {"log_level": "0"}, timeout_s=0.5)
    began = time.monotonic()
    try:
        with pytest.raises(ServiceUnavailable, match=r"Kafka is not reachable: 127.0.0.1:1 .* offsets "
                                                     r"\[0, 3\) of topic t partition 0.*bin/stockafolio run"):
            reader.read({("t", 0): (0, 3)})
        assert time.monotonic() - began < 5
        assert reader.read({("t", 0): (3, 3)}).empty  # nothing to read: Kafka is not asked
    finally:
        reader.close()
