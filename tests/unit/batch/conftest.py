"""One small local Spark session per test module (no services: pure DataFrame transforms)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
TRADE_DDL = (
    "trade_id BIGINT, user_id BIGINT, symbol STRING, side STRING, quantity BIGINT, price DOUBLE, "
    "event_time TIMESTAMP, schema_version BIGINT"
)


@pytest.fixture(scope="module")
def spark() -> Iterator:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("batch-unit")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def trade(i: int, user: int, symbol: str, side: str, qty: int, price: float, seconds: int = 0) -> tuple:
    """A trade row in TRADE_DDL order; event time T0 + seconds (naive UTC, as Spark returns it)."""
    return (i, user, symbol, side, qty, price, (T0 + timedelta(seconds=seconds)).replace(tzinfo=None), 1)
