"""The shared record types: codec round trip, schemas derived from one definition, validation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import orjson
import pytest

from generator.codec import TradeEncoder, price_values, prices_table, trades_table
from generator.market import Market
from stockafolio import records
from stockafolio.records import PriceTick, Trade, decode_trade, encode, invalid_trade_reason

from .conftest import make_generator

WHEN = datetime(2026, 11, 20, 14, 30, 0, 123000, tzinfo=UTC)
GOOD = Trade(trade_id=records.trade_id(7, 1), user_id=42, symbol="AAPL", side="buy", quantity=10,
             price=310.33, event_time=WHEN)


def _raw(**change: object) -> bytes:
    obj = orjson.loads(encode(GOOD))
    obj.update(change)
    return orjson.dumps({k: v for k, v in obj.items() if v is not ...})


def test_trade_round_trip_is_compact_and_exact() -> None:
    raw = encode(GOOD)
    assert raw == (b'{"trade_id":30064771073,"user_id":42,"symbol":"AAPL","side":"buy","quantity":10,'
                   b'"price":310.33,"event_time":"2026-11-20T14:30:00.123Z","schema_version":1}')
    assert decode_trade(raw) == GOOD


def test_price_tick_round_trip() -> None:
    tick = PriceTick("MSFT", 157.7, WHEN)
    assert records.decode_price(encode(tick)) == tick


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        encode(dataclasses.replace(GOOD, event_time=WHEN.replace(tzinfo=None)))


def test_other_offsets_are_normalised_to_utc() -> None:
    eastern = WHEN.astimezone(timezone(timedelta(hours=-5)))
    assert encode(dataclasses.replace(GOOD, event_time=eastern)) == encode(GOOD)


def test_schemas_are_derived_from_the_dataclass() -> None:
    names = [f.name for f in dataclasses.fields(Trade)]
    assert records.TRADE_ARROW_SCHEMA.names == names
    assert [c.split()[0] for c in records.TRADE_SPARK_DDL.split(", ")] == names
    assert records.TRADE_SPARK_DDL == ("trade_id BIGINT, user_id BIGINT, symbol STRING, side STRING, "
                                       "quantity BIGINT, price DOUBLE, event_time TIMESTAMP, "
                                       "schema_version BIGINT")
    assert str(records.TRADE_ARROW_SCHEMA.field("event_time").type) == "timestamp[ms, tz=UTC]"
    assert records.PRICE_ARROW_SCHEMA.names == [f.name for f in dataclasses.fields(PriceTick)]


def test_vectorised_encoders_agree_with_the_record_codec(market: Market) -> None:
    batch, path = make_generator(market).generate(np.full(3, 400))
    trades = batch.records()
    assert TradeEncoder(market.symbols).values(batch) == [encode(t) for t in trades]
    assert TradeEncoder.keys(batch) == [str(t.user_id).encode() for t in trades]
    table = trades_table(batch)
    assert table.schema == records.TRADE_ARROW_SCHEMA
    assert [Trade(**row) for row in table.to_pylist()] == trades
    cents = np.rint(path[0] * 100).astype(np.int64)
    ms = int(WHEN.timestamp() * 1000)
    ticks = [records.decode_price(v) for v in price_values(market.symbols, cents, ms)]
    assert ticks[0] == PriceTick(market.symbols[0], cents[0] / 100, WHEN)
    assert prices_table(market.symbols, cents[None, :], np.array([ms])).schema == records.PRICE_ARROW_SCHEMA


@pytest.mark.parametrize(("raw", "code"), [
    (b"{not json", "bad_json"),
    (b"[1, 2]", "bad_json"),
    (None, "bad_json"),
    (_raw(schema_version=2), "schema_version"),
    (_raw(quantity=...), "missing_field"),
    (_raw(venue="XNYS"), "unknown_field"),
    (_raw(quantity="10"), "bad_type"),
    (_raw(quantity=True), "bad_type"),
    (_raw(price="1.0"), "bad_type"),
    (_raw(price=None), "bad_type"),
    (_raw(symbol="NOPE"), "unknown_symbol"),
    (_raw(side="hold"), "bad_side"),
    (_raw(quantity=0), "non_positive"),
    (_raw(price=-1.5), "non_positive"),
    (_raw(event_time="yesterday"), "bad_time"),
    (_raw(event_time="2026-11-20T14:30:00"), "bad_time"),
])
def test_validation_names_the_reason(raw: bytes | None, code: str) -> None:
    reason = invalid_trade_reason(raw, symbols={"AAPL", "MSFT"})
    assert reason is not None and reason.startswith(code + ":"), reason


def test_a_valid_trade_has_no_reason() -> None:
    assert invalid_trade_reason(encode(GOOD), symbols={"AAPL"}) is None
    assert invalid_trade_reason(encode(GOOD)) is None


def test_decode_raises_with_the_reason() -> None:
    with pytest.raises(records.InvalidRecord, match="non_positive: quantity"):
        decode_trade(_raw(quantity=-3))


def test_trade_id_layout() -> None:
    run, sequence, instance = records.MAX_RUN_ID, records.MAX_SEQUENCE, records.MAX_INSTANCES - 1
    assert (run, sequence, instance) == (2**31 - 1, 2**24 - 1, 255)
    tid = records.trade_id(run, sequence, instance)
    assert tid == 2**63 - 1 and records.split_trade_id(tid) == (run, sequence, instance)
    assert records.trade_id(3, 5, 7) == 3 << 32 | 7 << 24 | 5
    assert records.trade_id(9, 5) == 9 << 32 | 5  # instance 0: the ids of the one-generator layout
    assert records.trade_id(2, 0) > records.trade_id(1, sequence, instance)  # the run id first
    assert records.trade_id(1, 0, 1) > records.trade_id(1, sequence, 0)
    for value in (0, 1, tid, records.trade_id(1_000, 123_456, 200)):
        assert records.trade_id(*records.split_trade_id(value)) == value
    for bad in ((1, sequence + 1), (1, -1), (1, 0, instance + 1), (1, 0, -1), (run + 1, 0), (-1, 0)):
        with pytest.raises(ValueError, match="run id must be"):
            records.trade_id(*bad)
