"""Batch health figures: end offsets from Spark's offsets log, lag, latency percentiles, input rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from streaming import health, status

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_end_offsets_come_from_the_last_line_of_the_offsets_log(tmp_path: Path) -> None:
    (tmp_path / "offsets").mkdir()
    (tmp_path / "offsets" / "7").write_text('v1\n{"batchWatermarkMs":0}\n{"trades":{"1":40,"0":25}}\n')
    assert health.batch_end_offsets(str(tmp_path), 7) == {("trades", 0): 25, ("trades", 1): 40}


def test_lag_sums_what_is_left_per_partition_never_negative() -> None:
    ends = {("t", 0): 100, ("t", 1): 50, ("t", 2): 10}
    assert health.lag(ends, {("t", 0): 90, ("t", 1): 60, ("t", 2): 10}) == 10


def test_latency_percentiles_in_ms() -> None:
    stamps = pd.Series([T0 - timedelta(milliseconds=ms) for ms in range(1, 101)])  # 1..100 ms old
    p50, p95, p99 = health.latency_ms(stamps, T0)
    assert (p50, p95, p99) == pytest.approx((50.5, 95.05, 99.01))
    assert health.latency_ms(pd.Series([], dtype="datetime64[ns, UTC]"), T0) == (None, None, None)


def test_input_rate_is_per_second_since_the_previous_batch_started() -> None:
    assert health.input_rate(1_000, T0, T0 - timedelta(seconds=4)) == 250
    assert health.input_rate(1_000, T0, None) is None


class Row:
    def __init__(self, **fields) -> None:
        self.__dict__.update(fields)


def test_status_report_names_batch_rates_lag_age_and_latency() -> None:
    row = Row(batch_id=12, finished_at=T0.replace(tzinfo=None), input_rows=8_000, dead_letters=2,
              touched_users=5_000, input_rows_per_second=4_000.0, processed_rows_per_second=2_500.0,
              kafka_lag=1_234, latency_p50_ms=800.0, latency_p95_ms=1_500.0, latency_p99_ms=2_100.0)
    lines = status.report("portfolio", [row], T0 + timedelta(seconds=3))
    text = "\n".join(lines)
    assert "batch 12, finished 3 s ago, 8,000 rows" in text
    assert "4,000/s" in text and "2,500/s" in text and "1,234 records" in text
    assert "p50 800  p95 1,500  p99 2,100" in text
    assert "bin/stockafolio run" in status.report("portfolio", [], T0)[0]
