"""The streaming job: Kafka `trades` -> holdings, P&L, market views and per-user events in Cassandra
and Kafka, exactly once, in one Spark Structured Streaming query.

    python -m streaming.job --keyspace stockafolio [--checkpoint var/data/streaming/checkpoint] ...

Kafka offsets live in the Spark checkpoint; every Cassandra write is an upsert of absolute values and
the accounting skips trades at or below the stored per-position and per-user guards, so re-running a
micro-batch after a kill -9 (of the job, Kafka or Cassandra) rewrites the same values. Per micro-batch,
in the driver: read the batch's records from Kafka for the offsets Spark planned (`source`), parse
them (`parse`; a batch with anything but canonical trades is parsed in the JVM), send invalid records
to the dead-letter topic with their reason, take the touched users' stored state from the state cache
or Cassandra, classify the trades (`order`), move the market views by the new ones (`market`), apply
`state.build`, write the touched users' rows (packed UNLOGGED requests; from the executors for large
batches), publish one event per touched user, record the batch's health.
Kafka outputs (dead letters, events) are at least once: a replay republishes them with the same
`batch_id` and offsets, so consumers can drop duplicates.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from stockafolio import accounting, cash, records, topics
from stockafolio.accounting import TRADE_COLUMNS
from stockafolio.argtypes import non_negative_int as _non_negative
from stockafolio.cql import check_identifier
from stockafolio.errors import StockafolioError
from stockafolio.reference.model import FactorModel, load_factor_model
from stockafolio.settings import (
    CassandraEndpoint,
    Endpoints,
    KafkaAuth,
    default_keyspace,
    default_var_dir,
    kafka_client_config,
    spark_kafka_options,
)
from streaming import health, market, parse, publish, source, state, store, upgrade
from streaming.parse import SOURCE, parse_trades
from streaming.prices import PriceFeed
from streaming.state_cache import StateCache

LOG = logging.getLogger("streaming.job")
JOB = "portfolio"
PORTFOLIO_DDL = (
    "user_id BIGINT, symbol STRING, quantity BIGINT, cost_basis_cents BIGINT, avg_cost DOUBLE, "
    "realized_pnl_cents BIGINT, last_price DOUBLE, market_value_cents BIGINT, unrealized_pnl_cents BIGINT, "
    "last_trade_id BIGINT, last_trade_time TIMESTAMP, cash_cents BIGINT, cash_last_trade_id BIGINT, "
    "market_value_total_cents BIGINT, unrealized_pnl_total_cents BIGINT, realized_pnl_total_cents BIGINT, "
    "equity_cents BIGINT, day DATE, day_open_equity_cents BIGINT, day_pnl_cents BIGINT, daily_vol DOUBLE, "
    "beta DOUBLE, var_95 DOUBLE, var_99 DOUBLE, es_95 DOUBLE, es_99 DOUBLE, "
    "sector_weights MAP<STRING,DOUBLE>, largest_position_weight DOUBLE, last_batch_id BIGINT, "
    "updated_at TIMESTAMP")
TRADES_DDL = ("user_id BIGINT, day DATE, trade_id BIGINT, symbol STRING, side STRING, quantity BIGINT, "
              "price DOUBLE, event_time TIMESTAMP")
EQUITY_DDL = ("user_id BIGINT, day DATE, minute TIMESTAMP, equity_cents BIGINT, market_value_cents BIGINT, "
              "cash_cents BIGINT, day_pnl_cents BIGINT")
NO_MINUTES = pd.Series(dtype="datetime64[us]")  # no user's previous trade minute known
LATENCY_COLUMNS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
BATCHES_DDL = ("job STRING, batch_id BIGINT, started_at TIMESTAMP, finished_at TIMESTAMP, input_rows BIGINT, "
               "dead_letters BIGINT, touched_users BIGINT, input_rows_per_second DOUBLE, "
               "processed_rows_per_second DOUBLE, kafka_lag BIGINT, "
               + ", ".join(f"{c} DOUBLE" for c in LATENCY_COLUMNS))
EVENT_FIELDS = ("user_id", "equity_cents", "cash_cents", "market_value_total_cents", "day_pnl_cents",
                "unrealized_pnl_total_cents", "realized_pnl_total_cents", "last_batch_id")


@dataclass(frozen=True)
class JobSettings:
    """Everything the job needs, built once at the entry point."""

    kafka_bootstrap: str
    keyspace: str
    checkpoint: str
    cassandra: CassandraEndpoint  # for the driver-side session that writes portfolio_by_user
    trades_topic: str = topics.TRADES
    dead_letter_topic: str = topics.TRADES_DEAD_LETTER
    events_topic: str = topics.PORTFOLIO_EVENTS
    trigger_seconds: float = 2.0  # the micro-batch interval
    max_offsets_per_trigger: int = 40_000
    opening_cash_cents: int | None = None  # one amount for every new user; None: the generator's cash
    seed: int = cash.DEFAULT_SEED  # the generator's --seed, from which each user's starting cash derives
    prices_topic: str = topics.PRICES
    views: bool = True  # move the market views (Q5-Q7a) with every batch (streaming/market.py)
    kafka_auth: KafkaAuth | None = None  # the cluster's SASL login (None: the local broker, no login)
    executor_write_users: int = 5_000  # batches touching at least this many users write from executors
    driver_read_users: int = 10_000    # batches touching fewer users read their state through the driver
    write_partitions: int | None = None  # executor tasks of such a write (None: Spark's parallelism)
    state_cache_users: int = 500_000  # users whose stored rows the driver keeps (streaming/state_cache.py)
    kafka_read: str = "driver"  # how a batch's records reach the driver: "driver" (librdkafka) or "spark"

    @property
    def opening(self) -> accounting.Opening:
        """A new user's cash: the constant when given, else the generator's per-user starting cash."""
        if self.opening_cash_cents is not None:
            return self.opening_cash_cents
        return functools.partial(cash.opening_cash_cents, seed=self.seed)


class BatchWriter:
    """The `foreachBatch` function: one call per micro-batch, all state in Cassandra."""

    def __init__(self, spark: SparkSession, settings: JobSettings, model: FactorModel) -> None:
        self.spark, self.settings, self.model = spark, settings, model
        self.symbols = list(model.symbols)
        self.symbol_set = frozenset(self.symbols)
        self.spec = store.WriteSpec(settings.keyspace, settings.cassandra, tuple(state.HOLDING_OUT),
                                    tuple(state.TOTALS_OUT), tuple(_columns(TRADES_DDL)),
                                    tuple(_columns(EQUITY_DDL)))
        self.portfolio = store.PortfolioWriter(store.session_for(settings.cassandra), self.spec)
        self.prior_reader = store.PriorReader(self.portfolio.session, settings.keyspace)
        self.cache = StateCache(settings.state_cache_users)
        self.views = market.MarketViews(self.portfolio.session, settings.keyspace) if settings.views else None
        self.closes = market.PreviousCloses(self.portfolio.session, settings.keyspace, self.symbols)
        self.query_id: str | None = None  # the running query's id (from its checkpoint), for view guards
        self.retired: upgrade.Retired | None = None  # what an older release's views query counted
        self.prices = PriceFeed(settings.kafka_bootstrap, settings.prices_topic, self.portfolio.session,
                                settings.keyspace, kafka_client_config(settings.kafka_auth)).start()
        atexit.register(self.prices.stop)  # before the session's own shutdown (atexit runs last-in first)
        self.batch_done = True  # False while a batch runs: a batch that raised leaves the cache suspect
        self.collector = Collector()
        self.partitions = settings.write_partitions or spark.sparkContext.defaultParallelism
        self.kafka = health.KafkaEnds(settings.kafka_bootstrap, settings.kafka_auth)
        self.outputs = publish.Outputs(settings.kafka_bootstrap, kafka_client_config(settings.kafka_auth))
        self.batches = store.RowWriter(self.portfolio.session, settings.keyspace, "batches_by_job",
                                       _columns(BATCHES_DDL))
        self.previous_start: datetime | None = None
        self.older_runs_forgotten = False  # Q8 rows of an earlier checkpoint, at the first batch
        self.read_checkpoint = health.hadoop_reader(spark)
        self.reader = None
        self.batch_ends: tuple[int, health.Offsets] | None = None  # the last batch's, as read for its records
        if settings.kafka_read == "driver":
            self.reader = source.RangeReader(settings.kafka_bootstrap,
                                             kafka_client_config(settings.kafka_auth))
            atexit.register(self.reader.close)

    def __call__(self, raw: DataFrame, batch_id: int) -> None:
        started, step = datetime.now(UTC), _Steps(batch_id)
        if not self.batch_done:  # the previous batch failed (or is being replayed): read afresh
            self.cache.clear()
            if self.views:
                self.views.clear()
            self.collector.full()
        self.batch_done = False
        with step("collect"):  # valid and invalid rows together
            rows = self._parsed(raw, batch_id)
        invalid = rows["reason"].notna()
        dead = self._dead_letters(rows[invalid])
        trades = rows.loc[~invalid, [*TRADE_COLUMNS, "kafka_time", "partition", "offset"]]
        trades = trades.reset_index(drop=True)
        touched, refused = self._apply(trades, batch_id, started, step) if len(trades) else (0, 0)
        written = datetime.now(UTC)
        with step("health"):
            self._health(batch_id, started, len(trades) + dead, dead + refused, touched,
                         health.latency_ms(trades["kafka_time"], written))
        self.batch_done = True
        self.collector.after_batch()

    def _parsed(self, raw: DataFrame, batch_id: int) -> pd.DataFrame:
        """The batch's records, parsed: in the driver when every record is a canonical trade, else in
        the JVM with the checks that decide what is a dead letter (a Spark job over the same offsets).
        The records reach the driver straight from Kafka (`source.RangeReader`, the offsets Spark
        planned for this batch id: ~8 ms of CPU for 1,000 records, no Spark job), or with
        `kafka_read="spark"` through a Spark job (`parse.collect_raw`: ~0.3 s for 2,000 records)."""
        if self.reader is not None:
            ranges = source.batch_ranges(self.settings.checkpoint, batch_id, self.read_checkpoint)
            self.batch_ends = (batch_id, {key: end for key, (_, end) in ranges.items()})
            records = self.reader.read(ranges)
        else:
            records = parse.collect_raw(raw)
        fast = parse.canonical_trades(records, self.symbol_set)
        return fast if fast is not None else collect(parse_trades(raw, self.symbols))

    def _apply(self, trades: pd.DataFrame, batch_id: int, now: datetime, step: _Steps) -> tuple[int, int]:
        """Apply the batch's valid trades; (users touched, trades refused as out of order or repeated)."""
        users = sorted(int(u) for u in trades["user_id"].unique())
        with step("read"):
            prior = state.Prior.from_rows(self._prior_rows(users))
            prices = self.prices.latest()
        kept, refused = state.split_by_order(trades, prior)
        self._refused(refused)  # before the state write: a replay after it sees them as read
        if kept.empty:
            return 0, len(refused)
        if self.views:
            with step("views"):  # before any portfolio row: see streaming/market.py
                if self.retired is None:
                    self.retired = self._retire_old_views()
                new = kept["new"].to_numpy() & self.retired.uncounted(kept)
                self.views.apply(kept.loc[new], market.previous_minutes(prior.holdings),
                                 f"{self._query_id()}:{batch_id}")
        with step("compute"):
            closes = self.closes.before(state.batch_day(kept))  # read once a day
            rows = state.build(kept, prior, prices, batch_id, now, self.settings.opening,
                               state.last_read(trades), closes)
        with step("write"):
            self._write(self.portfolio.group(rows.changed, rows.totals, rows.trades, rows.equity))
        self.cache.remember(rows.portfolio)  # acknowledged: what Cassandra now holds for these users
        with step("events"):
            self._events(rows.totals)
        return len(rows.totals), len(refused)

    def _retire_old_views(self) -> upgrade.Retired:
        """On an older release's checkpoint: the views caught up with its market query's (once)."""
        reader = self.reader or source.RangeReader(self.settings.kafka_bootstrap,
                                                   kafka_client_config(self.settings.kafka_auth))
        try:
            return upgrade.retire(self.settings.checkpoint, self.settings.trades_topic,
                                  upgrade.hadoop_files(self.spark), reader,
                                  lambda trades, guard: self.views.apply(trades, NO_MINUTES, guard),
                                  self.symbol_set)
        finally:
            if reader is not self.reader:
                reader.close()

    def _query_id(self) -> str:
        """The portfolio query's id: kept in its checkpoint, so stable across restarts, new with a new
        checkpoint (whose batch ids start again at 0)."""
        if self.query_id is None:
            name = query_name(self.settings)
            ids = [q.id for q in self.spark.streams.active if q.name == name]
            if len(ids) != 1:
                raise RuntimeError(f"expected one active streaming query named {name!r}, found {len(ids)}")
            self.query_id = ids[0]
        return self.query_id

    def _prior_rows(self, users: list[int]) -> pd.DataFrame:
        """The users' partitions: from the state cache for users the job wrote lately, the others read
        through the driver's session when they are few (no Spark job: ~0.16 s for 3,000 users against
        0.8-3.3 s), else through the connector's direct join, spread over the executors."""
        cached, missing = self.cache.split(users)
        if not missing or len(missing) < self.settings.driver_read_users:
            return store.prior_frame(cached + (self.prior_reader.read_rows(missing) if missing else []))
        read = store.portfolios_of(self.spark, self.settings.keyspace, missing)
        return pd.concat([store.prior_frame(cached), read], ignore_index=True) if cached else read

    def _write(self, users: list[store.UserRows]) -> None:
        """From the executors (one slice of the users per task, in parallel, each worker with its own
        session) when the batch is large; from the driver when a Spark job would cost more than it
        saves."""
        if len(users) < self.settings.executor_write_users:
            self.portfolio.send(users)
            return
        write = functools.partial(store.write_partition, self.spec)
        self.spark.sparkContext.parallelize(users, self.partitions).foreachPartition(write)

    def _dead_letters(self, invalid: pd.DataFrame) -> int:
        """One bounded dead letter per invalid record (`publish.dead_letter`), keyed by its offset. The
        reason is the wire contract's own (`records.invalid_trade_reason` on the record's bytes), so it
        reads as the archiver's and the nightly's do; the JVM's reason stands only where the two
        disagree, which is logged."""
        if invalid.empty:
            return 0
        letters = [(str(row.offset), dead_letter_of(row, self.symbol_set))
                   for row in invalid.itertuples(index=False)]
        return self.outputs.send(self.settings.dead_letter_topic, letters)

    def _refused(self, refused: pd.DataFrame) -> int:
        """Dead letters for valid trades that arrived out of order or twice (`streaming.order`); the
        record is shown as the trade's canonical JSON."""
        if refused.empty:
            return 0
        topic = self.settings.trades_topic
        letters = [(str(row.offset), publish.dead_letter(row.reason, topic, row.partition, row.offset,
                                                         _trade_json(row)))
                   for row in refused.itertuples(index=False)]
        return self.outputs.send(self.settings.dead_letter_topic, letters)

    def _events(self, totals: pd.DataFrame) -> None:
        """One JSON event per touched user, keyed by user id (the topic is compacted)."""
        events = totals[list(EVENT_FIELDS)].to_json(orient="records", lines=True).splitlines()
        keys = totals["user_id"].astype(str)
        self.outputs.send(self.settings.events_topic, zip(keys, events, strict=True))

    def _health(self, batch_id: int, started: datetime, rows: int, dead: int, touched: int,
                latency: tuple[float | None, ...]) -> None:
        finished = datetime.now(UTC)
        seconds = max((finished - started).total_seconds(), 1e-6)
        lag = self._lag(batch_id)
        row = {"job": JOB, "batch_id": batch_id, "started_at": started, "finished_at": finished,
               "input_rows": rows, "dead_letters": dead, "touched_users": touched,
               "input_rows_per_second": health.input_rate(rows, started, self.previous_start),
               "processed_rows_per_second": rows / seconds, "kafka_lag": lag,
               **dict(zip(LATENCY_COLUMNS, latency, strict=True))}
        self.previous_start = started
        if not self.older_runs_forgotten:  # rows above it are an earlier checkpoint's (ids restart at 0)
            store.forget_batches_after(self.portfolio.session, self.settings.keyspace, JOB, batch_id)
            self.older_runs_forgotten = True
        self.batches.write(pd.DataFrame([row]))
        LOG.info("batch %d: %d rows (%d dead letters), %d users in %.2f s, lag %s, latency p99 %s ms, "
                 "state cache %d users, %d hits / %d misses since start", batch_id, rows, dead, touched,
                 seconds, lag, latency[-1], len(self.cache.users), self.cache.hits, self.cache.misses)

    def _lag(self, batch_id: int) -> int | None:
        """None when Kafka does not answer or the offsets log cannot be read (read once per batch: the
        records' read already has it)."""
        if self.batch_ends is not None and self.batch_ends[0] == batch_id:
            processed = self.batch_ends[1]
        else:
            try:
                processed = health.batch_end_offsets(self.settings.checkpoint, batch_id, self.read_checkpoint)
            except OSError:
                return None
        ends = self.kafka.ends(sorted(processed))
        return health.lag(ends, processed) if ends is not None else None


