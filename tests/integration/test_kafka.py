"""Kafka over its own protocol: produce with idempotence, consume from the beginning."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from stockafolio.settings import Endpoints
from tests.integration.conftest import drop_topics


def test_produce_and_consume(endpoints: Endpoints, unique: str) -> None:
    bootstrap = endpoints.kafka.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(unique, num_partitions=3, replication_factor=1)])[unique].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 20})
    sent = {f"user-{i}": f"trade-{i}" for i in range(100)}
    for key, value in sent.items():
        producer.produce(unique, key=key, value=value)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([unique])
    got: dict[str, str] = {}
    for _ in range(60):
        for msg in consumer.consume(num_messages=200, timeout=1.0):
            assert msg.error() is None, msg.error()
            got[msg.key().decode()] = msg.value().decode()
        if len(got) == len(sent):
            break
    consumer.close()
    drop_topics(admin, [unique])
    assert got == sent
