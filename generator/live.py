"""Live mode: trades and price ticks to Kafka at a steady rate, archived to S3 by a companion process.

The I/O shell around `TradeGenerator`: pace simulated seconds against the wall clock, publish each
second's price ticks then its trades, keep the archiver process going, print progress, and on the
way out (end, Ctrl-C or a give-up) flush Kafka, let the archiver drain and print a summary.

With `--instances N` each instance publishes about `--rate` trades a second, those of its own users
(the whole population's activity runs at N x `--rate`; see `generator.trades`). Every instance
simulates the same price path, so only instance 0 publishes the price ticks (once, not N times).
"""

from __future__ import annotations

import math
import multiprocessing
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from types import FrameType

import numpy as np

from generator.archive import ArchiveSettings
from generator.archiver import ArchiverJob, run_in_child
from generator.clock import SESSION_SECONDS, Pacer, SessionClock
from generator.codec import TradeEncoder, price_values
from generator.kafka_sink import KafkaDownError, KafkaSettings, KafkaSink, ensure_topics, wait_for_kafka
from generator.market import Market, to_cents
from generator.progress import Console, Snapshot
from generator.trades import TradeGenerator, even_schedule
from stockafolio.errors import StockafolioError
from stockafolio.records import split_trade_id
from stockafolio.settings import S3Endpoint

MIN_CHUNK_TRADES = 2_000  # generate at least this many trades per vectorised step...
MAX_CHUNK_WALL_S = 0.25  # ...unless that would hold back more than this much wall time


@dataclass(frozen=True)
class RunShape:
    """What a run generates: independent of I/O, so the same shape and seed give the same trades."""

    users: int
    seed: int
    run_id: int
    date: date
    symbols: tuple[str, ...] | None = None  # None: the whole universe
    slots: int = 6
    short_selling: bool = False
    instance: int = 0  # this generator's number among `instances`: it simulates users id % instances
    instances: int = 1

    @property
    def publishes_prices(self) -> bool:
        """The price path is the same in every instance: one of them publishes (and archives) it."""
        return self.instance == 0


@dataclass(frozen=True)
class LiveSettings:
    shape: RunShape
    rate: float
    speed: float
    kafka: KafkaSettings
    archive: ArchiveSettings | None  # None: no archiver process
    archive_group: str
    duration_s: float | None = None
    max_trades: int | None = None
    days: int = 1


@dataclass(frozen=True)
class Summary:
    mode: str
    run_id: int
    trades: int  # generated (live: queued to Kafka)
    acked: int
    errors: int
    archived: int | None
    prices: int
    wall_s: float
    simulated_s: int
    first_trade_id: int | None
    last_trade_id: int | None
    interrupted: bool
    problem: str | None = None

    def lines(self) -> list[str]:
        rate = self.trades / self.wall_s if self.wall_s > 0 else 0.0
        if self.last_trade_id is not None:
            _, sequence, instance = split_trade_id(self.last_trade_id)
            ids = (f"{self.first_trade_id}..{self.last_trade_id} (run {self.run_id}, instance {instance}, "
                   f"sequence {sequence + 1:,} trades)")
        else:
            ids = f"none (run {self.run_id})"
        ended = "interrupted" if self.interrupted else "finished"
        out = [f"{self.mode} run {ended} after {self.wall_s:.1f} s ({self.simulated_s:,} simulated seconds)",
               f"  trades generated    {self.trades:,} ({rate:,.0f}/s)"]
        if self.mode == "live":
            out += [f"  acknowledged        {self.acked:,}", f"  delivery errors     {self.errors:,}",
                    f"  not acknowledged    {self.trades - self.acked - self.errors:,}",
                    f"  price ticks sent    {self.prices:,}"]
        if self.archived is not None:
            out.append(f"  archived to S3      {self.archived:,}")
        out.append(f"  trade ids           {ids}")
        if self.problem:
            out.append(f"  problem             {self.problem}")
        return out


