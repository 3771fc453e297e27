"""Kafka records -> trades, in the JVM: `from_json` with the schema derived from `Trade`, then the same
checks as `stockafolio.records.invalid_trade_reason` written as column expressions (no Python per row).
A row whose `reason` is not null goes to the dead-letter topic; the reason starts with the same short
codes (`bad_json`, `schema_version`, `bad_type`, `unknown_symbol`, `bad_side`, `non_positive`).

The portfolio query first tries `canonical_trades`, a parse in the driver that only accepts batches
where every record is exactly what the generator writes (where it cannot disagree with the JVM);
any other batch is parsed here."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import orjson
import pandas as pd
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


# ---------------------------------------------------------------- the driver's fast path

RAW_COLUMNS = ("value", *SOURCE, "kafka_time")
_CANONICAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")  # records.format_time
_INT64 = (-(1 << 63), (1 << 63) - 1)


def collect_raw(raw: DataFrame) -> pd.DataFrame:
    """A micro-batch's Kafka records in the driver, unparsed (one Spark job with no expression to
    plan but a projection: ~0.3 s for 2,000 records against ~1 s with `parse_trades`)."""
    return raw.select("value", *SOURCE, F.col("timestamp").alias("kafka_time")).toPandas()


def canonical_trades(records: pd.DataFrame, symbols: frozenset[str]) -> pd.DataFrame | None:
    """`records` (RAW_COLUMNS) parsed in the driver when every one of them is a trade exactly as the
    generator writes it: a JSON object with exactly Trade's fields, integers within int64, a finite
    price, the current schema version, a known symbol, a side, positive ids, quantity and price, and a
    time like 2026-11-20T14:30:00.123Z. On such records `from_json` and the checks of `parse_trades`
    can only agree (an integration test compares the two frames), so the result is the frame
    `collect(parse_trades(...))` gives: every `reason` and `raw` null. None as soon as one record is
    anything else; the JVM path then parses the whole batch, so its rules alone decide what is a dead
    letter and the market views (which parse in the JVM) see the same valid trades."""
    columns: dict[str, list] = {name: [] for name in TRADE_FIELDS}
    appenders = [(name, columns[name].append) for name in TRADE_FIELDS]
    for value in records["value"]:
        try:
            obj = orjson.loads(value)
        except (orjson.JSONDecodeError, TypeError):
            return None
        if type(obj) is not dict or obj.keys() != _FIELD_SET:
            return None
        for name, append in appenders:
            append(obj[name])
    if not records.empty and not _all_canonical(columns, symbols):
        return None
    frame = pd.DataFrame({
        "trade_id": pd.Series(columns["trade_id"], dtype="int64"),
        "user_id": pd.Series(columns["user_id"], dtype="int64"),
        "symbol": pd.Series(columns["symbol"], dtype=object),
        "side": pd.Series(columns["side"], dtype=object),
        "quantity": pd.Series(columns["quantity"], dtype="int64"),
        "price": pd.Series(columns["price"], dtype="float64"),
        "event_time": pd.to_datetime(pd.Series(columns["event_time"], dtype=object), utc=True,
                                     format="ISO8601").dt.tz_localize(None).astype("datetime64[us]"),
    })
    frame["kafka_time"] = records["kafka_time"].to_numpy()
    frame["reason"] = None
    for name in SOURCE:
        frame[name] = records[name].to_numpy()
    frame["raw"] = None
    return frame


_FIELD_SET = frozenset(TRADE_FIELDS)


def _all_canonical(columns: dict[str, list], symbols: frozenset[str]) -> bool:
    """Types first (exact: bool is not an int here), then the values."""
    ints = ("trade_id", "user_id", "quantity", "schema_version")
    lo, hi = _INT64
    for name in ints:
        if not all(type(v) is int and lo <= v <= hi for v in columns[name]):
            return False
    if not all(type(v) is float or type(v) is int for v in columns["price"]):
        return False
    if not all(type(v) is str for name in ("symbol", "side", "event_time") for v in columns[name]):
        return False
    prices = np.asarray(columns["price"], dtype="float64")
    return (set(columns["schema_version"]) == {TRADE_SCHEMA_VERSION}
            and set(columns["symbol"]) <= symbols and set(columns["side"]) <= set(SIDES)
            and bool(np.isfinite(prices).all() and (prices > 0).all())
            and all(v > 0 for name in ("trade_id", "user_id", "quantity") for v in columns[name])
            and all(_CANONICAL_TIME.fullmatch(v) for v in columns["event_time"]))
