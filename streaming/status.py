"""`python -m streaming status`: how the streaming job is doing, from its `batches_by_job` rows (Q8).

Prints, per query of the job, the current (latest) batch, its input and processing rates, the Kafka
lag it left, how long ago it finished and its trade-to-Cassandra latency percentiles; plus a median
over the last batches. Read-only: starting and stopping the job is `bin/stockafolio run|stop`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session

JOBS = ("portfolio",)
RECENT = 20  # batches the medians are taken over


def latest_batches(session: Session, keyspace: str, job: str, limit: int = RECENT) -> list[Any]:
    """The newest `limit` batches of `job`, newest first (one partition, clustering order)."""
    statement = session.prepare(f"SELECT * FROM {keyspace}.batches_by_job WHERE job = ? LIMIT ?")  # noqa: S608
    return list(session.execute(statement, (job, limit)))


def report(job: str, rows: Sequence[Any], now: datetime) -> list[str]:
    """The lines `status` prints for one job (pure: rows as read, the clock injected)."""
    if not rows:
        return [f"{job}: no batch recorded yet (is the job running? start it with: bin/stockafolio run)"]
    last = rows[0]
    finished = last.finished_at.replace(tzinfo=UTC) if last.finished_at.tzinfo is None else last.finished_at
    age = (now - finished).total_seconds()
    lines = [
        f"{job}: batch {last.batch_id}, finished {age:.0f} s ago, {last.input_rows:,} rows "
        f"({last.dead_letters:,} dead letters, {last.touched_users:,} users)",
        f"  input rate      {_rate(last.input_rows_per_second)}   median of last {len(rows)}: "
        f"{_rate(_median(rows, 'input_rows_per_second'))}",
        f"  processing rate {_rate(last.processed_rows_per_second)}   median: "
        f"{_rate(_median(rows, 'processed_rows_per_second'))}",
        f"  Kafka lag       {_count(last.kafka_lag)} records",
        f"  latency ms      p50 {_ms(getattr(last, 'latency_p50_ms', None))}  p95 "
        f"{_ms(getattr(last, 'latency_p95_ms', None))}  p99 {_ms(getattr(last, 'latency_p99_ms', None))}",
    ]
    return lines


def _median(rows: Sequence[Any], name: str) -> float | None:
    values = [getattr(r, name, None) for r in rows]
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(value: float | None, render: Callable[[float], str]) -> str:
    return "n/a" if value is None else render(value)


def _rate(value: float | None) -> str:
    return _fmt(value, lambda v: f"{v:,.0f}/s")


def _count(value: float | None) -> str:
    return _fmt(value, lambda v: f"{v:,.0f}")


def _ms(value: float | None) -> str:
    return _fmt(value, lambda v: f"{v:,.0f}")
