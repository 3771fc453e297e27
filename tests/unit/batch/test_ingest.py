"""Ingest's pure parts: the schema check, the reason of each bad row (the wire contract's, on typed
columns), duplicates by (user, trade id) set aside."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from batch import ingest
from batch.settings import BatchError
from stockafolio import records
from tests.unit.batch.conftest import TRADE_DDL, trade

DAY = date(2026, 11, 20)
SYMBOLS = ["AAPL", "MSFT"]
COLUMNS = [column.split()[0] for column in TRADE_DDL.split(", ")]
NEXT_DAY = trade(1, 1, "AAPL", "buy", 1, 1.0, 86_400)[6]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyspark 3.5's pandas checks


def _row(**change: object) -> tuple:
    """A valid trade row of DAY with some fields changed (None: null)."""
    good = dict(zip(COLUMNS, trade(7, 42, "AAPL", "buy", 10, 310.33), strict=True))
    return tuple({**good, **change}.values())


def reasons(spark, rows: list[tuple], symbols: list[str] = SYMBOLS) -> list[str | None]:
    """`with_reason` of each row, in the order given."""
    frame = spark.createDataFrame(rows, TRADE_DDL).withColumn("_at", F.monotonically_increasing_id())
    return [r["reason"] for r in ingest.with_reason(frame, DAY, symbols).orderBy("_at").collect()]


def test_valid_trades_have_no_reason(spark) -> None:
    rows = [trade(1, 1, "AAPL", "buy", 1, 1.0), trade(2, 2, "MSFT", "sell", 3, 9.99), _row(price=0.1 + 0.2),
            _row(price=records.MAX_PRICE, quantity=records.MAX_QUANTITY)]
    assert reasons(spark, rows) == [None] * 4


CONTRACT_CASES = {
    "NaN price": _row(price=float("nan")),
    "Infinity price": _row(price=float("inf")),
    "-Infinity price": _row(price=float("-inf")),
    "-0.0 price": _row(price=-0.0),
    "negative price": _row(price=-2.0),
    "1e300 price": _row(price=1e300),
    "a cent above the largest price": _row(price=records.MAX_PRICE + 0.01),
    "10**15 quantity": _row(quantity=10**15),
    "one above the largest quantity": _row(quantity=records.MAX_QUANTITY + 1),
    "100.005 price": _row(price=100.005),
    "zero quantity": _row(quantity=0),
    "zero trade id": _row(trade_id=0),
    "negative user id": _row(user_id=-1),
    "unknown symbol": _row(symbol="NOPE"),
    "a long unknown symbol": _row(symbol="X" * 500),
    "bad side": _row(side="hold"),
    "schema_version 2": _row(schema_version=2),
    "null schema_version": _row(schema_version=None),
    "null user_id": _row(user_id=None),
    "null symbol and quantity": _row(symbol=None, quantity=None),
    # several problems: the first check in the contract's order names the reason
    "schema_version 2, null user_id": _row(schema_version=2, user_id=None),
    "null side, NaN price": _row(side=None, price=float("nan")),
    "NaN price, unknown symbol, bad side": _row(price=float("nan"), symbol="NOPE", side="hold"),
    "unknown symbol, bad side": _row(symbol="NOPE", side="hold"),
    "bad side, zero quantity": _row(side="hold", quantity=0),
    "zero user id, zero quantity": _row(user_id=0, quantity=0),
    "zero quantity, zero price": _row(quantity=0, price=0.0),
    "zero price, 10**15 quantity": _row(price=0.0, quantity=10**15),
    "10**15 quantity, 1e300 price": _row(quantity=10**15, price=1e300),
    "a price above the largest with a fraction of a cent": _row(price=2e6 + 0.001),
}
# Spark writes a double's digits the Java way (1.0E300, not 1e+300): only the details differ
SPARK_DIGITS = {"1e300 price", "10**15 quantity, 1e300 price"}


def _contract(row: tuple) -> str | None:
    values = dict(zip(COLUMNS, row, strict=True))
    del values["event_time"]  # a typed row's time is a timestamp: nothing of the contract's to check
    return records.invalid_trade_values(**values, symbols=SYMBOLS)


def test_each_bad_row_gets_the_contracts_reason(spark) -> None:
    got = reasons(spark, list(CONTRACT_CASES.values()))
    for (case, row), reason in zip(CONTRACT_CASES.items(), got, strict=True):
        expected = _contract(row)
        assert expected is not None and records.reason_code(reason) == records.reason_code(expected), case
        assert reason == expected or case in SPARK_DIGITS, (case, reason, expected)


@pytest.mark.parametrize(("row", "reason"), [
    (_row(event_time=NEXT_DAY), "wrong_date: not 2026-11-20: 2026-11-21 14:30:00"),
    (_row(event_time=None), "missing_field: event_time"),
    (_row(user_id=None, event_time=None), "missing_field: user_id, event_time"),
    (_row(symbol="NOPE", event_time=NEXT_DAY), "unknown_symbol: 'NOPE' is not"),
])
def test_the_day_and_the_time_are_checked_after_the_contract(spark, row: tuple, reason: str) -> None:
    (got,) = reasons(spark, [row])
    assert got.startswith(reason)


def test_duplicates_keep_one_valid_copy_per_user_and_trade_id(spark) -> None:
    rows = [
        trade(1, 1, "AAPL", "buy", 1, 1.0),
        trade(1, 1, "AAPL", "buy", 1, 1.0),
        trade(2, 1, "NOPE", "buy", 1, 1.0),
        trade(2, 1, "AAPL", "buy", 1, 1.0),
        trade(3, 1, "AAPL", "buy", 1, 1.0),
        trade(3, 2, "AAPL", "buy", 1, 1.0),  # the same id for another user: another trade
        trade(4, 5, "AAPL", "buy", 1, 1.0),
        trade(4, 6, "AAPL", "buy", 1, 1.0),
        trade(4, 5, "AAPL", "buy", 1, 1.0),
    ]
    frame = ingest.with_reason(spark.createDataFrame(rows, TRADE_DDL), DAY, ["AAPL"])
    marked = ingest.mark_duplicates(frame).collect()
    got = sorted((r["trade_id"], r["user_id"], r["reason"] or "") for r in marked)
    assert got == [
        (1, 1, ""),
        (1, 1, "duplicate: trade 1 of user 1 seen before"),
        (2, 1, ""),
        (2, 1, "unknown_symbol: 'NOPE' is not in the universe"),
        (3, 1, ""),
        (3, 2, ""),
        (4, 5, ""),
        (4, 5, "duplicate: trade 4 of user 5 seen before"),
        (4, 6, ""),
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


def test_repeated_ids_are_the_user_and_trade_id_pairs_seen_more_than_once_in_any_partition(spark) -> None:
    pairs = [(1, 5), (1, 1), (1, 2), (1, 2), (1, 9), (2, 9), (1, 3), (1, 3), (1, 3), (None, 4), (1, None),
             (1, None), (3, 7), (4, 7), (1, 9), (2, 8)]
    frame = spark.createDataFrame(pairs, "user_id BIGINT, trade_id BIGINT").repartition(3)  # copies apart
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    got = sorted((r["user_id"], r["trade_id"]) for r in ingest.repeated_ids(frame).collect())
    assert got == [(1, 2), (1, 3), (1, 9)]
