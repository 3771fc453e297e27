"""The driver's parse of a micro-batch takes only canonical trades (what the generator writes) and
hands everything else back to the JVM; the integration test checks it equals the JVM parse."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from stockafolio.records import Trade, encode
from streaming.parse import RAW_COLUMNS, canonical_trades
from tests import poison

SYMBOLS = frozenset({"AAPL", "MSFT"})
T0 = datetime(2026, 12, 7, 14, 30, 0, 125_000, tzinfo=UTC)
GOOD = Trade(trade_id=11, user_id=5, symbol="AAPL", side="buy", quantity=3, price=101.25, event_time=T0)


def records(values: list) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"value": values, "topic": ["trades"] * n, "partition": [0] * n,
                         "offset": list(range(n)),
                         "kafka_time": pd.Series([T0.replace(tzinfo=None)] * n, dtype="datetime64[us]")},
                        columns=list(RAW_COLUMNS))


def variant(**changes) -> bytes:
    """GOOD with fields replaced (`KeyError` removes one)."""
    return poison.variant(encode(GOOD), **changes)


def test_canonical_batch_is_parsed_with_every_reason_null():
    other = Trade(trade_id=(1 << 63) - 1, user_id=9, symbol="MSFT", side="sell", quantity=1, price=100,
                  event_time=T0)
    frame = canonical_trades(records([encode(GOOD), encode(other)]), SYMBOLS)
    assert frame is not None
    assert frame["trade_id"].tolist() == [11, (1 << 63) - 1] and frame["trade_id"].dtype == "int64"
    assert frame["price"].tolist() == [101.25, 100.0] and frame["price"].dtype == "float64"
    assert frame["event_time"].tolist() == [pd.Timestamp("2026-12-07 14:30:00.125")] * 2
    assert str(frame["event_time"].dtype) == "datetime64[us]"
    assert frame["reason"].isna().all() and frame["raw"].isna().all()
    assert frame["offset"].tolist() == [0, 1]
    assert canonical_trades(records([]), SYMBOLS) is not None


@pytest.mark.parametrize("bad", [
    b"not json", b"[1, 2]", None, b'{"trade_id": NaN}',
    variant(extra=1), variant(price=KeyError), variant(event_time="2026-12-07T14:30:00.125+00:00"),
    variant(event_time="2026-12-07T14:30:00Z"), variant(price="101.25"), variant(quantity=3.0),
    variant(quantity=True), variant(schema_version=2), variant(symbol="NOPE"), variant(side="hold"),
    variant(quantity=0), variant(price=-1.0), variant(user_id=-5), variant(trade_id=1 << 63),
], ids=lambda b: repr(b)[:60])
def test_anything_else_goes_back_to_the_jvm(bad):
    assert canonical_trades(records([encode(GOOD), bad, encode(GOOD)]), SYMBOLS) is None
