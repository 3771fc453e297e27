"""The job's Kafka outputs (dead letters, per-user events) produced from the driver process.

A micro-batch's outputs are a few thousand small records that are already in the driver's memory
(pandas), so producing them with one long-lived librdkafka producer costs milliseconds, where a Spark
Kafka write cost a Spark job (planning, a task, a new producer) per output per batch. Delivery is at
least once: `send` waits until Kafka acknowledged every record (acks=all) and raises otherwise, so
the micro-batch fails and is replayed, republishing the same records (same keys, same `batch_id`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, Producer

from stockafolio.errors import StockafolioError

FLUSH_TIMEOUT_S = 60.0


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