class Collector:
    """Keeps Python's cycle collector off the caches. The state cache holds the rows of up to
    500,000 users (millions of objects), and each full collection walks all of them (~0.2 s for
    500,000 users here), more often as the cache grows. After each batch, what survived it (the
    caches, mostly) is frozen: collections then look at each batch's new objects only. Frozen objects
    are still freed when their last reference goes; only a reference cycle among them would wait, so
    every FULL_EVERY batches, and after a failed batch, everything is unfrozen and collected once."""

    FULL_EVERY = 500

    def __init__(self) -> None:
        self.batches = 0

    def after_batch(self) -> None:
        self.batches += 1
        if self.batches >= self.FULL_EVERY:
            self.full()
        gc.freeze()

    def full(self) -> None:
        gc.unfreeze()
        gc.collect()
        self.batches = 0


def dead_letter_of(row, symbols: frozenset[str]) -> bytes:
    """The dead letter of one invalid row of `collect`: the contract's reason for its bytes (the JVM's
    where the two disagree on validity, which is logged; they name a string field holding another JSON
    type differently, unknown_symbol or bad_side against bad_type, and that is not logged)."""
    raw = None if row.raw is None or (isinstance(row.raw, float) and pd.isna(row.raw)) else bytes(row.raw)
    reason = records.invalid_trade_reason(raw, symbols)
    if reason is None:
        LOG.warning("the stream's parse refused %s-%s@%s (%s) but the contract accepts it",
                    row.topic, row.partition, row.offset, row.reason)
        reason = row.reason
    return publish.dead_letter(reason, row.topic, row.partition, row.offset, raw)