def build_generator(shape: RunShape, market: Market) -> TradeGenerator:
    return TradeGenerator.create(market, shape.users, shape.seed, shape.run_id, SessionClock(shape.date),
                                 slots=shape.slots, short_selling=shape.short_selling,
                                 instance=shape.instance, instances=shape.instances)


def chunk_seconds(per_second: float, speed: float) -> int:
    """Simulated seconds generated per step: enough for `MIN_CHUNK_TRADES`, capped by wall time."""
    want = math.ceil(MIN_CHUNK_TRADES / per_second) if per_second > 0 else 1
    return int(np.clip(want, 1, max(1, int(speed * MAX_CHUNK_WALL_S))))


class _StopFlag:
    """First Ctrl-C asks for a clean stop at the next step; a second one interrupts at once."""

    def __init__(self) -> None:
        self.set = False
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


class _ArchiverProcess:
    def __init__(self, job: ArchiverJob):
        ctx = multiprocessing.get_context("spawn")  # never fork a process that holds librdkafka threads
        self.archived = ctx.Value("q", 0)
        self.s3_down = ctx.Value("d", -1.0)
        self.stop = ctx.Event()
        self.process = ctx.Process(target=run_in_child, args=(job, self.archived, self.s3_down, self.stop),
                                   name="stockafolio-archiver", daemon=False)
        self.process.start()

    def abort(self) -> None:
        self.process.terminate()
        self.process.join(10)

    def failed(self) -> bool:
        return not self.process.is_alive() and self.process.exitcode not in (0, None)

    def finish(self, timeout: float, tick: Callable[[], None]) -> bool:
        """Ask it to drain and stop; True when it finished cleanly within `timeout`."""
        self.stop.set()
        waited = 0.0
        while self.process.is_alive() and waited < timeout:
            self.process.join(0.5)
            waited += 0.5
            tick()
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
            return False
        return self.process.exitcode == 0


def run_live(settings: LiveSettings, market: Market, s3: S3Endpoint, console: Console) -> Summary:
    """Run until the duration, the trade count or the simulated days are used up, or Ctrl-C."""
    wait_for_kafka(settings.kafka, console.say)
    created = ensure_topics(settings.kafka, [settings.kafka.trades_topic, settings.kafka.prices_topic])
    if created:
        console.say(f"created topics {', '.join(created)} ({settings.kafka.partitions} partitions)")
    archiver = None
    if settings.archive is not None:
        archiver = _ArchiverProcess(ArchiverJob(settings.kafka.bootstrap, settings.kafka.trades_topic,
                                                settings.archive_group, s3, settings.archive,
                                                settings.kafka.auth))
    try:
        live = _Live(settings, market, console, archiver)
    except BaseException:
        if archiver is not None:
            archiver.abort()
        raise
    return live.run()


