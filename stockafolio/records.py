"""The records Stockafolio moves around, each defined once: a frozen dataclass with an explicit schema
version. The JSON codec, the Spark schema (DDL) and the Arrow/Parquet schema are derived from the
dataclass fields, so no component writes a column list by hand.

Wire format (Kafka values, one compact JSON object per record):

    {"trade_id":1234,"user_id":42,"symbol":"AAPL","side":"buy","quantity":10,"price":310.33,
     "event_time":"2026-11-20T14:30:00.123Z","schema_version":1}

- `trade_id`: signed 64-bit, `run_id << RUN_SHIFT | instance << INSTANCE_SHIFT | sequence` (see
  `trade_id`): unique across runs, restarts and the concurrent generator instances of a run, increasing
  within an instance's run and from one run to the next; a user's trades all come from one instance,
  so a consumer may keep a per-user "last applied trade id" guard.
- `price`: USD rounded to the cent (`quantity * price` in cents is an exact integer).
- `event_time`: aware UTC, millisecond precision, ISO 8601 with a `Z` (Spark's default JSON
  timestamp format reads it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import reprlib
import typing
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, get_args, get_origin

import numpy as np
import orjson
import pyarrow as pa

TRADE_SCHEMA_VERSION = 1
PRICE_SCHEMA_VERSION = 1
Side = Literal["buy", "sell"]
SIDES: tuple[Side, ...] = ("buy", "sell")

RUN_SHIFT = 32  # bits 32-62: the run id (31 bits)
INSTANCE_SHIFT = 24  # bits 24-31: the generator instance (8 bits); bits 0-23: the sequence within a run
MAX_SEQUENCE = (1 << INSTANCE_SHIFT) - 1
MAX_INSTANCES = 1 << (RUN_SHIFT - INSTANCE_SHIFT)  # instances 0..255
MAX_RUN_ID = (1 << (63 - RUN_SHIFT)) - 1
RUN_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # run ids count seconds from here (31 bits: until 2088)


@dataclasses.dataclass(frozen=True)
class Trade:
    """One executed trade of one simulated user."""

    trade_id: int
    user_id: int
    symbol: str
    side: Side
    quantity: int
    price: float
    event_time: datetime
    schema_version: int = TRADE_SCHEMA_VERSION


@dataclasses.dataclass(frozen=True)
class PriceTick:
    """The simulated price of one symbol at one simulated second (published keyed by symbol)."""

    symbol: str
    price: float
    event_time: datetime
    schema_version: int = PRICE_SCHEMA_VERSION


# ---------------------------------------------------------------- trade ids


def trade_id(run_id: int, sequence: int, instance: int = 0) -> int:
    """The 64-bit id of the `sequence`-th trade of generator `instance` in run `run_id` (each checked
    against its bits)."""
    if (not 0 <= run_id <= MAX_RUN_ID or not 0 <= sequence <= MAX_SEQUENCE
            or not 0 <= instance < MAX_INSTANCES):
        raise ValueError(f"run id must be 0..{MAX_RUN_ID}, sequence 0..{MAX_SEQUENCE} and instance "
                         f"0..{MAX_INSTANCES - 1}, got {run_id}, {sequence} and {instance}")
    return (run_id << RUN_SHIFT) | (instance << INSTANCE_SHIFT) | sequence


def split_trade_id(value: int) -> tuple[int, int, int]:
    """(run id, sequence, instance) of a trade id: `trade_id`'s arguments, so
    `trade_id(*split_trade_id(value)) == value`."""
    return value >> RUN_SHIFT, value & MAX_SEQUENCE, (value >> INSTANCE_SHIFT) & (MAX_INSTANCES - 1)


# ---------------------------------------------------------------- schemas derived from the fields

_ARROW = {int: pa.int64(), float: pa.float64(), str: pa.string(), datetime: pa.timestamp("ms", tz="UTC")}
_SPARK = {int: "BIGINT", float: "DOUBLE", str: "STRING", datetime: "TIMESTAMP"}


@functools.cache
def field_types(record: type) -> dict[str, type]:
    """Field name -> base Python type (`Literal[...]` of strings counts as `str`), in field order."""
    hints = typing.get_type_hints(record)
    return {f.name: _base_type(hints[f.name]) for f in dataclasses.fields(record)}


def _base_type(hint: Any) -> type:
    if get_origin(hint) is Literal:
        kinds = {type(a) for a in get_args(hint)}
        if len(kinds) == 1:
            return kinds.pop()
    if isinstance(hint, type) and hint in _ARROW:
        return hint
    raise TypeError(f"no column type for field type {hint} (optional fields are not allowed)")


def arrow_schema(record: type) -> pa.Schema:
    """The Arrow (and Parquet) schema of a record type; every column is non-nullable."""
    return pa.schema([pa.field(name, _ARROW[kind], nullable=False)
                      for name, kind in field_types(record).items()])


def spark_ddl(record: type) -> str:
    """The Spark schema of a record type as DDL, e.g. for `from_json(col, schema)`."""
    return ", ".join(f"{name} {_SPARK[kind]}" for name, kind in field_types(record).items())


TRADE_ARROW_SCHEMA = arrow_schema(Trade)
TRADE_SPARK_DDL = spark_ddl(Trade)
PRICE_ARROW_SCHEMA = arrow_schema(PriceTick)
PRICE_SPARK_DDL = spark_ddl(PriceTick)


# ---------------------------------------------------------------- the JSON codec


def format_time(moment: datetime) -> str:
    """Aware UTC datetime -> '2026-11-20T14:30:00.123Z' (milliseconds, truncated)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"event times must be aware UTC datetimes, got naive {moment!r}")
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """'2026-11-20T14:30:00.123Z' (any ISO 8601 with an offset) -> aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def encode(record: Trade | PriceTick) -> bytes:
    """Compact JSON of one record, fields in dataclass order (the generator's vectorised encoder in
    `generator/trades.py` writes the same bytes; a unit test checks it)."""
    fields = dataclasses.asdict(record)
    fields["event_time"] = format_time(record.event_time)
    return orjson.dumps(fields)


def decode_trade(raw: bytes | str) -> Trade:
    """A `Trade` from its JSON; raises `InvalidRecord` with the reason when it is not a valid one."""
    obj = _load(raw)
    reason = _trade_problem(obj, None)
    if reason:
        raise InvalidRecord(reason)
    return Trade(**{**obj, "event_time": parse_time(obj["event_time"])})


def decode_price(raw: bytes | str) -> PriceTick:
    obj = _load(raw)
    reason = _fields_problem(obj, PriceTick, PRICE_SCHEMA_VERSION)
    if not reason and not 0 < obj["price"] <= MAX_PRICE:
        reason = f"non_positive: price must be in (0, {MAX_PRICE:,.0f}], got {obj['price']!r}"
    if reason:
        raise InvalidRecord(reason)
    return PriceTick(**{**obj, "event_time": parse_time(obj["event_time"])})


# ---------------------------------------------------------------- validation: the wire contract
#
# A trade on the wire is valid when it passes every check below, in this order; the first failed check
# names the reason. Every reader of trades enforces this one contract: the stream (its JVM parse,
# `streaming.parse.parse_trades`, and its driver parse, `streaming.parse.canonical_trades`), the S3
# archiver (`generator.archive.decode_values`) and the nightly ingest (`batch.ingest.with_reason`, on
# the archive's typed columns, where the JSON-level checks cannot fail). A record that fails is a dead
# letter (stream) or a reject (archive quarantine, ingest) whose reason starts with its code:
REASON_CODES: dict[str, str] = {
    "bad_json": "not a JSON object (unparseable, empty, another JSON type, NaN/Infinity literals)",
    "schema_version": f"schema_version missing or not the integer {TRADE_SCHEMA_VERSION}",
    "missing_field": "a field of Trade is absent (or null in a typed row)",
    "unknown_field": "a field that Trade does not have",
    "bad_type": "a field of the wrong JSON type, an integer outside int64, or a price that is not finite",
    "bad_time": "event_time not an ISO 8601 string with a UTC offset",
    "unknown_symbol": "a symbol outside the S&P 500 universe",
    "bad_side": "side neither 'buy' nor 'sell'",
    "non_positive": "trade_id, user_id, quantity or price at or below zero (-0 included)",
    "out_of_range": "quantity above MAX_QUANTITY or price above MAX_PRICE",
    "not_cents": "a price with a fraction of a cent, or below one cent",
    # decided by the consumer's state, not by the record alone:
    "duplicate": "a trade id already seen for the same user",
    "out_of_order": "a trade id below one already applied for the same user (ids rise per user)",
    "wrong_date": "archived under a day that is not its event_time's (nightly ingest only)",
}
# Bounds that keep every cent amount far inside int64: one trade moves at most
# MAX_QUANTITY * MAX_PRICE_CENTS = 10**15 cents ($10**13), so ~9,000 maximal trades fit in one
# user's cash before 2**63; the accounting's basis products (quantity * cents) stay below 2**62.
MAX_QUANTITY = 10_000_000  # shares in one trade
MAX_PRICE = 1_000_000.0  # USD per share
MAX_PRICE_CENTS = 100_000_000
CENT_TOLERANCE = 1e-6  # |price * 100 - round(price * 100)| above this (in cents) is a sub-cent price
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
POSITIVE_FIELDS = ("trade_id", "user_id", "quantity", "price")


class InvalidRecord(ValueError):
    """A raw record is not a valid one; the message says why (the dead-letter reason)."""


def reason_code(reason: str | None) -> str | None:
    """'non_positive: quantity must be > 0, got 0' -> 'non_positive'."""
    return None if reason is None else reason.split(":", 1)[0]


def invalid_trade_reason(raw: bytes | str | None, symbols: Iterable[str] | None = None) -> str | None:
    """Why `raw` is not a valid trade (see REASON_CODES), or None when it is one. `symbols`, when given,
    is the universe the symbol must belong to."""
    try:
        obj = _load(raw)
    except InvalidRecord as exc:
        return str(exc)
    return _trade_problem(obj, symbols)


def invalid_trade_values(trade_id: object, user_id: object, symbol: object, side: object, quantity: object,
                         price: object, schema_version: object, symbols: Iterable[str] | None = None
                         ) -> str | None:
    """The same contract on a typed row (the archive's columns): what can fail once the JSON parsed."""
    obj = {"trade_id": trade_id, "user_id": user_id, "symbol": symbol, "side": side, "quantity": quantity,
           "price": price, "schema_version": schema_version}
    if type(schema_version) is not int or schema_version != TRADE_SCHEMA_VERSION:
        return f"schema_version: expected {TRADE_SCHEMA_VERSION}, got {schema_version!r}"
    missing = [name for name, value in obj.items() if value is None]
    if missing:
        return f"missing_field: {', '.join(missing)}"
    for name, kind in field_types(Trade).items():
        if name in obj:
            problem = _type_problem(name, kind, obj[name])
            if problem:
                return problem
    return _value_problem(obj, symbols)


def _load(raw: bytes | str | None) -> dict[str, Any]:
    if raw is None or len(raw) == 0:
        raise InvalidRecord("bad_json: empty value")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"bad_json: {_short(str(exc))}") from None
    if not isinstance(obj, dict):
        raise InvalidRecord(f"bad_json: expected a JSON object, got {type(obj).__name__}")
    return obj