def _trade_json(row) -> bytes:
    """A valid trade's fields as the wire's JSON (for a dead letter that quotes it)."""
    fields = {name: getattr(row, name) for name in TRADE_COLUMNS}
    fields["event_time"] = records.format_time(pd.Timestamp(fields["event_time"]).tz_localize(UTC)
                                               .to_pydatetime())
    return orjson.dumps({**fields, "schema_version": records.TRADE_SCHEMA_VERSION},
                        option=orjson.OPT_SERIALIZE_NUMPY)


def collect(parsed: DataFrame) -> pd.DataFrame:
    """The parsed batch in the driver, valid and invalid rows in one Spark job (Arrow). Integer trade
    fields of invalid rows are set to 0 (null would turn the whole column into floats and lose trade
    ids above 2**53); `raw`, the record's bytes, is kept for invalid rows only."""
    ints = {"trade_id", "user_id", "quantity"}
    fields = [F.coalesce(F.col(c), F.lit(0)).alias(c) if c in ints else F.col(c) for c in TRADE_COLUMNS]
    raw = F.when(F.col("reason").isNotNull(), F.col("raw_bytes")).alias("raw")
    return parsed.select(*fields, "kafka_time", "reason", *SOURCE, raw).toPandas()


def _columns(ddl: str) -> list[str]:
    return [part.split()[0] for part in ddl.split(", ")]