class _Live:
    def __init__(self, settings: LiveSettings, market: Market, console: Console,
                 archiver: _ArchiverProcess | None):
        self.settings, self.market, self.console, self.archiver = settings, market, console, archiver
        self.gen = build_generator(settings.shape, market)
        self.encoder = TradeEncoder(market.symbols)
        self.sink = KafkaSink(settings.kafka, console.say)
        self.symbol_keys = [s.encode() for s in market.symbols]
        self.instances = settings.shape.instances
        self.per_second = settings.rate * self.instances / settings.speed  # the whole population's
        self.chunk = chunk_seconds(settings.rate / settings.speed, settings.speed)
        self.pacer = Pacer(settings.speed)
        self.first_id: int | None = None
        self.last_id: int | None = None
        self.problem: str | None = None

    def run(self) -> Summary:
        stop = _StopFlag()
        flush_s = self.settings.kafka.give_up_s
        try:
            self._loop(stop)
        except KeyboardInterrupt:
            stop.set = True
        except StockafolioError as exc:
            self.problem = str(exc)
            if isinstance(exc, KafkaDownError):
                flush_s = 10.0  # Kafka already had its give_up_s
        finally:
            stop.restore()
        self._finish(flush_s)
        return self._summary(stop.set)

    def _loop(self, stop: _StopFlag) -> None:
        while not stop.set and not self._done():
            second = self.gen.next_second
            while not self.pacer.wait_for(second) and not stop.set:
                self.sink.poll()
                self._tick()
            if stop.set:
                return
            self._step(self._counts(second))
            self._tick()
            if self.archiver is not None and self.archiver.failed():
                raise StockafolioError("the archiver stopped (its message is above); the trades are "
                                       "safe in Kafka: archive them with python -m generator archive")

    def _counts(self, second: int) -> np.ndarray:
        last = self.settings.days * SESSION_SECONDS
        counts = even_schedule(self.per_second, second, min(self.chunk, last - second))
        if self.settings.max_trades is not None:  # about `left` of them are this instance's
            left = (self.settings.max_trades - self.sink.sent) * self.instances
            counts = np.diff(np.minimum(np.concatenate([[0], np.cumsum(counts)]), left))
        return counts

    def _step(self, counts: np.ndarray) -> None:
        batch, path = self.gen.generate(counts)
        if self.settings.max_trades is not None:  # several instances: `_counts` may give a few too many
            batch = batch.select(np.arange(len(batch)) < self.settings.max_trades - self.sink.sent)
        if self.settings.shape.publishes_prices:
            self._send_prices(path, len(counts))
        if len(batch):
            self.sink.send_trades(self.encoder.keys(batch), self.encoder.values(batch))
            self.first_id = self.first_id if self.first_id is not None else int(batch.trade_id[0])
            self.last_id = int(batch.trade_id[-1])

    def _send_prices(self, path: np.ndarray, seconds: int) -> None:
        end = self.gen.next_second
        seconds_ms = self.gen.clock.second_ms(np.arange(end - seconds, end))
        for row, ms in zip(to_cents(path), seconds_ms.tolist(), strict=True):
            self.sink.send_prices(self.symbol_keys, price_values(self.market.symbols, row, ms))

    def _done(self) -> bool:
        s = self.settings
        second = self.gen.next_second
        return (second >= s.days * SESSION_SECONDS
                or (s.duration_s is not None and self.pacer.due(second) - self.pacer.started >= s.duration_s)
                or (s.max_trades is not None and self.sink.sent >= s.max_trades))

    def _finish(self, flush_s: float) -> None:
        self.console.say(f"flushing {self.sink.in_flight():,} messages in flight to Kafka")
        left = self.sink.flush(flush_s)
        if left:
            self.problem = self.problem or f"{left:,} messages still unacknowledged after {flush_s:.0f} s"
        if self.archiver is not None:
            self.console.say("waiting for the archiver to archive everything Kafka acknowledged")
            give_up = self.settings.archive.give_up_s if self.settings.archive else 0.0
            clean = self.archiver.finish(give_up + 120, self._tick)
            if not clean:
                self.problem = self.problem or "the archiver did not finish cleanly (see above)"
        self._tick(force=True)
        self.console.end_line()

    def _tick(self, force: bool = False) -> None:
        if force or self.console.due():
            self.console.progress(self._snapshot(), force=force)

    def _snapshot(self) -> Snapshot:
        warnings = []
        down = self.sink.down_for()
        if down is not None:
            warnings.append(f"Kafka unreachable for {down:.0f} s")
        archived = None
        if self.archiver is not None:
            archived = int(self.archiver.archived.value)
            if self.archiver.s3_down.value >= 0:
                warnings.append(f"S3 unreachable for {self.archiver.s3_down.value:.0f} s")
        label = self.gen.clock.label(max(self.gen.next_second - 1, 0))
        return Snapshot(self.pacer.elapsed(), label, self.sink.sent, self.sink.acked, archived,
                        self.sink.errors, tuple(warnings))

    def _summary(self, interrupted: bool) -> Summary:
        archived = int(self.archiver.archived.value) if self.archiver is not None else None
        return Summary("live", self.settings.shape.run_id, self.sink.sent, self.sink.acked, self.sink.errors,
                       archived, self.sink.prices_sent, self.pacer.elapsed(), self.gen.next_second,
                       self.first_id, self.last_id, interrupted, self.problem)
