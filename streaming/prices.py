"""The latest price of every symbol, read from the prices topic in the job's driver, written to Q4.

A tick only matters until the next one of its symbol (Q4 keeps the newest tick per symbol, the
portfolio query marks holdings with it), so the prices need no exactly-once machinery and no Spark
query of their own: a Spark micro-batch per second of ticks cost more CPU than everything the ticks
are used for. `PriceFeed` polls the topic with one librdkafka consumer in a thread of the driver (no
consumer group, nothing committed), keeps the newest tick per symbol in memory and writes the symbols
that moved since its last write to Q4 as one single-partition UNLOGGED batch, each row
`USING TIMESTAMP <event time in microseconds>`, so an older tick (a restart reading the topic's tail
again) never overwrites a newer one. At start it reads the last `lookback` ticks of every partition,
so it knows every symbol's price at once. A malformed tick is counted and skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType
from stockafolio.records import InvalidRecord, decode_price

LOG = logging.getLogger("streaming.prices")
MARKET = "us"  # the one market of Q4 (latest_price_by_market)
POLL_SECONDS = 1.0
GROUP = "spark-kafka-source-prices"  # assigned, never joined nor committed; under the job's group grant
ROWS_PER_WRITE = 250  # ~15 KiB a request, under the 32 KiB batch warning


class PriceFeed:
    """Start with `start()`; `latest()` is a snapshot symbol -> price; `stop()` ends the thread."""

    def __init__(self, bootstrap: str, topic: str, session: Session, keyspace: str,
                 kafka_config: Mapping[str, str] | None = None, lookback: int = 2_000) -> None:
        self.topic, self.lookback = topic, lookback
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                                  "enable.auto.commit": False, "auto.offset.reset": "latest",
                                  **(kafka_config or {})})
        self.session = session
        self.insert = session.prepare(  # the keyspace passed check_identifier; values are bound
            f"INSERT INTO {keyspace}.latest_price_by_market (market, symbol, price, event_time) "  # noqa: S608
            "VALUES (?, ?, ?, ?) USING TIMESTAMP ?")
        self._ticks: dict[str, tuple[float, object, int]] = {}  # symbol -> (price, time, micros)
        self._unwritten: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="price-feed", daemon=True)
        self.malformed = 0
        self.assigned = False

    def start(self) -> PriceFeed:
        """Read the topic's tail before returning (so the first batch marks with every known price),
        then poll in the background."""
        try:
            self._assign_tail()
            while self.poll_once(timeout_s=1.0):
                pass
        except KafkaException as exc:  # no topic yet or Kafka down: the thread keeps trying
            LOG.warning("the prices are not readable yet (%s); retrying every second", exc)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()

    def latest(self) -> dict[str, float]:
        with self._lock:
            return {symbol: tick[0] for symbol, tick in self._ticks.items()}

    def poll_once(self, timeout_s: float = 0.2) -> int:
        """Read what the topic holds now (up to 50,000 ticks) and write the symbols that moved to Q4;
        the number of ticks read."""
        messages = self.consumer.consume(num_messages=50_000, timeout=timeout_s)
        ticks = [m for m in messages if m.error() is None]
        for message in ticks:
            self._take(message.value())
        self._write()
        return len(ticks)

    def _assign_tail(self) -> None:
        """Every partition from `lookback` ticks before its end: each symbol's latest tick is there.
        Raises KafkaException while the topic is missing or Kafka does not answer."""
        meta = self.consumer.list_topics(self.topic, timeout=30).topics.get(self.topic)
        if meta is None or meta.error is not None:
            raise KafkaException(f"topic {self.topic} is not available: {meta.error if meta else 'missing'}")
        starts = []
        for partition in meta.partitions:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=30)
            starts.append(TopicPartition(self.topic, partition, max(low, high - self.lookback)
                                         if high > low else OFFSET_END))
        self.consumer.assign(starts)
        self.assigned = True

    def _take(self, value: bytes | None) -> None:
        try:
            tick = decode_price(value or b"")
        except InvalidRecord:
            self.malformed += 1
            return
        micros = int(tick.event_time.timestamp() * 1_000_000)
        with self._lock:
            known = self._ticks.get(tick.symbol)
            if known is None or micros >= known[2]:
                self._ticks[tick.symbol] = (tick.price, tick.event_time, micros)
                self._unwritten.add(tick.symbol)

    def _write(self) -> None:
        with self._lock:
            rows = [(MARKET, s, *self._ticks[s]) for s in sorted(self._unwritten)]
            self._unwritten.clear()
        if not rows:
            return
        try:
            for first in range(0, len(rows), ROWS_PER_WRITE):  # one partition: one mutation each
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for market, symbol, price, moment, micros in rows[first:first + ROWS_PER_WRITE]:
                    batch.add(self.insert, (market, symbol, float(price), moment, micros))
                self.session.execute(batch)
        except Exception as exc:  # Cassandra down: keep the ticks, write them with the next poll
            with self._lock:
                self._unwritten.update(r[1] for r in rows)
            LOG.warning("writing %d latest prices failed (%s); retrying with the next poll", len(rows), exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                if not self.assigned:
                    self._assign_tail()
                self.poll_once()
            except Exception as exc:  # Kafka down or no topic yet: say so, try again next second
                LOG.warning("reading %s failed (%s); retrying", self.topic, exc)
            self._stop.wait(max(0.0, POLL_SECONDS - (time.monotonic() - began)))
