"""The Kafka sink's failure path, against a port where no broker listens: it says that Kafka is
down, for how long, and gives up with the count of unacknowledged trades instead of dropping them."""

from __future__ import annotations

import time

import pytest

from generator.kafka_sink import KafkaDownError, KafkaSettings, KafkaSink


def test_producer_settings_are_idempotent_and_batched() -> None:
    config = KafkaSettings("127.0.0.1:9092").producer_config()
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert config["linger.ms"] >= 20


@pytest.mark.timeout(30)
def test_a_lost_broker_is_reported_and_given_up() -> None:
    said: list[str] = []
    sink = KafkaSink(KafkaSettings("127.0.0.1:9", give_up_s=1.0), said.append)
    sink.send_trades([b"1", b"2"], [b"{}", b"{}"])
    deadline = time.monotonic() + 20
    with pytest.raises(KafkaDownError) as error:
        while time.monotonic() < deadline:
            sink.poll(0.2)
    message = str(error.value)
    assert "Kafka is not reachable: no broker at 127.0.0.1:9 for" in message
    assert "gave up with 2 trades sent but not acknowledged" in message
    assert sink.sent == 2 and sink.acked == 0 and sink.in_flight() == 2
    assert sink.flush(0.1) == 2  # still queued, never silently dropped
