"""Batch mode: a whole simulated trading day written straight to the S3 archive (no Kafka), as fast
as the machine allows: for backfills and the nightly-batch benchmark.

The day's trades follow an intraday U shape (`trades.day_schedule`). The day is generated a minute of
simulated time at a time; minutes are gathered per UTC hour into objects of up to `rows_per_object`
trades, encoded to Parquet and uploaded by a background thread while the next minutes are generated.
The price path (one tick per second per symbol) goes to `<price_prefix>/` the same way.

Object names depend only on the run id (and, with several instances, the instance) and the position
in the day, so rerunning a crashed batch with the same `--seed`, `--run-id` and instance flags
rewrites the same objects with the same bytes: nothing doubles.

With `--instances N` each instance writes about `--trades` trades, those of its own users out of a
day of N x `--trades` for the whole population (see `generator.trades`), under
`batch-r<run id>-i<instance>-<n>` names; the price path, the same in every instance, only from
instance 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from generator.archive import HOUR_MS, ArchiveSettings, S3Writer, hour_prefix, parquet_bytes
from generator.clock import SESSION_SECONDS
from generator.codec import prices_table, trades_table
from generator.live import RunShape, Summary, build_generator
from generator.market import Market, to_cents
from generator.progress import Console, Snapshot
from generator.trades import day_schedule

CHUNK_SECONDS = 60  # divides 1800, so a chunk never straddles a UTC hour (09:30 NY is :30 UTC)
MAX_PENDING_UPLOADS = 2


@dataclass(frozen=True)
class BatchSettings:
    shape: RunShape
    trades: int
    archive: ArchiveSettings
    price_prefix: str = "prices"
    rows_per_object: int = 2_000_000
    seconds: int = SESSION_SECONDS  # simulated seconds to write (the whole session by default)


class _Objects:
    """Gathers tables per (prefix, hour) and uploads them in the background."""

    def __init__(self, writer: S3Writer, shape: RunShape, compression: str, counted_prefix: str):
        """`uploaded_rows` counts the rows uploaded under `counted_prefix` (the trades)."""
        self.writer, self.compression = writer, compression
        self.stem = f"batch-r{shape.run_id}" + (f"-i{shape.instance}" if shape.instances > 1 else "")
        self._counted = counted_prefix + "/"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-upload")
        self._pending: list[Future] = []
        self._parts: dict[str, list[pa.Table]] = {}
        self._count: dict[str, int] = {}
        self.uploaded_rows = 0

    def add(self, prefix: str, hour: int, table: pa.Table, limit: int) -> None:
        where = hour_prefix(prefix, hour)
        for other in [w for w in self._parts if w.split("/date=")[0] == prefix and w != where]:
            self.ship(other)
        self._parts.setdefault(where, []).append(table)
        if sum(len(t) for t in self._parts[where]) >= limit:
            self.ship(where)

    def ship(self, where: str) -> None:
        tables = self._parts.pop(where, [])
        if not tables:
            return
        n = self._count[where] = self._count.get(where, -1) + 1
        key = f"{where}/{self.stem}-{n:05d}.parquet"
        while len(self._pending) >= MAX_PENDING_UPLOADS:
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(self._upload, key, pa.concat_tables(tables)))

    def _upload(self, key: str, table: pa.Table) -> None:
        self.writer.put(key, parquet_bytes(table, self.compression))
        if key.startswith(self._counted):
            self.uploaded_rows += len(table)

    def close(self) -> None:
        for where in list(self._parts):
            self.ship(where)
        for future in self._pending:
            future.result()
        self._pool.shutdown(wait=True)


def run_batch(settings: BatchSettings, market: Market, writer: S3Writer, console: Console,
              now: Callable[[], float] = time.monotonic) -> Summary:
    """Generate `settings.trades` trades over the session (about that many with several instances)
    and archive them (and the prices)."""
    began = now()
    shape = settings.shape
    gen = build_generator(shape, market)
    schedule = day_schedule(settings.trades * shape.instances)[:settings.seconds]
    objects = _Objects(writer, shape, settings.archive.compression, settings.archive.prefix)
    writer.ensure_bucket()
    made, first_id, last_id, interrupted = 0, None, None, False
    try:
        for start in range(0, len(schedule), CHUNK_SECONDS):
            batch, path = gen.generate(schedule[start:start + CHUNK_SECONDS])
            seconds_ms = gen.clock.second_ms(np.arange(start, gen.next_second))
            hour = int(seconds_ms[0] // HOUR_MS)
            objects.add(settings.archive.prefix, hour, trades_table(batch), settings.rows_per_object)
            if shape.publishes_prices:
                prices = prices_table(market.symbols, to_cents(path), seconds_ms)
                objects.add(settings.price_prefix, hour, prices, settings.rows_per_object)
            made += len(batch)
            if len(batch):
                first_id = first_id if first_id is not None else int(batch.trade_id[0])
                last_id = int(batch.trade_id[-1])
            console.progress(Snapshot(now() - began, gen.clock.label(gen.next_second - 1), made, None,
                                      objects.uploaded_rows, 0, verb="generated"))
    except KeyboardInterrupt:
        interrupted = True
        console.say("interrupted: uploading what was generated so far")
    finally:
        objects.close()
    console.end_line()
    return Summary("batch", shape.run_id, made, 0, 0, objects.uploaded_rows, 0, now() - began,
                   gen.next_second, first_id, last_id, interrupted)
