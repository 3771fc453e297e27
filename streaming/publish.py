"""The job's Kafka outputs (dead letters, per-user events) produced from the driver process.

A micro-batch's outputs are a few thousand small records that are already in the driver's memory
(pandas), so producing them with one long-lived librdkafka producer costs milliseconds, where a Spark
Kafka write cost a Spark job (planning, a task, a new producer) per output per batch. Delivery is at
least once: `send` waits until Kafka acknowledged every record (acks=all) and raises otherwise, so
the micro-batch fails and is replayed, republishing the same records (same keys, same `batch_id`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import orjson
from confluent_kafka import KafkaError, Producer

from stockafolio.errors import StockafolioError

FLUSH_TIMEOUT_S = 60.0
RAW_PREVIEW_CHARS = 1_000  # of a dead letter's original record; its length and SHA-256 are kept whole
DEAD_LETTER_MAX_BYTES = 16_384  # stockafolio.topics sets the dead-letter topic's max.message.bytes above it


def dead_letter(reason: str, topic: str, partition: int, offset: int, raw: bytes | None) -> bytes:
    """One dead letter, bounded whatever the record (at most DEAD_LETTER_MAX_BYTES): the reason,
    where the record is in Kafka, the first RAW_PREVIEW_CHARS characters of its value (bytes that are
    not UTF-8 replaced), the value's length in bytes and its SHA-256. The archive's quarantine keeps
    the full bytes under the same topic, partition and offset."""
    head = None if raw is None else raw[:4 * RAW_PREVIEW_CHARS].decode("utf-8", "replace")
    letter = {"reason": reason[:500], "topic": topic, "partition": int(partition), "offset": int(offset),
              "raw": None if head is None else head[:RAW_PREVIEW_CHARS],
              "raw_length": None if raw is None else len(raw),
              "raw_sha256": None if raw is None else hashlib.sha256(raw).hexdigest(),
              "raw_truncated": raw is not None and (len(raw) > 4 * RAW_PREVIEW_CHARS
                                                    or len(head or "") > RAW_PREVIEW_CHARS)}
    encoded = orjson.dumps(letter)
    while len(encoded) > DEAD_LETTER_MAX_BYTES and letter["raw"]:  # escaped control bytes: 6 bytes each
        letter["raw"], letter["raw_truncated"] = letter["raw"][:len(letter["raw"]) // 2], True
        encoded = orjson.dumps(letter)
    return encoded


class Outputs:
    """One producer per job process; `send` is synchronous (returns once everything is acknowledged)."""

    def __init__(self, bootstrap: str, extra: Mapping[str, str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                                  "enable.idempotence": True, "compression.type": "lz4",
                                  "queue.buffering.max.messages": 1_000_000, **(extra or {})})

    def send(self, topic: str, records: Iterable[tuple[str, str | bytes]]) -> int:
        """Produce (key, value) records to `topic` and wait for every acknowledgement; the count sent."""
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: object) -> None:
            if error is not None:
                failures.append(error)

        count = 0
        for key, value in records:
            while True:
                try:
                    self.producer.produce(topic, value=value, key=key, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let librdkafka send some first
                    self.producer.poll(0.1)
            count += 1
        left = self.producer.flush(FLUSH_TIMEOUT_S)
        if left or failures:
            reason = (failures[0].str() if failures
                      else f"{left} records not acknowledged in {FLUSH_TIMEOUT_S:.0f} s")
            raise StockafolioError(f"publishing to Kafka topic {topic} at {self.bootstrap} failed: {reason}; "
                                   "is Kafka up? (bin/stockafolio status)")
        return count
