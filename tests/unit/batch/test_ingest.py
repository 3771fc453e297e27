"""Ingest's pure parts: the schema check, the reason of each bad row, duplicates set aside."""

from __future__ import annotations

from datetime import date

import pytest

from batch import ingest
from batch.settings import BatchError
from tests.unit.batch.conftest import TRADE_DDL, trade

DAY = date(2026, 11, 20)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyspark 3.5's pandas checks


def reasons(spark, rows: list[tuple]) -> list[str | None]:
    frame = ingest.with_reason(spark.createDataFrame(rows, TRADE_DDL), DAY, ["AAPL", "MSFT"])
    return [r["reason"] for r in frame.orderBy("trade_id").collect()]


def test_valid_trades_have_no_reason(spark) -> None:
    assert reasons(spark, [trade(1, 1, "AAPL", "buy", 1, 1.0), trade(2, 2, "MSFT", "sell", 3, 9.99)]) == [
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (trade(1, 1, "NOPE", "buy", 1, 1.0), "unknown_symbol"),
        (trade(1, 1, "AAPL", "hold", 1, 1.0), "bad_side"),
        (trade(1, 1, "AAPL", "buy", 0, 1.0), "non_positive: quantity"),
        (trade(1, 1, "AAPL", "buy", 1, -2.0), "non_positive: price"),
        (trade(1, 1, "AAPL", "buy", 1, 1.0, 86_400), "wrong_date"),
        (trade(1, 1, "AAPL", "buy", 1, 1.0)[:7] + (2,), "schema_version"),
        ((1, None, "AAPL", "buy", 1, 1.0, trade(1, 1, "A", "b", 1, 1.0)[6], 1), "missing_field: user_id"),
    ],
)
def test_each_bad_row_gets_its_reason(spark, row: tuple, code: str) -> None:
    (reason,) = reasons(spark, [row])
    assert reason.startswith(code)


def test_duplicates_keep_one_valid_copy(spark) -> None:
    rows = [
        trade(1, 1, "AAPL", "buy", 1, 1.0),
        trade(1, 1, "AAPL", "buy", 1, 1.0),
        trade(2, 1, "NOPE", "buy", 1, 1.0),
        trade(2, 1, "AAPL", "buy", 1, 1.0),
        trade(3, 1, "AAPL", "buy", 1, 1.0),
    ]
    frame = ingest.with_reason(spark.createDataFrame(rows, TRADE_DDL), DAY, ["AAPL"])
    got = sorted((r["trade_id"], r["reason"] or "") for r in ingest.mark_duplicates(frame).collect())
    assert got == [
        (1, ""),
        (1, "duplicate: trade_id seen before"),
        (2, ""),
        (2, "unknown_symbol: NOPE"),
        (3, ""),
    ]


def test_schema_check_names_the_missing_or_mistyped_column(spark) -> None:
    ingest.check_schema(spark.createDataFrame([trade(1, 1, "AAPL", "buy", 1, 1.0)], TRADE_DDL))
    with pytest.raises(BatchError, match="lack the columns \\['price'\\]"):
        ingest.check_schema(
            spark.createDataFrame(
                [(1, 1, "A", "buy", 1)],
                "trade_id BIGINT, user_id BIGINT, symbol STRING, side STRING, " "quantity BIGINT",
            )
            .withColumn("event_time", ingest.F.current_timestamp())
            .withColumn("schema_version", ingest.F.lit(1))
        )
    bad = spark.createDataFrame(
        [trade(1, 1, "AAPL", "buy", 1, 1.0)], TRADE_DDL.replace("price DOUBLE", "price STRING")
    )
    with pytest.raises(BatchError, match="column price is string"):
        ingest.check_schema(bad)


def test_read_failure_names_the_file() -> None:
    from batch.settings import BatchSettings

    settings = BatchSettings(endpoints=None, day=DAY, keyspace="k", bucket="b")  # type: ignore[arg-type]
    message = ingest._read_failure(
        settings,
        RuntimeError(
            "Job aborted\norg.apache.spark.SparkException: s3a://b/trades/date=2026-11-20/hour=14/x.parquet "
            "is not a Parquet file"
        ),
    )
    assert "s3a://b/trades/date=2026-11-20/hour=14/x.parquet" in message and "--date 2026-11-20" in message


def test_repeated_ids_are_those_seen_more_than_once_in_any_partition(spark) -> None:
    ids = [5, 1, 2, 2, 9, 3, 3, 3, None, None, 7, 9]
    frame = spark.createDataFrame([(i,) for i in ids], "trade_id BIGINT").repartition(3)  # copies apart
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    assert sorted(r["trade_id"] for r in ingest.repeated_ids(frame).collect()) == [2, 3, 9]
