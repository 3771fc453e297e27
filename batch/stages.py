"""The four stages of the night, each a thin I/O shell around the pure transforms: ingest -> views ->
reconcile -> risk. A `Night` holds the session, the settings and what one stage hands the next (the
rebuilt holdings are computed once per run and kept on HDFS)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch import holdings, ingest, reconcile, risk, store, views
from batch.services import Files, cassandra
from batch.settings import CURATED, HIST_VAR, HOLDINGS, MODELS, BatchSettings
from stockafolio.reference.model import load_universe

Say = Callable[[str], None]
# One row per user, each its own partition: UNLOGGED batches of 64 rows bound for the same replicas
# write ~4x faster than one request per row (bench/results/batch_cassandra_writes.md), ~18 KiB each.
HIST_VAR_BATCH_ROWS = 64


@dataclass
class Night:
    spark: SparkSession
    settings: BatchSettings
    say: Say
    _snapshot: DataFrame | None = field(default=None, repr=False)
    _cells: DataFrame | None = field(default=None, repr=False)
    _marks: DataFrame | None = field(default=None, repr=False)
    steps: dict[str, float] = field(default_factory=dict)  # seconds per named step, this run

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Time one step of a stage, report it (progress on long work) and keep it in `steps`."""
        t0 = time.monotonic()
        yield
        took = time.monotonic() - t0
        self.steps[label] = self.steps.get(label, 0.0) + took
        self.say(f"{label}: {took:.1f} s")

    def __post_init__(self) -> None:
        self.tune(self.files.size(self.settings.dataset(CURATED)))

    def tune(self, day_bytes: int) -> None:
        """Shuffle partitions from the size of a day (~32 MB of zstd Parquet, ~3 million trades,
        each): enough that no aggregation spills, few enough that a small day stays quick."""
        partitions = min(64, max(4, day_bytes // (32 << 20) + 1))
        self.spark.conf.set("spark.sql.shuffle.partitions", str(partitions))

    @property
    def files(self) -> Files:
        return Files(self.spark)

    def sectors(self) -> DataFrame:
        rows = [(s.symbol, s.sector, s.reference_price) for s in load_universe()]
        return self.spark.createDataFrame(rows, "symbol STRING, sector STRING, reference_price DOUBLE")

    def snapshot(self) -> DataFrame:
        """The rebuilt holdings of every user at the end of the day (all curated days through it),
        written to HDFS once per run and read back from there."""
        if self._snapshot is None:
            trades = ingest.curated(self.spark, self.settings, through=True)
            with self.step("count archived trades per symbol"):
                per_symbol = {r["symbol"]: r["count"] for r in trades.groupBy("symbol").count().collect()}
            count = sum(per_symbol.values())
            groups = self.settings.groups or holdings.groups_for(count)
            self.say(f"rebuilding holdings from {count:,} archived trades in {groups} groups")
            staged = self.files.staging(self.settings, "holdings")
            with self.step("rebuild holdings (shuffle by user, accounting, HDFS write)"):
                opening = holdings.opening(self.settings.opening_cash_cents, self.settings.seed)
                rebuilt = holdings.rebuild(trades, groups, opening, sorted(per_symbol), self.settings.day)
                rebuilt.write.parquet(staged)
                self.files.swap(staged, self.settings.dataset(HOLDINGS))
            self._snapshot = self.spark.read.parquet(self.settings.dataset(HOLDINGS))
        return self._snapshot

    def cells(self) -> DataFrame:
        """The day's (symbol, minute, side) cells, computed once per run and cached (small)."""
        if self._cells is None:
            self._cells = views.minute_side(ingest.curated(self.spark, self.settings)).persist()
        return self._cells

    def marks(self) -> DataFrame:
        """symbol, price: the day's last trade price of every name (the reference price when
        untraded), computed once per run and cached (503 rows)."""
        if self._marks is None:
            day = views.last_prices(ingest.curated(self.spark, self.settings))
            self._marks = (self.sectors().join(day, "symbol", "left")
                           .select("symbol", F.coalesce("price", "reference_price").alias("price")).persist())
        return self._marks

    def positions(self) -> DataFrame:
        """Open positions valued at the day's last trade price (the reference price when untraded)."""
        return views.valued(self.snapshot(), self.marks())


def run_ingest(night: Night) -> str:
    symbols = [s.symbol for s in load_universe()]
    report = ingest.ingest(night.spark, night.settings, symbols)
    night.tune(report.bytes)
    return report.line()


def run_views(night: Night) -> str:
    s, trades = night.settings, ingest.curated(night.spark, night.settings)
    positions = night.positions().persist()
    with night.step("fold the day into (symbol, minute, side) cells"):
        night.cells().count()
    with night.step("last trade price of every name"):
        night.marks().count()
    with night.step("value the open positions"):
        positions.count()
    cluster, session = cassandra(s.endpoints)
    try:
        now, written = store.now(), 0
        users = views.active_users(trades)
        for view, frame in views.view_rows(night.cells(), users, positions, night.sectors()).items():
            with night.step(f"view {view}"):
                written += store.write_view(session, s.keyspace, s.day, view, frame.toPandas(), now)
        totals = views.user_totals(night.snapshot()).persist()
        for metric in ("trades", "notional"):
            with night.step(f"top users by {metric}"):
                written += store.write_top_users(session, s.keyspace, s.day, metric,
                                                 views.top_users(totals, metric).toPandas(), now)
        totals.unpersist()
    finally:
        cluster.shutdown()
        positions.unpersist()
    return f"{written:,} view and ranking rows written for {len(views.VIEWS)} views + 2 rankings"


def run_reconcile(night: Night) -> str:
    s = night.settings
    rebuilt = night.snapshot()
    stored = store.portfolios(night.spark, s.keyspace).persist()
    with night.step("read portfolio_by_user"):
        stored.count()
    # not persisted: each summary query re-joins the rebuilt Parquet with the cached stored rows, which
    # costs less than materialising every compared row (13-18 s against 33-38 s for 8 M holdings)
    held = reconcile.compare_holdings(rebuilt, stored, s.day_end)
    cash = reconcile.compare_cash(rebuilt, stored, s.day_end)
    cluster, session = cassandra(s.endpoints)
    try:
        with night.step("compare and summarise"):
            report = reconcile.summarise(held, cash)
        if s.repair and report.mismatches:
            bad = ~F.col("kind").isin("ok", "after_day")
            repaired = store.repair(session, s.keyspace, held.where(bad).toPandas(),
                                    cash.where(bad).toPandas())
            report = reconcile.Report(**{**report.__dict__, "repaired": repaired})
        store.write_report(session, s.keyspace, s.day, report, store.now())
    finally:
        cluster.shutdown()
        stored.unpersist()
    lines = "".join(f"\n    {line}" for line in report.sample[:5])
    return (f"{report.users_checked:,} users, {report.holdings_checked:,} holdings checked; "
            f"{report.status}; {report.repaired} rows repaired{lines}")


def run_risk(night: Night) -> str:
    s = night.settings
    with night.step("load the price history and refit the factor model"):
        history = risk.load_history(s.sp500, night.say)
    staged = night.files.staging(s, "hist_var")
    positions = night.positions()
    groups = s.groups or max(2, night.snapshot().rdd.getNumPartitions())
    with night.step("historical VaR per user (HDFS write)"):
        risk.hist_var(positions, history, groups).write.parquet(staged)
        night.files.swap(staged, s.dataset(HIST_VAR))
    result = night.spark.read.parquet(s.dataset(HIST_VAR))
    users = result.count()
    with night.step("write hist_var_by_user to Cassandra"):
        store.append(result.withColumn("day", F.lit(s.day)).withColumn("computed_at", F.current_timestamp()),
                     s.keyspace, "hist_var_by_user", store.batched_writes(HIST_VAR_BATCH_ROWS, 5))
    version = f"{s.hdfs}/{MODELS}/version={s.day.isoformat()}"
    for name, data in risk.model_files(history).items():
        night.files.write_bytes(f"{version}/{name}", data)
    return (f"historical VaR of {users:,} users over {history.returns.shape[1]} scenarios "
            f"({history.first_day}..{history.last_day}); factor model re-estimated into {version}")


STAGES: dict[str, Callable[[Night], str]] = {
    "ingest": run_ingest, "views": run_views, "reconcile": run_reconcile, "risk": run_risk,
}