def _trade_problem(obj: dict[str, Any], symbols: Iterable[str] | None) -> str | None:
    problem = _fields_problem(obj, Trade, TRADE_SCHEMA_VERSION)
    return problem or _value_problem(obj, symbols)


def _value_problem(obj: dict[str, Any], symbols: Iterable[str] | None) -> str | None:
    """The checks on values of the right types: universe, side, signs, bounds, cents."""
    if symbols is not None and obj["symbol"] not in symbols:
        return f"unknown_symbol: {_quote(obj['symbol'])} is not in the universe"
    if obj["side"] not in SIDES:
        return f"bad_side: expected one of {list(SIDES)}, got {_quote(obj['side'])}"
    for name in POSITIVE_FIELDS:
        value = obj[name]
        if value < 0 or value == 0:  # -0.0 == 0
            return f"non_positive: {name} must be > 0, got {value!r}"
    if obj["quantity"] > MAX_QUANTITY:
        return f"out_of_range: quantity must be at most {MAX_QUANTITY:,}, got {obj['quantity']!r}"
    if obj["price"] > MAX_PRICE:
        return f"out_of_range: price must be at most {MAX_PRICE:,.0f}, got {obj['price']!r}"
    cents = obj["price"] * 100
    if abs(cents - round(cents)) > CENT_TOLERANCE or round(cents) < 1:
        return f"not_cents: price must be whole cents, at least one, got {obj['price']!r}"
    return None


