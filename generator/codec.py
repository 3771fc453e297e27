"""Columnar encoders for batches: Kafka JSON values and keys, and Arrow tables for Parquet.

The JSON template is built from the record's fields (`stockafolio.records`), and writes exactly the
bytes `records.encode` writes for the same record (a unit test checks it): one `%`-format per record
over lists taken from numpy columns, about 1 microsecond a trade.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from generator.trades import TradeBatch
from stockafolio.records import (
    PRICE_ARROW_SCHEMA,
    PRICE_SCHEMA_VERSION,
    SIDES,
    TRADE_ARROW_SCHEMA,
    TRADE_SCHEMA_VERSION,
    PriceTick,
    Trade,
    field_types,
)

_FORMATS = {int: b"%d", float: b"%s", str: b"%s", datetime: b'"%sZ"'}  # floats passed as repr bytes


def json_template(record: type, version: int) -> bytes:
    """`%`-template of a record's compact JSON: strings are passed pre-quoted, times without the Z."""
    parts = [b'"%s":%s' % (name.encode(), _FORMATS[kind]) for name, kind in field_types(record).items()
             if name != "schema_version"]
    return b"{" + b",".join(parts) + b',"schema_version":%d}' % version


TRADE_TEMPLATE = json_template(Trade, TRADE_SCHEMA_VERSION)
PRICE_TEMPLATE = json_template(PriceTick, PRICE_SCHEMA_VERSION)


def quoted(strings: tuple[str, ...]) -> np.ndarray:
    """JSON string literals (bytes, object array) to index with a column of positions."""
    return np.array([orjson.dumps(s) for s in strings], dtype=object)


_QUOTED_SIDES = quoted(SIDES)


def _by_value(column: np.ndarray, render: Callable[[np.ndarray], list[bytes]]) -> list[bytes]:
    """`render` applied once per distinct value: a batch has few distinct prices and milliseconds."""
    distinct, inverse = np.unique(column, return_inverse=True)
    return np.array(render(distinct), dtype=object)[inverse].tolist()


def iso_ms(epoch_ms: np.ndarray) -> list[bytes]:
    """'2026-11-20T14:30:00.123' for each epoch millisecond (the template adds the Z)."""
    return np.datetime_as_string(epoch_ms.astype("datetime64[ms]"), unit="ms").astype("S").tolist()


class TradeEncoder:
    """Encodes `TradeBatch`es of one universe to Kafka keys (user id) and JSON values."""

    def __init__(self, symbols: tuple[str, ...]):
        self.symbols = symbols
        self._quoted = quoted(symbols)
        self._columns: dict[str, Callable[[TradeBatch], list]] = {
            "trade_id": lambda b: b.trade_id.tolist(),
            "user_id": lambda b: b.user_id.tolist(),
            "symbol": lambda b: self._quoted[b.symbol].tolist(),
            "side": lambda b: _QUOTED_SIDES[b.side].tolist(),
            "quantity": lambda b: b.quantity.tolist(),
            "price": lambda b: _by_value(b.price_cents, lambda c: [b"%r" % p for p in (c / 100).tolist()]),
            "event_time": lambda b: _by_value(b.event_ms, iso_ms),
        }

    def values(self, batch: TradeBatch) -> list[bytes]:
        columns = [self._columns[name](batch) for name in field_types(Trade) if name != "schema_version"]
        template = TRADE_TEMPLATE
        return [template % row for row in zip(*columns, strict=True)]

    @staticmethod
    def keys(batch: TradeBatch) -> list[bytes]:
        return batch.user_id.astype("S20").tolist()


def trades_table(batch: TradeBatch) -> pa.Table:
    """The batch as an Arrow table with exactly `TRADE_ARROW_SCHEMA`."""
    n = len(batch)
    columns = {
        "trade_id": batch.trade_id, "user_id": batch.user_id,
        "symbol": pc.take(pa.array(batch.symbols, pa.string()), batch.symbol),
        "side": pc.take(pa.array(SIDES, pa.string()), batch.side),
        "quantity": batch.quantity, "price": batch.price_cents / 100,
        "event_time": batch.event_ms, "schema_version": np.full(n, TRADE_SCHEMA_VERSION, dtype=np.int64),
    }
    return _table(columns, TRADE_ARROW_SCHEMA)


def price_values(symbols: tuple[str, ...], cents: np.ndarray, second_ms: int) -> list[bytes]:
    """JSON price ticks of every symbol at one second (`cents` (names,) int64)."""
    stamp = iso_ms(np.array([second_ms]))[0]
    template = PRICE_TEMPLATE
    return [template % (s, b"%r" % p, stamp) for s, p in zip(quoted(symbols).tolist(),
                                                             (cents / 100).tolist(), strict=True)]


def prices_table(symbols: tuple[str, ...], cents: np.ndarray, seconds_ms: np.ndarray) -> pa.Table:
    """Price ticks of a (seconds, names) path of cents, one row per (second, symbol)."""
    seconds, names = cents.shape
    columns = {"symbol": pc.take(pa.array(symbols, pa.string()), np.tile(np.arange(names), seconds)),
               "price": cents.ravel() / 100,
               "event_time": np.repeat(seconds_ms, names),
               "schema_version": np.full(seconds * names, PRICE_SCHEMA_VERSION, dtype=np.int64)}
    return _table(columns, PRICE_ARROW_SCHEMA)


def _table(columns: dict[str, np.ndarray | pa.Array], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([_array(columns[f.name], f.type) for f in schema], schema=schema)


def _array(values: np.ndarray | pa.Array, kind: pa.DataType) -> pa.Array:
    return values if isinstance(values, pa.Array) else pa.array(values, kind)
