"""Producing trades and price ticks to Kafka with confluent-kafka (librdkafka).

Idempotent producer (`enable.idempotence=true`: no duplicates or reordering on retry), batches
lingering 25 ms, zstd compression (about 15 % more producer CPU than none, see
bench/results/generator_throughput.md, for much smaller batches on the broker's network and disk).
`produce()` never polls per message: the run loop calls `poll()` once per batch and `flush()` at the
end; a delivery callback counts acknowledgements and errors.

When Kafka cannot be reached the sink says so (which broker, for how long) and keeps retrying
(librdkafka reconnects with backoff; a full local queue blocks generation instead of dropping). After
`give_up_s` without a broker it raises `ServiceUnavailable`, naming how many trades were sent and
not acknowledged: nothing is dropped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from stockafolio import topics
from stockafolio.errors import ServiceUnavailable, StockafolioError
from stockafolio.settings import KafkaAuth, kafka_client_config

Say = Callable[[str], None]
_DOWN = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE}


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str
    trades_topic: str = topics.TRADES
    prices_topic: str = topics.PRICES
    partitions: int = 6
    give_up_s: float = 120.0
    linger_ms: int = 25
    compression: str = "zstd"
    auth: KafkaAuth | None = None  # the cluster's SASL login (None locally)

    def client_config(self) -> dict[str, object]:
        """What every client of the generator connects with: the brokers and the login."""
        return {"bootstrap.servers": self.bootstrap, **kafka_client_config(self.auth)}

    def producer_config(self) -> dict[str, object]:
        return {
            **self.client_config(),
            "enable.idempotence": True,  # librdkafka defaults it off
            "acks": "all",
            "linger.ms": self.linger_ms,
            "compression.type": self.compression,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 500_000,
            "partitioner": "murmur2_random",  # the Java clients' partitioner: same key, same partition
            # librdkafka must not fail queued messages before we give up ourselves
            "message.timeout.ms": int((self.give_up_s + 60) * 1000),
            "reconnect.backoff.ms": 200,
            "reconnect.backoff.max.ms": 5000,
        }


class KafkaDownError(ServiceUnavailable):
    def __init__(self, detail: str):
        super().__init__("Kafka", detail, hint="check it with: bin/stockafolio status")


def wait_for_kafka(settings: KafkaSettings, say: Say, now: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> None:
    """Block until the cluster answers a metadata request, retrying with exponential backoff and
    saying so; `KafkaDownError` after `settings.give_up_s`."""
    admin = AdminClient({**settings.client_config(), "logger": _quiet_logger()})
    began, delay = now(), 1.0
    while True:
        try:
            admin.list_topics(timeout=min(5.0, settings.give_up_s))
            return
        except KafkaException as exc:
            down = now() - began
            if down >= settings.give_up_s:
                raise KafkaDownError(f"no broker answered at {settings.bootstrap} for {down:.0f} s "
                                     f"({exc.args[0]}); gave up") from None
            say(f"Kafka at {settings.bootstrap} unreachable for {down:.0f} s; retrying in {delay:.0f} s "
                f"(giving up after {settings.give_up_s:.0f} s)")
            sleep(delay)
            delay = min(delay * 2, 15.0)


def ensure_topics(settings: KafkaSettings, topics: Sequence[str]) -> list[str]:
    """Create those of `topics` that are missing (settings.partitions, replication 1 locally);
    return the ones created."""
    admin = AdminClient({**settings.client_config(), "logger": _quiet_logger()})
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return []
    replication = min(3, len(admin.list_topics(timeout=10).brokers))
    futures = admin.create_topics([NewTopic(t, settings.partitions, replication) for t in missing])
    for topic, future in futures.items():
        try:
            future.result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise StockafolioError(f"could not create topic {topic}: {exc.args[0]}") from None
    return missing


def _quiet_logger():  # librdkafka's own log lines would interleave with the progress line
    import logging

    logger = logging.getLogger("generator.kafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


class KafkaSink:
    """One idempotent producer for the run. Counters: `sent`, `acked`, `errors` (trades only)."""

    def __init__(self, settings: KafkaSettings, say: Say, now: Callable[[], float] = time.monotonic):
        self.settings, self._say, self._now = settings, say, now
        self.sent = self.acked = self.errors = 0
        self.prices_sent = self.prices_acked = 0
        self.last_error: str | None = None
        self.down_since: float | None = None
        self._fatal: KafkaError | None = None
        self._producer = Producer({**settings.producer_config(), "on_delivery": self._on_trade,
                                   "error_cb": self._on_error, "logger": _quiet_logger()})

    # -- callbacks, run by librdkafka inside poll()/flush()

    def _on_trade(self, err: KafkaError | None, _msg: object) -> None:
        if err is None:
            self.acked += 1
            self.down_since = None
        else:
            self.errors += 1
            self.last_error = str(err)

    def _on_price(self, err: KafkaError | None, _msg: object) -> None:
        if err is None:
            self.prices_acked += 1

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err
        elif err.code() in _DOWN and self.down_since is None:
            self.down_since = self._now()
        self.last_error = str(err)

    # -- sending

    def send_trades(self, keys: list[bytes], values: list[bytes]) -> None:
        """Queue trades (blocks, never drops, while the local queue is full)."""
        self.sent += self._send(self.settings.trades_topic, keys, values, None)

    def send_prices(self, keys: list[bytes], values: list[bytes]) -> None:
        self.prices_sent += self._send(self.settings.prices_topic, keys, values, self._on_price)

    def _send(self, topic: str, keys: list[bytes], values: list[bytes], callback: object) -> int:
        """Queue the messages; returns how many were queued (all, unless interrupted)."""
        produce = self._producer.produce
        extra = {"on_delivery": callback} if callback else {}
        queued = 0
        try:
            for key, value in zip(keys, values, strict=True):
                try:
                    produce(topic, value, key, **extra)
                except BufferError:
                    self._wait_for_room(produce, topic, value, key, extra)
                queued += 1
        finally:
            if queued < len(values):
                self._add_partial(topic, queued)
        self.poll()
        return queued

    def _add_partial(self, topic: str, queued: int) -> None:
        """Count what an interrupted send did queue, since the caller will not return normally."""
        if topic == self.settings.trades_topic:
            self.sent += queued
        else:
            self.prices_sent += queued

    def _wait_for_room(self, produce, topic: str, value: bytes, key: bytes, extra: dict) -> None:
        while True:
            self.poll(0.05)
            try:
                produce(topic, value, key, **extra)
                return
            except BufferError:
                continue

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery callbacks; raises when Kafka has been unreachable for too long."""
        self._producer.poll(timeout)
        self.check()

    def check(self) -> None:
        if self._fatal is not None:
            raise StockafolioError(f"Kafka producer failed: {self._fatal}")
        down = self.down_for()
        if down is not None and down > self.settings.give_up_s:
            raise KafkaDownError(
                f"no broker at {self.settings.bootstrap} for {down:.0f} s (last error: {self.last_error}); "
                f"gave up with {self.sent - self.acked - self.errors:,} trades sent but not acknowledged")

    def down_for(self) -> float | None:
        """Seconds Kafka has been unreachable, None when it is reachable."""
        return None if self.down_since is None else self._now() - self.down_since

    def in_flight(self) -> int:
        return len(self._producer)

    def flush(self, timeout: float) -> int:
        """Wait for every queued message to be acknowledged (or `timeout`); return how many are left."""
        deadline = self._now() + timeout
        while len(self._producer) and self._now() < deadline:
            self._producer.flush(min(1.0, max(0.0, deadline - self._now())))
            if self._fatal is not None:
                break
        return len(self._producer)
