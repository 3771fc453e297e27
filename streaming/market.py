"""The firm and market views, written by one more streaming query of the job, exactly once.

`market` (trades): Spark's checkpointed stateful aggregation per (minute, symbol) and per minute
firm-wide (with the exact set of active users), event-time watermark `late_minutes`, update mode: every
micro-batch emits the *absolute* totals of the minutes it touched. `foreachBatch` upserts them as Q5 and
Q6 rows and moves Q7a (day totals) by the difference between the new minute totals and the stored ones.
A replayed batch re-emits the same totals (the state store reloads the version before it and the
offsets log holds the same range); Q5/Q6 upserts are idempotent and each Q7a row carries the id of the
batch it already holds (`applied_batch`), so a replay skips it.

Q4 (the latest prices) is written by `streaming.prices.PriceFeed`, without a Spark query.
"""

from __future__ import annotations

import logging
import time

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from stockafolio.settings import KafkaAuth, spark_kafka_options
from streaming import store, views
from streaming.parse import parse_trades

LOG = logging.getLogger("streaming.market")
CONCURRENCY = 64


def minute_aggregates(valid: DataFrame, late_minutes: float) -> DataFrame:
    """Valid trades (as `parse_trades` gives them) -> per minute, per symbol and firm-wide (key
    `views.FIRM`): counts, volumes, notional in cents, last price and (firm rows) distinct users."""
    buy = F.col("side") == "buy"
    cents = F.round(F.col("price") * 100).cast("long")
    keyed = (valid.withWatermark("event_time", f"{round(late_minutes * 60)} seconds")
             .select("event_time", "trade_id", "user_id", "price", "quantity", buy.alias("buy"),
                     (F.col("quantity") * cents).alias("notional"),
                     F.explode(F.array(F.col("symbol"), F.lit(views.FIRM))).alias("key")))
    firm_user = F.when(F.col("key") == views.FIRM, F.col("user_id"))
    aggregated = keyed.groupBy(F.window("event_time", "1 minute"), "key").agg(
        F.count(F.lit(1)).alias("trades"), F.sum("quantity").alias("volume"),
        F.sum("notional").alias("notional_cents"),
        F.sum(F.col("buy").cast("long")).alias("buy_trades"),
        F.sum((~F.col("buy")).cast("long")).alias("sell_trades"),
        F.sum(F.when(F.col("buy"), F.col("quantity")).otherwise(0)).alias("buy_volume"),
        F.sum(F.when(F.col("buy"), 0).otherwise(F.col("quantity"))).alias("sell_volume"),
        F.max_by("price", F.struct("event_time", "trade_id")).alias("last_price"),
        F.size(F.collect_set(firm_user)).alias("active_users"))
    return aggregated.select(F.col("window.start").alias("minute"), "key", *views.COUNTS, "last_price",
                             "active_users")