def _fields_problem(obj: dict[str, Any], record: type, version: int) -> str | None:
    expected = field_types(record)
    got = obj.get("schema_version")
    if type(got) is not int or got != version:
        return f"schema_version: expected {version}, got {_quote(got)}"
    missing = [name for name in expected if name not in obj]
    if missing:
        return f"missing_field: {', '.join(missing)}"
    extra = sorted(set(obj) - set(expected))
    if extra:
        return f"unknown_field: {_short(', '.join(extra))}"
    for name, kind in expected.items():
        problem = _type_problem(name, kind, obj[name])
        if problem:
            return problem
    return None


def _type_problem(name: str, kind: type, value: Any) -> str | None:
    if kind is datetime:
        return _time_problem(name, value)
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif kind is int:
        ok = type(value) is int and INT64_MIN <= value <= INT64_MAX
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        return f"bad_type: {name} must be {kind.__name__}, got {type(value).__name__} {_quote(value)}"
    return None


def _time_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"bad_time: {name} must be an ISO 8601 string, got {type(value).__name__}"
    if not TIME_PATTERN.fullmatch(value):
        return f"bad_time: {name} must be ISO 8601 with a UTC offset, got {_quote(value)}"
    try:
        parse_time(value)
    except (ValueError, OverflowError):  # OverflowError: an offset past the calendar's ends
        return f"bad_time: {name} is not a valid time, got {_quote(value)}"
    return None


