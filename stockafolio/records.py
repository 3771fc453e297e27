"""The records Stockafolio moves around, each defined once: a frozen dataclass with an explicit schema
version. The JSON codec, the Spark schema (DDL) and the Arrow/Parquet schema are derived from the
dataclass fields, so no component writes a column list by hand.

Wire format (Kafka values, one compact JSON object per record):

    {"trade_id":1234,"user_id":42,"symbol":"AAPL","side":"buy","quantity":10,"price":310.33,
     "event_time":"2026-11-20T14:30:00.123Z","schema_version":1}

- `trade_id`: signed 64-bit, `run_id << RUN_SHIFT | sequence` (see `trade_id`): unique across runs and
  restarts, increasing within a run and from one run to the next, so a consumer may keep a per-user
  "last applied trade id" guard.
- `price`: USD rounded to the cent (`quantity * price` in cents is an exact integer).
- `event_time`: aware UTC, millisecond precision, ISO 8601 with a `Z` (Spark's default JSON
  timestamp format reads it).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, get_args, get_origin

import orjson
import pyarrow as pa

TRADE_SCHEMA_VERSION = 1
PRICE_SCHEMA_VERSION = 1
Side = Literal["buy", "sell"]
SIDES: tuple[Side, ...] = ("buy", "sell")

RUN_SHIFT = 32  # low 32 bits: sequence within a run; high 31 bits: the run id
MAX_SEQUENCE = (1 << RUN_SHIFT) - 1
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


def trade_id(run_id: int, sequence: int) -> int:
    """The 64-bit id of the `sequence`-th trade of run `run_id` (both checked against their bits)."""
    if not 0 <= run_id <= MAX_RUN_ID or not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"run id must be 0..{MAX_RUN_ID} and sequence 0..{MAX_SEQUENCE}, "
                         f"got {run_id} and {sequence}")
    return (run_id << RUN_SHIFT) | sequence


def split_trade_id(value: int) -> tuple[int, int]:
    """(run id, sequence) of a trade id."""
    return value >> RUN_SHIFT, value & MAX_SEQUENCE


# ---------------------------------------------------------------- schemas derived from the fields

_ARROW = {int: pa.int64(), float: pa.float64(), str: pa.string(), datetime: pa.timestamp("ms", tz="UTC")}
_SPARK = {int: "BIGINT", float: "DOUBLE", str: "STRING", datetime: "TIMESTAMP"}


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
    reason = _fields_problem(obj, PriceTick, PRICE_SCHEMA_VERSION) or _positive(obj, ("price",))
    if reason:
        raise InvalidRecord(reason)
    return PriceTick(**{**obj, "event_time": parse_time(obj["event_time"])})


# ---------------------------------------------------------------- validation


class InvalidRecord(ValueError):
    """A raw record is not a valid one; the message says why (the dead-letter reason)."""


def invalid_trade_reason(raw: bytes | str | None, symbols: Iterable[str] | None = None) -> str | None:
    """Why `raw` is not a valid trade of this schema version, or None when it is one. `symbols`, when
    given, is the universe the symbol must belong to. Reasons start with a short code
    (`bad_json`, `not_an_object`, `missing_field`, `unknown_field`, `bad_type`, `schema_version`,
    `unknown_symbol`, `bad_side`, `non_positive`, `bad_time`) followed by the details."""
    try:
        obj = _load(raw)
    except InvalidRecord as exc:
        return str(exc)
    return _trade_problem(obj, symbols)


def _load(raw: bytes | str | None) -> dict[str, Any]:
    if raw is None:
        raise InvalidRecord("bad_json: empty value")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"bad_json: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidRecord(f"not_an_object: expected a JSON object, got {type(obj).__name__}")
    return obj


def _trade_problem(obj: dict[str, Any], symbols: Iterable[str] | None) -> str | None:
    problem = _fields_problem(obj, Trade, TRADE_SCHEMA_VERSION)
    if problem:
        return problem
    if symbols is not None and obj["symbol"] not in symbols:
        return f"unknown_symbol: {obj['symbol']!r} is not in the universe"
    if obj["side"] not in SIDES:
        return f"bad_side: expected one of {list(SIDES)}, got {obj['side']!r}"
    return _positive(obj, ("trade_id", "user_id", "quantity", "price"))


def _fields_problem(obj: dict[str, Any], record: type, version: int) -> str | None:
    expected = field_types(record)
    if obj.get("schema_version") != version:
        return f"schema_version: expected {version}, got {obj.get('schema_version')!r}"
    missing = [name for name in expected if name not in obj]
    if missing:
        return f"missing_field: {', '.join(missing)}"
    extra = sorted(set(obj) - set(expected))
    if extra:
        return f"unknown_field: {', '.join(extra)}"
    for name, kind in expected.items():
        problem = _type_problem(name, kind, obj[name])
        if problem:
            return problem
    return None


def _type_problem(name: str, kind: type, value: Any) -> str | None:
    if kind is datetime:
        return _time_problem(name, value)
    ok = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
          if kind is float else isinstance(value, kind) and not isinstance(value, bool))
    if not ok:
        return f"bad_type: {name} must be {kind.__name__}, got {type(value).__name__} {value!r}"
    return None


def _time_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"bad_time: {name} must be an ISO 8601 string, got {type(value).__name__}"
    try:
        parse_time(value)
    except ValueError:
        return f"bad_time: {name} must be ISO 8601 with a UTC offset, got {value!r}"
    return None


def _positive(obj: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        if obj[name] <= 0:
            return f"non_positive: {name} must be > 0, got {obj[name]!r}"
    return None
