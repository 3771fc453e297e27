"""A micro-batch's per-user work, done where its rows are: in Spark's Python workers, one partition of
users at a time (`mapInPandas` over the batch repartitioned by `user_id`).

Each partition holds every trade of its users, so it can do all of their work alone: send its invalid
records to the dead-letter topic, read its users' `portfolio_by_user` partitions and the latest
prices, apply `state.build`, write each user's rows in one request (`store.PortfolioWriter`) and send
one event per user; it returns one summary row (counts, per-trade latency, step times) to the driver.
More executors mean more partitions working at once: nothing per user passes through the driver.

Exactly once is unchanged: the replay guards are in the data (per position and per user), so a task
that Spark retries, or a batch replayed after a crash, rewrites the same values.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from stockafolio import accounting
from stockafolio.accounting import TRADE_COLUMNS
from stockafolio.reference.model import FactorModel, load_factor_model
from stockafolio.settings import CassandraEndpoint, KafkaAuth, kafka_client_config
from streaming import publish, state, store
from streaming.parse import SOURCE

SUMMARY_DDL = ("rows BIGINT, dead_letters BIGINT, touched_users BIGINT, latency_ms ARRAY<DOUBLE>, "
               "read_s DOUBLE, compute_s DOUBLE, write_s DOUBLE, events_s DOUBLE")
STEPS = ("read", "compute", "write", "events")
EVENT_FIELDS = ("user_id", "equity_cents", "cash_cents", "market_value_total_cents", "day_pnl_cents",
                "unrealized_pnl_total_cents", "realized_pnl_total_cents", "var_99", "beta", "last_batch_id")


@dataclass(frozen=True)
class Work:
    """What every partition of one micro-batch needs (pickled to the Python workers)."""

    keyspace: str
    cassandra: CassandraEndpoint
    kafka_bootstrap: str
    kafka_auth: KafkaAuth | None
    events_topic: str
    dead_letter_topic: str
    opening: accounting.Opening
    batch_id: int
    now: datetime  # stamps `updated_at`


@dataclass(frozen=True)
class _Context:
    """Per Python worker process, made once and kept across batches."""

    writer: store.PortfolioWriter
    reader: store.PortfolioReader
    outputs: publish.Outputs
    model: FactorModel


@functools.lru_cache(maxsize=4)
def _context(keyspace: str, cassandra: CassandraEndpoint, bootstrap: str, auth: KafkaAuth | None) -> _Context:
    session = store.session_for(cassandra)
    return _Context(store.PortfolioWriter(session, keyspace, state.HOLDING_OUT, state.TOTALS_OUT,
                                          state.TRADE_ROW_COLUMNS, state.EQUITY_ROW_COLUMNS),
                    store.PortfolioReader(session, keyspace),
                    publish.Outputs(bootstrap, kafka_client_config(auth)), load_factor_model())


def process(work: Work, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """`mapInPandas` function: all rows of one partition (valid and invalid, as `job.prepared` gives
    them) -> one summary row."""
    rows = pd.concat(list(frames), ignore_index=True)
    summary = {"rows": len(rows), "dead_letters": 0, "touched_users": 0, "latency_ms": [],
               **{f"{s}_s": 0.0 for s in STEPS}}
    if len(rows):
        ctx = _context(work.keyspace, work.cassandra, work.kafka_bootstrap, work.kafka_auth)
        invalid = rows["reason"].notna()
        summary["dead_letters"] = _dead_letters(ctx, work, rows[invalid])
        trades = rows.loc[~invalid, [*TRADE_COLUMNS, "kafka_time"]].reset_index(drop=True)
        if len(trades):
            summary |= _apply(ctx, work, trades)
    yield pd.DataFrame([summary])


def _apply(ctx: _Context, work: Work, trades: pd.DataFrame) -> dict:
    steps, began = {}, time.perf_counter()
    users = sorted(int(u) for u in trades["user_id"].unique())
    prior = state.Prior.from_rows(ctx.reader.read(users))
    prices = store.latest_prices(ctx.writer.session, work.keyspace)
    steps["read_s"], began = time.perf_counter() - began, time.perf_counter()
    rows = state.build(trades, prior, prices, ctx.model, work.batch_id, work.now, work.opening)
    steps["compute_s"], began = time.perf_counter() - began, time.perf_counter()
    ctx.writer.write(rows.changed, rows.totals, rows.trades, rows.equity)
    written = datetime.now(UTC)
    steps["write_s"], began = time.perf_counter() - began, time.perf_counter()
    events = rows.totals[list(EVENT_FIELDS)].to_json(orient="records", lines=True).splitlines()
    ctx.outputs.send(work.events_topic, zip(rows.totals["user_id"].astype(str), events, strict=True))
    steps["events_s"] = time.perf_counter() - began
    return {**steps, "touched_users": len(users), "latency_ms": latency_ms(trades["kafka_time"], written)}


def _dead_letters(ctx: _Context, work: Work, invalid: pd.DataFrame) -> int:
    """`{"reason", "topic", "partition", "offset", "raw"}` per invalid record, keyed by its offset."""
    if invalid.empty:
        return 0
    letters = invalid[["reason", *SOURCE, "raw"]].to_json(orient="records", lines=True).splitlines()
    return ctx.outputs.send(work.dead_letter_topic, zip(invalid["offset"].astype(str), letters, strict=True))


def latency_ms(kafka_times: pd.Series, finished: datetime) -> list[float]:
    """Per trade: (when its writes finished) - (its Kafka record timestamp), in milliseconds."""
    stamps = pd.to_datetime(kafka_times, utc=True)
    return ((pd.Timestamp(finished) - stamps).dt.total_seconds().to_numpy() * 1000).tolist()


def combine(summaries: pd.DataFrame) -> tuple[int, int, int, np.ndarray, dict[str, float]]:
    """The partitions' summaries -> rows, dead letters, touched users, every trade's latency and, per
    step, the slowest partition's time (the step's share of the batch's wall time)."""
    latency = [np.asarray(v, dtype="float64") for v in summaries["latency_ms"] if v is not None and len(v)]
    steps = {s: float(summaries[f"{s}_s"].max()) if len(summaries) else 0.0 for s in STEPS}
    return (int(summaries["rows"].sum()), int(summaries["dead_letters"].sum()),
            int(summaries["touched_users"].sum()),
            np.concatenate(latency) if latency else np.empty(0), steps)
