"""Kafka records -> trades, in the JVM: `from_json` with the schema derived from `Trade`, then the same
checks as `stockafolio.records.invalid_trade_reason` written as column expressions (no Python per row).
A row whose `reason` is not null goes to the dead-letter topic; the reason starts with the same short
codes (`bad_json`, `schema_version`, `bad_type`, `unknown_symbol`, `bad_side`, `non_positive`)."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stockafolio.records import SIDES, TRADE_SCHEMA_VERSION, TRADE_SPARK_DDL, Trade, field_types

TRADE_FIELDS = tuple(field_types(Trade))
SOURCE = ("topic", "partition", "offset")


def parse_trades(raw: DataFrame, symbols: Sequence[str]) -> DataFrame:
    """Rows of a Kafka source -> the trade fields, `reason` (null when valid), the raw `value` text,
    where it came from (`topic`, `partition`, `offset`) and when Kafka took it (`kafka_time`)."""
    text = F.col("value").cast("string")
    parsed = raw.select(F.from_json(text, TRADE_SPARK_DDL).alias("t"), text.alias("value"), *SOURCE,
                        F.col("timestamp").alias("kafka_time"))
    fields = parsed.select(*(F.col(f"t.{name}").alias(name) for name in TRADE_FIELDS), "value", *SOURCE,
                           "kafka_time")
    return fields.withColumn("reason", _reason(symbols))


def _reason(symbols: Sequence[str]) -> Column:
    """The first problem of a parsed row, or null. `from_json` leaves a field null when it is missing
    or of the wrong type, and every field null when the value is not a JSON object."""
    all_null = F.coalesce(*(F.col(n).cast("string") for n in TRADE_FIELDS)).isNull()
    first_null = F.coalesce(*(F.when(F.col(n).isNull(), F.lit(n)) for n in TRADE_FIELDS))
    checks = [
        (all_null, F.lit("bad_json: not a JSON trade object")),
        (F.col("schema_version") != TRADE_SCHEMA_VERSION,
         F.concat(F.lit(f"schema_version: expected {TRADE_SCHEMA_VERSION}, got "),
                  F.col("schema_version").cast("string"))),
        (first_null.isNotNull(), F.concat(F.lit("bad_type: missing or mistyped field "), first_null)),
        (~F.col("symbol").isin(list(symbols)),
         F.concat(F.lit("unknown_symbol: "), F.col("symbol"), F.lit(" is not in the universe"))),
        (~F.col("side").isin(list(SIDES)), F.concat(F.lit("bad_side: got "), F.col("side"))),
        *((F.col(n) <= 0, F.lit(f"non_positive: {n} must be > 0"))
          for n in ("trade_id", "user_id", "quantity", "price")),
    ]
    reason = F.lit(None).cast("string")
    for failed, message in reversed(checks):
        reason = F.when(failed, message).otherwise(reason)
    return reason
