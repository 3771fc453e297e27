"""Kafka records -> trades, in the JVM: `from_json` with the schema derived from `Trade`, then the checks
of the wire contract (`stockafolio.records`, REASON_CODES) written as column expressions (no Python per
row). The JVM decides which records are valid with exactly the contract's rules; a row whose `reason` is
not null is a dead letter. Its reason code follows the contract's order too, but the text a dead letter
carries is the contract's own (`stockafolio.records.invalid_trade_reason` on the record's bytes, in the
driver: dead letters are rare), so every reader of trades names a bad record the same way.

Where Spark's JSON reader is laxer than the contract, the checks make up for it: bytes that are not
UTF-8 are refused before any other check; `json_object_keys` finds missing and unknown fields
(`from_json` ignores extra ones; a repeated field's last value counts, as in the contract's parser);
`event_time` is read as a string and must match the contract's pattern (Spark would take a number as
epoch seconds, or a time without an offset in the session's zone); NaN and Infinity literals are
refused (`allowNonNumericNumbers`); a string field that held another JSON type (which Spark renders
as text) can never match a symbol, a side or the time pattern, so it is invalid here as in the
contract, under another code (unknown_symbol or bad_side where the contract says bad_type).

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

from stockafolio.records import (
    CANONICAL_TIME,
    CENT_TOLERANCE,
    MAX_PRICE,
    MAX_QUANTITY,
    POSITIVE_FIELDS,
    SIDES,
    TIME_PATTERN,
    TRADE_SCHEMA_VERSION,
    TRADE_SPARK_DDL,
    Trade,
    field_types,
    whole_cents,
)

TRADE_FIELDS = tuple(field_types(Trade))
SOURCE = ("topic", "partition", "offset")
# event_time as text: the contract's pattern is checked before Spark converts it
_JSON_DDL = TRADE_SPARK_DDL.replace("event_time TIMESTAMP", "event_time STRING")
_JSON_OPTIONS = {"allowNonNumericNumbers": "false", "mode": "PERMISSIVE"}


def parse_trades(raw: DataFrame, symbols: Sequence[str]) -> DataFrame:
    """Rows of a Kafka source -> the trade fields, `reason` (null when valid), the raw `value` text and
    bytes (`raw_bytes`), where it came from (`topic`, `partition`, `offset`) and when Kafka took it
    (`kafka_time`)."""
    text = F.col("value").cast("string")
    parsed = raw.select(F.from_json(text, _JSON_DDL, _JSON_OPTIONS).alias("t"),
                        F.expr("json_object_keys(CAST(value AS STRING))").alias("keys"),
                        text.alias("value"), F.col("value").alias("raw_bytes"), *SOURCE,
                        F.col("timestamp").alias("kafka_time"))
    fields = parsed.select(*(F.col(f"t.{name}").alias(name) for name in TRADE_FIELDS), "keys", "value",
                           "raw_bytes", *SOURCE, "kafka_time")
    fields = fields.withColumn("event_text", F.col("event_time"))
    fields = fields.withColumn("event_time", F.to_timestamp("event_text"))
    return fields.withColumn("reason", _reason(symbols)).drop("keys", "event_text")


def _reason(symbols: Sequence[str]) -> Column:
    """The first problem of a parsed row in the contract's order, or null."""
    keys = F.col("keys")
    present = [F.array_contains(keys, n) for n in TRADE_FIELDS]
    first_missing = F.coalesce(*(F.when(~has, F.lit(n))
                                 for n, has in zip(TRADE_FIELDS, present, strict=True)))
    first_null = F.coalesce(*(F.when(F.col(n).isNull(), F.lit(n))
                              for n in TRADE_FIELDS if n != "event_time"))
    price, cents = F.col("price"), F.col("price") * 100
    checks = [
        (keys.isNull() | (F.encode(F.decode("raw_bytes", "UTF-8"), "UTF-8") != F.col("raw_bytes")),
         F.lit("bad_json: not a JSON object in UTF-8")),
        (F.col("schema_version").isNull() | (F.col("schema_version") != TRADE_SCHEMA_VERSION),
         F.concat(F.lit(f"schema_version: expected {TRADE_SCHEMA_VERSION}, got "),
                  F.coalesce(F.col("schema_version").cast("string"), F.lit("another type")))),
        (first_missing.isNotNull(), F.concat(F.lit("missing_field: "), first_missing)),
        (F.size(F.array_distinct(keys)) != len(TRADE_FIELDS),
         F.lit("unknown_field: a field Trade does not have")),
        (first_null.isNotNull(), F.concat(F.lit("bad_type: mistyped field "), first_null)),
        (F.isnan(price), F.lit("bad_type: price must be finite")),
        (F.col("event_text").isNull() | ~F.col("event_text").rlike(f"^{TIME_PATTERN.pattern}$")
         | F.col("event_time").isNull(), F.lit("bad_time: event_time must be ISO 8601 with a UTC offset")),
        (~F.col("symbol").isin(list(symbols)),
         F.concat(F.lit("unknown_symbol: "), F.substring("symbol", 1, 40), F.lit(" is not in the universe"))),
        (~F.col("side").isin(list(SIDES)), F.concat(F.lit("bad_side: got "), F.substring("side", 1, 40))),
        *((F.col(n) <= 0, F.lit(f"non_positive: {n} must be > 0")) for n in POSITIVE_FIELDS),
        (F.col("quantity") > MAX_QUANTITY, F.lit(f"out_of_range: quantity must be at most {MAX_QUANTITY:,}")),
        (price > MAX_PRICE, F.lit(f"out_of_range: price must be at most {MAX_PRICE:,.0f}")),
        ((F.abs(cents - F.round(cents)) > CENT_TOLERANCE) | (F.round(cents) < 1),
         F.lit("not_cents: price must be whole cents, at least one")),
    ]
    reason = F.lit(None).cast("string")
    for failed, message in reversed(checks):
        reason = F.when(failed, message).otherwise(reason)
    return reason


