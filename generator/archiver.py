"""The live archiver: consumes the trades topic in its own consumer group and writes what it reads
to S3, the valid trades to the archive and every other record to its quarantine (see
`generator.archive` for the object layout and why a crash never loses nor doubles a record). It
runs in its own process next to the live generator (the machine's second core), or alone as
`python -m generator archive`.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, TopicPartition

from generator.archive import (
    ArchiveSettings,
    Decoded,
    Rejects,
    S3Writer,
    decode_values,
    hour_prefix,
    hours_of,
    parquet_bytes,
    runs,
)
from stockafolio.errors import ServiceUnavailable, StockafolioError
from stockafolio.settings import KafkaAuth, S3Endpoint, kafka_client_config

Say = Callable[[str], None]
ASSIGN_TIMEOUT_S = 60.0


@dataclass
class _Pending:
    values: list[bytes | None] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    timestamps: list[tuple[int, int]] = field(default_factory=list)  # (type, ms) as Kafka gives it
    bytes: int = 0
    since: float = 0.0


class TopicArchiver:
    """`run(should_stop)` archives until `should_stop()` turns true, then drains the topic up to its
    end offsets as they were at that moment, uploads the last batch, commits and returns. `archived`
    counts the trades archived, `rejected` the records quarantined."""

    def __init__(self, bootstrap: str, topic: str, group: str, writer: S3Writer, settings: ArchiveSettings,
                 say: Say, on_archived: Callable[[int], None] = lambda n: None,
                 now: Callable[[], float] = time.monotonic, auth: KafkaAuth | None = None):
        self.topic, self.writer, self.settings, self._say = topic, writer, settings, say
        self._bootstrap, self._group = bootstrap, group
        self._on_archived, self._now = on_archived, now
        self.archived = self.rejected = 0
        self._last_warning = -1e18
        self._pending = _Pending()
        self._next: dict[int, int] = {}  # partition -> next offset to read
        self._assigned: set[int] = set()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="s3-put")
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 8_388_608, "queued.max.messages.kbytes": 262_144,
            **kafka_client_config(auth),
        })
        self._consumer.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)

    # -- rebalance callbacks (run inside consume)

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {p.partition for p in partitions}

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.flush()  # hand over only what is uploaded and committed
        self._assigned -= {p.partition for p in partitions}
        for p in partitions:
            self._next.pop(p.partition, None)

    # -- the loop

    def run(self, should_stop: Callable[[], bool]) -> int:
        """Archive until `should_stop()`, then drain; returns the trades archived. Raises
        `ServiceUnavailable` when Kafka fails a request the archiver cannot do without."""
        try:
            return self._run(should_stop)
        except KafkaException as exc:
            raise ServiceUnavailable("Kafka", f"the archiver's request failed: {exc.args[0]}",
                                     hint="nothing was committed past the last upload; rerun the archiver"
                                     ) from None
        finally:
            self._pool.shutdown(wait=True)
            self._consumer.close()

    def _run(self, should_stop: Callable[[], bool]) -> int:
        targets: dict[int, int] | None = None
        began = self._now()
        while True:
            self._consume_once()
            if self._due():
                self.flush()
            if targets is None and should_stop():
                targets = self._wait_end_offsets(began)
            if targets is not None and self._reached(targets):
                self.flush()
                return self.archived

    def _consume_once(self) -> None:
        room = max(1, min(20_000, self.settings.batch_trades - len(self._pending.values)))
        pending = self._pending
        messages = self._consumer.consume(num_messages=room, timeout=0.2)
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self._warn(f"reading {self.topic}: {error}")
                continue
            if not pending.values:
                pending.since = self._now()
            pending.values.append(msg.value())
            pending.partitions.append(msg.partition())
            pending.offsets.append(msg.offset())
            pending.keys.append(msg.key())
            pending.timestamps.append(msg.timestamp())
            self._next[msg.partition()] = msg.offset() + 1
        pending.bytes += sum(map(len, messages))  # len(message): its value's bytes

    def _warn(self, text: str) -> None:
        """Say `text`, at most once every 10 s (librdkafka repeats errors while a broker is down)."""
        if self._now() - self._last_warning >= 10.0:
            self._last_warning = self._now()
            self._say(text)

    def _due(self) -> bool:
        pending = self._pending
        return bool(pending.values) and (len(pending.values) >= self.settings.batch_trades
                                         or pending.bytes >= self.settings.batch_bytes
                                         or self._now() - pending.since >= self.settings.batch_seconds)

    def _wait_end_offsets(self, began: float) -> dict[int, int] | None:
        """High watermarks of the assigned partitions (None while nothing is assigned yet)."""
        if not self._assigned:
            if self._now() - began > ASSIGN_TIMEOUT_S:
                raise StockafolioError(f"the archiver got no partition of {self.topic} in "
                                       f"{ASSIGN_TIMEOUT_S:.0f} s: is Kafka at {self._bootstrap} "
                                       f"reachable, and no other archiver in group {self._group}?")
            return None
        ends = {}
        for p in sorted(self._assigned):
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
            ends[p] = high
        committed = self._consumer.committed([TopicPartition(self.topic, p) for p in ends], timeout=10)
        for tp in committed:
            self._next.setdefault(tp.partition, max(tp.offset, 0))
        return ends

    def _reached(self, targets: dict[int, int]) -> bool:
        return all(self._next.get(p, 0) >= end for p, end in targets.items())

    # -- one batch: decode, split, upload, commit

    def flush(self) -> None:
        """Decode the pending records, upload the valid trades to the archive and the others to the
        quarantine, then commit their offsets. Nothing a record holds can make this raise: only S3 or
        Kafka failing does (and then nothing past the last upload is committed)."""
        pending, self._pending = self._pending, _Pending()
        if not pending.values:
            return
        decoded = decode_values(pending.values, self.settings.symbols)
        partitions = np.array(pending.partitions, dtype=np.int64)
        offsets = np.array(pending.offsets, dtype=np.int64)
        rejects = self._rejects(pending, decoded, partitions, offsets)
        objects = [*self._archive_objects(decoded, partitions, offsets), *self._quarantine_objects(rejects)]
        list(self._pool.map(self._put, [key for key, _ in objects], [table for _, table in objects]))
        self._commit(partitions, offsets)
        self.archived += len(decoded.table)
        self._on_archived(len(decoded.table))
        self._report_rejected(rejects)

    def _archive_objects(self, decoded: Decoded, partitions: np.ndarray, offsets: np.ndarray
                         ) -> list[tuple[str, pa.Table]]:
        """(key, table) of each run of one partition within one hour of event time."""
        parts, offs = partitions[decoded.keep], offsets[decoded.keep]
        order = np.lexsort((offs, parts))
        table, parts, offs = decoded.table.take(order), parts[order], offs[order]
        return self._split(self.settings.prefix, table, parts, offs, hours_of(table))

    def _rejects(self, pending: _Pending, decoded: Decoded, partitions: np.ndarray, offsets: np.ndarray
                 ) -> Rejects:
        """The records left out of the archive, in (partition, offset) order, with what Kafka said of them."""
        left = np.flatnonzero(~decoded.keep)
        order = np.lexsort((offsets[left], partitions[left]))
        rows = left[order].tolist()
        return Rejects([decoded.rejected[i] for i in order.tolist()], self.topic, partitions[rows],
                       offsets[rows], [_kafka_ms(pending.timestamps[i]) for i in rows],
                       [pending.keys[i] for i in rows], [pending.values[i] for i in rows])

    def _quarantine_objects(self, rejects: Rejects) -> list[tuple[str, pa.Table]]:
        """(key, table) of each run of rejects of one partition within one hour of Kafka time."""
        if not rejects.reasons:
            return []
        return self._split(self.settings.quarantine_prefix, rejects.table(), rejects.partitions,
                           rejects.offsets, rejects.hours())

    def _split(self, prefix: str, table: pa.Table, parts: np.ndarray, offs: np.ndarray, hours: np.ndarray
               ) -> list[tuple[str, pa.Table]]:
        """Rows in (partition, offset) order -> one object per (partition, hour) run, named by the run's
        first offset: the names a rerun from the same committed offsets writes again."""
        return [(f"{hour_prefix(prefix, hours[a])}/{self.topic}-p{parts[a]:03d}-o{offs[a]:012d}.parquet",
                 table.slice(a, b - a)) for a, b in runs(parts, hours)]

    def _put(self, key: str, table: pa.Table) -> None:
        self.writer.put(key, parquet_bytes(table, self.settings.compression))

    def _commit(self, partitions: np.ndarray, offsets: np.ndarray) -> None:
        ends = [TopicPartition(self.topic, int(p), int(offsets[partitions == p].max()) + 1)
                for p in np.unique(partitions)]
        self._consumer.commit(offsets=ends, asynchronous=False)

    def _report_rejected(self, rejects: Rejects) -> None:
        if rejects.reasons:
            self.rejected += len(rejects.reasons)
            where = f"s3://{self.settings.bucket}/{self.settings.quarantine_prefix}/"
            self._say(f"left {len(rejects.reasons)} invalid records out of the archive, quarantined under "
                      f"{where}, e.g. partition {rejects.partitions[0]} offset {rejects.offsets[0]}: "
                      f"{rejects.reasons[0]}")


def _kafka_ms(timestamp: tuple[int, int]) -> int | None:
    """A message's (type, ms) timestamp -> ms, None when the record has none."""
    kind, ms = timestamp
    return None if kind == TIMESTAMP_NOT_AVAILABLE or ms < 0 else ms


