"""A corpus of records that are not valid trades, one per way a trade on the wire can be wrong, with
the reason code the wire contract (`stockafolio.records`) gives each. Unit tests feed it to every
parser of trades; the poison integration test produces it into the live topic."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from stockafolio.records import Trade, encode

T0 = datetime(2026, 12, 7, 14, 30, 0, 125_000, tzinfo=UTC)
POISON_USER = 999_999_999  # no simulated user has this id (the generator's ids are below its --users)


def good(trade_id: int = 11, user_id: int = POISON_USER, symbol: str = "AAPL", side: str = "buy",
         quantity: int = 3, price: float = 101.25) -> bytes:
    return encode(Trade(trade_id, user_id, symbol, side, quantity, price, T0))


def variant(base: bytes | None = None, **changes: object) -> bytes:
    """`base` (default: a good trade) with fields replaced; `KeyError` as a value removes the field."""
    obj = orjson.loads(base or good())
    for key, value in changes.items():
        if value is KeyError:
            del obj[key]
        else:
            obj[key] = value
    return orjson.dumps(obj)


def _literal(field: str, text: str) -> bytes:
    """A good trade's JSON with `field`'s value written as raw JSON text (NaN, -0, 2**63, ...), which
    no JSON encoder would write."""
    return variant(**{field: "__LITERAL__"}).replace(b'"__LITERAL__"', text.encode())


# name -> (raw value, reason code)
CORPUS: dict[str, tuple[bytes | None, str]] = {
    "bad_json": (b'{"trade_id": 1, "user_id": ', "bad_json"),
    "empty_value": (b"", "bad_json"),
    "null_value": (None, "bad_json"),
    "control_bytes_1mb": (bytes(range(32)) * 31_250, "bad_json"),  # 10**6 bytes: within Kafka's limit
    "not_utf8": (b'{"trade_id":1,"symbol":"\xff\xfe"}', "bad_json"),
    "json_array": (b"[1, 2, 3]", "bad_json"),
    "nan_price": (_literal("price", "NaN"), "bad_json"),
    "infinity_price": (_literal("price", "Infinity"), "bad_json"),
    "nan_price_as_string": (variant(price="NaN"), "bad_type"),
    "minus_zero_quantity": (_literal("quantity", "-0"), "non_positive"),
    "minus_zero_price": (_literal("price", "-0.0"), "non_positive"),
    "huge_price": (variant(price=1e300), "out_of_range"),
    "huge_float_quantity": (variant(quantity=1e300), "bad_type"),
    "quantity_2_pow_63": (_literal("quantity", "9223372036854775808"), "bad_type"),
    "quantity_10_pow_15": (variant(price=10_000.0, quantity=10**15), "out_of_range"),
    "sub_cent_price": (variant(price=100.005), "not_cents"),
    "below_a_cent": (variant(price=5e-324), "not_cents"),
    "unknown_symbol": (variant(symbol="NOPE"), "unknown_symbol"),
    "bad_side": (variant(side="hold"), "bad_side"),
    "schema_version_2": (variant(schema_version=2), "schema_version"),
    "schema_version_string": (variant(schema_version="1"), "schema_version"),
    "missing_field": (variant(price=KeyError), "missing_field"),
    "extra_field": (variant(venue="XNYS"), "unknown_field"),
    "quantity_as_string": (variant(quantity="10"), "bad_type"),
    "quantity_as_bool": (variant(quantity=True), "bad_type"),
    "quantity_as_float": (variant(quantity=10.0), "bad_type"),
    "price_as_string": (variant(price="101.25"), "bad_type"),
    "null_symbol": (variant(symbol=None), "bad_type"),
    "time_as_number": (variant(event_time=1_765_117_800), "bad_time"),
    "time_without_offset": (variant(event_time="2026-12-07T14:30:00"), "bad_time"),
    "impossible_date": (variant(event_time="2026-02-30T14:30:00Z"), "bad_time"),
    "zero_user": (variant(user_id=0), "non_positive"),
    "negative_trade_id": (variant(trade_id=-5), "non_positive"),
}
# Valid records the contract must keep accepting (edges of the bounds, other forms of the same trade).
VALID: dict[str, bytes] = {
    "canonical": good(),
    "integer_price": variant(price=101),
    "time_with_offset": variant(event_time="2026-12-07T15:30:00+01:00"),
    "largest_quantity": variant(quantity=10_000_000, price=1.0),
    "largest_price": variant(price=1_000_000.0),
    "largest_ids": variant(trade_id=(1 << 63) - 1, user_id=(1 << 63) - 1),
}