# ---------------------------------------------------------------- the driver's fast path

RAW_COLUMNS = ("value", *SOURCE, "kafka_time")
_CANONICAL_TIME = re.compile(CANONICAL_TIME)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def collect_raw(raw: DataFrame) -> pd.DataFrame:
    """A micro-batch's Kafka records in the driver, unparsed (one Spark job with no expression to
    plan but a projection: ~0.3 s for 2,000 records against ~1 s with `parse_trades`)."""
    return raw.select("value", *SOURCE, F.col("timestamp").alias("kafka_time")).toPandas()


def canonical_trades(records: pd.DataFrame, symbols: frozenset[str]) -> pd.DataFrame | None:
    """`records` (RAW_COLUMNS) parsed in the driver when every one of them is a trade exactly as the
    generator writes it: a JSON object with exactly Trade's fields, integers within int64, a finite
    price in whole cents, the current schema version, a known symbol, a side, positive ids, quantity
    and price within the contract's bounds, and a time like 2026-11-20T14:30:00.123Z. On such records
    `from_json` and the checks of `parse_trades` can only agree (an integration test compares the two
    frames), so the result is the frame `collect(parse_trades(...))` gives: every `reason` and `raw`
    null. None as soon as one record is
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
    ids, users, quantity = (np.asarray(columns[name], dtype=np.int64)
                            for name in ("trade_id", "user_id", "quantity"))
    return (set(columns["schema_version"]) == {TRADE_SCHEMA_VERSION}
            and set(columns["symbol"]) <= symbols and set(columns["side"]) <= set(SIDES)
            and bool(np.isfinite(prices).all() and (prices > 0).all() and (prices <= MAX_PRICE).all())
            and bool(whole_cents(prices).all())
            and bool((ids > 0).all() and (users > 0).all() and (quantity > 0).all())
            and bool((quantity <= MAX_QUANTITY).all())
            and all(_CANONICAL_TIME.fullmatch(v) for v in columns["event_time"]))