@dataclass(frozen=True)
class ArchiverJob:
    """What the archiver process needs, picklable (it is started with the spawn method)."""

    bootstrap: str
    topic: str
    group: str
    s3: S3Endpoint
    settings: ArchiveSettings
    auth: KafkaAuth | None = None


def run_in_child(job: ArchiverJob, archived, s3_down, stop) -> None:
    """Entry point of the archiver process: `archived` and `s3_down` are shared multiprocessing
    Values (trades archived; seconds S3 has been unreachable, -1 while it is reachable), `stop` an
    Event.
    Ctrl-C goes to the parent, which asks this process to drain and stop through `stop`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def say(text: str) -> None:
        print(f"\narchiver: {text}", file=sys.stderr, flush=True)

    def count(n: int) -> None:
        with archived.get_lock():
            archived.value += n

    def down(seconds: float | None) -> None:
        s3_down.value = -1.0 if seconds is None else seconds

    try:
        writer = S3Writer(job.s3, job.settings, say, on_down=down)
        writer.ensure_bucket()
        archiver = TopicArchiver(job.bootstrap, job.topic, job.group, writer, job.settings, say, count,
                                 auth=job.auth)
        archiver.run(stop.is_set)
    except StockafolioError as exc:
        say(str(exc))
        sys.exit(1)