class ViewStore:
    """Reads and upserts of Q5-Q7a through the driver (prepared once; a few hundred rows a batch)."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self.session, ks = session, keyspace
        self.q5 = self._insert(f"{ks}.symbol_stats_by_day_symbol", views.Q5_COLUMNS)
        self.q6 = self._insert(f"{ks}.firm_activity_by_day", views.Q6_COLUMNS)
        self.q7a = self._insert(f"{ks}.symbol_totals_by_day", [*views.Q7A_COLUMNS, "applied_batch"])
        self.read_minutes = session.prepare(
            f"SELECT day, symbol, minute, {', '.join(views.TOTALS)} FROM {ks}.symbol_stats_by_day_symbol "  # noqa: S608
            "WHERE day = ? AND symbol = ? AND minute >= ? AND minute <= ?")
        self.read_days = session.prepare(
            f"SELECT day, symbol, applied_batch, {', '.join(views.TOTALS)} FROM {ks}.symbol_totals_by_day "  # noqa: S608
            "WHERE day = ?")

    def _insert(self, table: str, columns: list[str]):
        # the keyspace passed check_identifier and the columns are constants; values are always bound
        return self.session.prepare(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                                    f"VALUES ({', '.join('?' * len(columns))})")

    def stored_minutes(self, q5: pd.DataFrame) -> pd.DataFrame:
        spans = q5.groupby(["day", "symbol"])["minute"].agg(["min", "max"]).reset_index()
        args = [(r.day, r.symbol, r.min.to_pydatetime(), r.max.to_pydatetime()) for r in spans.itertuples()]
        return self._rows(self.read_minutes, args)

    def stored_days(self, days: list) -> pd.DataFrame:
        return self._rows(self.read_days, [(d,) for d in days])

    def _rows(self, statement, args: list[tuple]) -> pd.DataFrame:
        results = execute_concurrent_with_args(self.session, statement, args, concurrency=CONCURRENCY,
                                               raise_on_first_error=True)
        rows = [row._asdict() for ok, result in results for row in result]
        return pd.DataFrame(rows)

    def write(self, statement, frame: pd.DataFrame, columns: list[str]) -> None:
        values = list(store.values(frame, columns))
        execute_concurrent_with_args(self.session, statement, values, concurrency=CONCURRENCY,
                                     raise_on_first_error=True)


class MarketWriter:
    """`foreachBatch` of the market query: Q5, Q6 as emitted, Q7a by guarded deltas."""

    def __init__(self, spark: SparkSession, views_store: ViewStore, name: str) -> None:
        self.spark, self.store, self.name = spark, views_store, name

    def __call__(self, aggregates: DataFrame, batch_id: int) -> None:
        began = time.perf_counter()
        rows = aggregates.toPandas()
        if rows.empty:
            return
        q5, q6 = views.minute_rows(rows)
        if len(q5):
            self._day_totals(q5, f"{query_id(self.spark, self.name)}:{batch_id}")
            self.store.write(self.store.q5, q5, views.Q5_COLUMNS)
        self.store.write(self.store.q6, q6, views.Q6_COLUMNS)
        LOG.info("market batch %d: %d minute rows, %d firm rows in %.2f s", batch_id, len(q5), len(q6),
                 time.perf_counter() - began)

    def _day_totals(self, q5: pd.DataFrame, guard: str) -> None:
        """Q7a first, each row tagged with this batch: if the job dies after this, the replay finds the
        tag and skips the row (the stored minutes still predate the batch, so the delta would double)."""
        days = self.store.stored_days(sorted(set(q5["day"])))
        done = set()
        if len(days):
            tagged = days.loc[days["applied_batch"] == guard]
            done = set(zip(tagged["day"].map(str), tagged["symbol"], strict=True))
            days = days.loc[days["applied_batch"] != guard]
        todo = q5.loc[[(str(d), s) not in done for d, s in zip(q5["day"], q5["symbol"], strict=True)]]
        if todo.empty:
            return
        totals = views.day_totals(days, self.store.stored_minutes(todo), todo)
        self.store.write(self.store.q7a, totals.assign(applied_batch=guard),
                         [*views.Q7A_COLUMNS, "applied_batch"])


def query_id(spark: SparkSession, name: str) -> str:
    """The id of the running query `name`: Spark keeps it in the checkpoint, so it is stable across
    restarts and new with a new checkpoint."""
    ids = [q.id for q in spark.streams.active if q.name == name]
    if len(ids) != 1:
        raise RuntimeError(f"expected one active streaming query named {name!r}, found {len(ids)}")
    return ids[0]


def kafka_stream(spark: SparkSession, bootstrap: str, topic: str, max_offsets: int,
                 auth: KafkaAuth | None = None) -> DataFrame:
    return (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
            .options(**spark_kafka_options(auth))
            .option("subscribe", topic).option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", max_offsets).load())


def start_market(spark: SparkSession, raw: DataFrame, symbols: list[str], views_store: ViewStore,
                 checkpoint: str, late_minutes: float, trigger: dict, name: str) -> StreamingQuery:
    valid = parse_trades(raw, symbols).where(F.col("reason").isNull())
    aggregates = minute_aggregates(valid, late_minutes)
    writer = MarketWriter(spark, views_store, name)
    return (aggregates.writeStream.outputMode("update").foreachBatch(writer)
            .option("checkpointLocation", checkpoint).trigger(**trigger).queryName(name).start())
