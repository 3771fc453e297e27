"""Cassandra I/O of the batch: `portfolio_by_user` read through the Spark connector; the small
outputs (views, rankings, the report, repairs) written through one driver session with prepared
statements; the per-user historical VaR through the connector (millions of rows)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from batch.reconcile import STORED_COLUMNS, Report
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from stockafolio.cql import check_identifier

CASSANDRA = "org.apache.spark.sql.cassandra"


def portfolios(spark: SparkSession, keyspace: str) -> DataFrame:
    """Every row of `portfolio_by_user` (a full scan, spread over token ranges by the connector)."""
    return (spark.read.format(CASSANDRA).options(keyspace=keyspace, table="portfolio_by_user").load()
            .select(*STORED_COLUMNS))


def batched_writes(rows: int, in_flight: int) -> dict[str, str]:
    """Connector write options that group rows bound for the same replicas into UNLOGGED batches of
    `rows` rows, `in_flight` batches at a time per task. For a table whose every row is its own
    partition (one row per user) the default groups nothing and sends one request per row."""
    return {"spark.cassandra.output.batch.grouping.key": "replica_set",
            "spark.cassandra.output.batch.size.rows": str(rows),
            "spark.cassandra.output.concurrent.writes": str(in_flight)}


def append(frame: DataFrame, keyspace: str, table: str, options: dict[str, str] | None = None) -> None:
    (frame.write.format(CASSANDRA).mode("append").options(keyspace=keyspace, table=table, **(options or {}))
     .save())


def _run(session: Session, cql: str, rows: Iterable[Sequence]) -> int:
    rows = list(rows)
    if rows:
        for ok, result in execute_concurrent_with_args(session, session.prepare(cql), rows, concurrency=64):
            if not ok:
                raise result
    return len(rows)


def write_view(session: Session, keyspace: str, day: date, view: str, rows: pd.DataFrame,
               now: datetime) -> int:
    """Replace the (day, view) partition: delete it, then insert the ranked rows (fewer rows on a
    rerun must not leave stale ranks behind)."""
    ks = check_identifier(keyspace)
    delete = f"DELETE FROM {ks}.nightly_view_by_day_view WHERE day = ? AND \"view\" = ?"  # noqa: S608
    session.execute(session.prepare(delete), (day, view))
    cql = (f"INSERT INTO {ks}.nightly_view_by_day_view (day, \"view\", rank, label, metrics, computed_at) "  # noqa: S608 (keyspace checked)
           "VALUES (?, ?, ?, ?, ?, ?)")
    return _run(session, cql, [(day, view, int(r.rank), r.label, _clean(r.metrics), now)
                               for r in rows.itertuples()])


def _clean(metrics: dict | list) -> dict[str, float]:
    pairs = metrics.items() if isinstance(metrics, dict) else metrics
    return {k: float(v) for k, v in pairs if v is not None and v == v}  # drop nulls and NaN


def write_top_users(session: Session, keyspace: str, day: date, metric: str, rows: pd.DataFrame,
                    now: datetime) -> int:
    ks = check_identifier(keyspace)
    delete = f"DELETE FROM {ks}.top_users_by_day_metric WHERE day = ? AND metric = ?"  # noqa: S608
    session.execute(session.prepare(delete), (day, metric))
    cql = (f"INSERT INTO {ks}.top_users_by_day_metric (day, metric, rank, user_id, value, computed_at) "  # noqa: S608 (keyspace checked)
           "VALUES (?, ?, ?, ?, ?, ?)")
    return _run(session, cql, [(day, metric, int(r.rank), int(r.user_id), float(r.value), now)
                               for r in rows.itertuples()])


def write_report(session: Session, keyspace: str, day: date, report: Report, run_at: datetime) -> None:
    cql = (f"INSERT INTO {check_identifier(keyspace)}.reconciliation_by_day (day, run_at, users_checked, "  # noqa: S608 (keyspace checked)
           "holdings_checked, mismatches, repaired, status, sample) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    session.execute(session.prepare(cql), (day, run_at, report.users_checked, report.holdings_checked,
                                           report.mismatches, report.repaired, report.status, report.sample))


def repair(session: Session, keyspace: str, holdings: pd.DataFrame, cash: pd.DataFrame) -> int:
    """Rewrite the mismatched rows with the rebuilt absolute values and guards (as the stream would
    have written them): holdings missing or different are upserted (market value re-marked at the
    stored last price when there is one), rows with no trade in the archive are deleted, cash and its
    guard are set. Returns the number of rows written or deleted."""
    ks = check_identifier(keyspace)
    upsert = (f"INSERT INTO {ks}.portfolio_by_user (user_id, symbol, quantity, cost_basis_cents, avg_cost, "  # noqa: S608 (keyspace checked)
              "realized_pnl_cents, last_trade_id, last_trade_time, market_value_cents, unrealized_pnl_cents) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    gone = holdings["kind"] == "not_in_archive"
    done = _run(session, upsert, [_holding_values(r) for r in holdings.loc[~gone].itertuples()])
    done += _run(session, f"DELETE FROM {ks}.portfolio_by_user WHERE user_id = ? AND symbol = ?",  # noqa: S608 (keyspace checked)
                 [(int(r.user_id), r.symbol) for r in holdings.loc[gone].itertuples()])
    fixable = cash.loc[cash["kind"] != "not_in_archive"]
    done += _run(session, f"UPDATE {ks}.portfolio_by_user SET cash_cents = ?, cash_last_trade_id = ? "  # noqa: S608 (keyspace checked)
                 "WHERE user_id = ?",
                 [(int(r.r_cash_cents), int(r.r_cash_last_trade_id), int(r.user_id))
                  for r in fixable.itertuples()])
    return done


def _holding_values(r) -> tuple:
    q, basis = int(r.r_quantity), int(r.r_cost_basis_cents)
    mark = None if pd.isna(r.s_last_price) else round(float(r.s_last_price) * 100)
    value = None if mark is None else q * mark
    last_time = pd.Timestamp(r.r_last_trade_time)
    last_time = last_time.tz_localize(UTC) if last_time.tzinfo is None else last_time
    return (int(r.user_id), r.symbol, q, basis, basis / q / 100 if q else 0.0, int(r.r_realized_pnl_cents),
            int(r.r_last_trade_id), last_time.to_pydatetime(), value,
            None if value is None else value - basis)


def now() -> datetime:
    return datetime.now(UTC)