# What every parser accepts as an event time: date, 'T', time to the second with an optional fraction
# of 1-6 digits, then 'Z' or an offset (the generator writes '2026-11-20T14:30:00.123Z').
TIME_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
DETAIL_CHARS = 120
# The form `format_time` writes (what the generator sends): the fast paths accept only this one.
CANONICAL_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"


def whole_cents(prices: np.ndarray) -> np.ndarray:
    """The contract's cent rule on an array of prices (finite or not): True where a price is whole
    cents within CENT_TOLERANCE and at least one cent."""
    cents = np.asarray(prices, dtype=np.float64) * 100
    with np.errstate(invalid="ignore"):
        return (np.abs(cents - np.rint(cents)) <= CENT_TOLERANCE) & (np.rint(cents) >= 1)


def _short(text: str) -> str:
    """Details quoted from a record stay short whatever the record (a dead letter is bounded)."""
    return text if len(text) <= DETAIL_CHARS else f"{text[:DETAIL_CHARS]}... ({len(text):,} chars)"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, DETAIL_CHARS, DETAIL_CHARS, DETAIL_CHARS


def _quote(value: Any) -> str:
    """A bounded repr of a record's value, whatever its size or depth (no recursion limit to hit)."""
    return _short(_REPR.repr(value) if isinstance(value, dict | list) else repr(value))