class _Steps:
    """Logs how long each step of a batch took (the numbers behind the README's figures)."""

    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        yield
        LOG.info("batch %d: %s %.2f s", self.batch_id, name, time.perf_counter() - began)


def start(spark: SparkSession, settings: JobSettings, available_now: bool = False) -> StreamingQuery:
    """Start the portfolio query (with the market views unless `settings.views` is off);
    `available_now` processes what is in the topic and stops (tests, catch-up)."""
    _configure(spark)
    raw = kafka_stream(spark, settings.kafka_bootstrap, settings.trades_topic,
                       settings.max_offsets_per_trigger, settings.kafka_auth)
    writer = raw.writeStream.foreachBatch(BatchWriter(spark, settings, load_factor_model()))
    trigger = _trigger(settings, available_now)
    return (writer.option("checkpointLocation", settings.checkpoint).trigger(**trigger)
            .queryName(query_name(settings)).start())


def query_name(settings: JobSettings) -> str:
    return f"{JOB}-{settings.keyspace}"


def kafka_stream(spark: SparkSession, bootstrap: str, topic: str, max_offsets: int,
                 auth: KafkaAuth | None = None) -> DataFrame:
    return (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
            .options(**spark_kafka_options(auth))
            .option("subscribe", topic).option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", max_offsets).load())


def _configure(spark: SparkSession) -> None:
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    spark.conf.set("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")


def _trigger(settings: JobSettings, available_now: bool) -> dict:
    if available_now:
        return {"availableNow": True}
    return {"processingTime": f"{settings.trigger_seconds} seconds"}


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    var = default_var_dir()
    try:
        endpoints = Endpoints.load(var)
    except StockafolioError as exc:
        raise SystemExit(f"streaming.job: {exc}") from None
    settings = _settings(args, endpoints, var)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ["SPARK_CONF_DIR"] = endpoints.spark.conf_dir
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors' Python workers: this venv
    spark = (SparkSession.builder.master(master(endpoints.spark.master, args.local_task_slots))
             .appName("streaming")
             .config(map=endpoints.cassandra.spark_conf())  # the cluster's login, if any
             .config(map=local_read_conf(endpoints.spark.master, args.local_task_slots))
             .getOrCreate())
    query = start(spark, settings, available_now=args.available_now)
    query.awaitTermination()  # runs until stopped (or, with --available-now, caught up)


def master(configured: str, local_slots: int) -> str:
    """The stack's Spark master, with `local_slots` task threads when it is a local one (local[N]).

    Measured when the job still ran three streaming queries in one Spark application: with as many
    task threads as cores (the stack's local[2]), a portfolio micro-batch's Kafka read queued behind
    the market views' tasks while ~40 % of the CPU stayed idle; twice as many threads let the OS
    interleave them. At 500 trades/s, trade to browser (bench/webapp_load.py, 30 trades each, same
    stack): local[2] p50 6.4 s, p99 8.6 s; local[4] p50 3.2 s, p99 5.7 s. A cluster master is kept
    as it is."""
    if local_slots and re.fullmatch(r"local(\[(\d+|\*)\])?", configured):
        return f"local[{local_slots}]"
    return configured


LOCAL_JOIN_READS = 512  # direct-join reads in flight in one local JVM, all tasks together


def local_read_conf(configured: str, local_slots: int) -> dict[str, str]:
    """With more local task threads, fewer direct-join reads per task. The connector's default, 512
    per task, is what one connection to a node can carry (1,024 requests in flight with driver 4's
    defaults) for two tasks; with four, a 20,000 trades/s batch's join failed with 'No connection was
    available to Node(127.0.0.1:9042)' and stopped the job. A cluster keeps the connector's default."""
    if master(configured, local_slots) == configured:
        return {}
    return {"spark.cassandra.concurrent.reads": str(max(1, LOCAL_JOIN_READS // local_slots))}


def executor_work(configured: str, local_slots: int, write_users: int | None,
                  read_users: int | None) -> dict[str, int]:
    """Which batches the executors read and write for (`JobSettings.executor_write_users`,
    `driver_read_users`): as given, else 5,000 / 10,000 users on a cluster, where the executors add
    cores, and never with a local master, where they share the driver's. Measured on this 2-core
    machine (bench/results/streaming_cost.md, step 3, 10,000,000 users): at 20,000 trades/s offered
    the job processed 5,469 trades/s with every read and write in the driver against 4,612 with the
    executors' (0.28 against 0.35 CPU ms a trade); at 2,000 trades/s the first batch of 5,000 users
    waited 6 s for the executors' Python workers to start, and the latency of the batches behind it
    went to 11 s."""
    local = configured.startswith("local")
    never = 10**9
    return {"executor_write_users": write_users if write_users is not None else (never if local else 5_000),
            "driver_read_users": read_users if read_users is not None else (never if local else 10_000)}


def _settings(args: argparse.Namespace, endpoints: Endpoints, var: Path) -> JobSettings:
    return JobSettings(
        kafka_bootstrap=endpoints.kafka.bootstrap_servers, kafka_auth=endpoints.kafka.auth,
        cassandra=endpoints.cassandra,
        keyspace=check_identifier(args.keyspace or default_keyspace()),
        checkpoint=args.checkpoint or str(var / "data" / "streaming" / "checkpoint"),
        trades_topic=args.trades_topic, prices_topic=args.prices_topic, events_topic=args.events_topic,
        dead_letter_topic=args.dead_letter_topic, trigger_seconds=args.trigger_seconds,
        views=not args.no_views,
        **executor_work(endpoints.spark.master, args.local_task_slots, args.executor_write_users,
                        args.driver_read_users),
        write_partitions=args.write_partitions,
        max_offsets_per_trigger=args.max_offsets_per_trigger, seed=args.seed,
        state_cache_users=args.state_cache_users, kafka_read=args.kafka_read,
        opening_cash_cents=None if args.opening_cash is None else round(args.opening_cash * 100))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streaming.job",
        description="Kafka trades -> portfolios (Q1-Q3), firm/market views (Q4-Q7a) and per-user events, "
                    "exactly once. On the stack it is a managed pipeline process: start and stop it with "
                    "`bin/stockafolio run` / `bin/stockafolio stop`; inspect it with "
                    "`python -m streaming status`.",
        epilog="Endpoints come from <var>/endpoints (STOCKAFOLIO_VAR), the keyspace from "
               "STOCKAFOLIO_KEYSPACE.")
    parser.add_argument("--keyspace", help="Cassandra keyspace (default: the stack's keyspace)")
    parser.add_argument("--checkpoint", help="checkpoint folder of the portfolio query (default: "
                        "<var>/data/streaming/checkpoint)")
    parser.add_argument("--trades-topic", default=topics.TRADES, help="(default: %(default)s)")
    parser.add_argument("--prices-topic", default=topics.PRICES, help="(default: %(default)s)")
    parser.add_argument("--events-topic", default=topics.PORTFOLIO_EVENTS,
                        help="per-user portfolio updates (default: %(default)s)")
    parser.add_argument("--dead-letter-topic", default=topics.TRADES_DEAD_LETTER,
                        help="malformed trades with the reason and the original bytes (default: %(default)s)")
    parser.add_argument("--seed", type=_non_negative, default=cash.DEFAULT_SEED,
                        help="the generator's --seed: a new user opens with the cash the generator gave "
                             "them (default: %(default)s)")
    parser.add_argument("--opening-cash", type=float, default=None,
                        help="instead of --seed: the same opening cash for every new user, in dollars")
    parser.add_argument("--trigger-seconds", type=float, default=2.0,
                        help="micro-batch interval (default: %(default)s)")
    parser.add_argument("--max-offsets-per-trigger", type=_positive, default=40_000,
                        help="trades per portfolio micro-batch at most (default: %(default)s)")
    parser.add_argument("--executor-write-users", type=_positive, default=None,
                        help="a batch touching at least this many users is written from the executors, "
                             "in parallel; smaller ones from the driver (default: 5,000 with a cluster "
                             "master; with a local one every batch from the driver)")
    parser.add_argument("--driver-read-users", type=_non_negative, default=None,
                        help="a batch touching fewer users reads their state through the driver's "
                             "session, without a Spark job; larger ones through the connector's direct "
                             "join on the executors (0: always the join; default: 10,000 with a cluster "
                             "master; with a local one every batch through the driver)")
    parser.add_argument("--local-task-slots", type=_non_negative, default=2 * (os.cpu_count() or 1),
                        help="with a local Spark master: task threads of its executor, i.e. local[N] "
                             "(0: the stack's master as configured; default: twice the cores, "
                             "%(default)s here, so the portfolio query's tasks do not wait behind the "
                             "views' ones while cores idle; ignored on a cluster)")
    parser.add_argument("--write-partitions", type=_positive, default=None,
                        help="executor tasks of such a write (default: Spark's default parallelism)")
    parser.add_argument("--state-cache-users", type=_non_negative, default=500_000,
                        help="users whose stored rows the driver keeps after writing them, so their next "
                             "batch reads nothing from Cassandra (0: read every touched user; "
                             "default: %(default)s; a user of five holdings takes ~2 KB)")
    parser.add_argument("--kafka-read", choices=("driver", "spark"), default="driver",
                        help="how a micro-batch's records reach the driver: read by the driver from "
                             "Kafka for exactly the offsets Spark planned (driver), or by a Spark job "
                             "on the executors (spark); default: %(default)s")
    parser.add_argument("--no-views", action="store_true",
                        help="leave the market views (Q5-Q7a) alone: portfolios only")
    parser.add_argument("--available-now", action="store_true", help="process what is there, then stop")
    return parser


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}")
    return value


if __name__ == "__main__":
    main()
