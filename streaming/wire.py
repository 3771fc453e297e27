"""A frame's columns serialized for a prepared statement, a column at a time.

The Python driver binds a prepared statement a value at a time (`PreparedStatement.bind`: type checks,
then the type's `serialize`), ~0.8 µs a value here, and a timestamp through `calendar.timegm`: 40 % of
the job's driver time at 2,000 trades/s went there (`bench/results/streaming_cost.md`). These
functions give the very bytes `bind` would (`tests/unit/streaming/test_wire.py` compares them with the
driver's own `serialize`, type by type, nulls included), with numpy for whole columns of numbers,
times and dates; other types fall back to the driver's `serialize` a value at a time, which is still
what `bind` calls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DATE_EPOCH = 2**31  # a CQL date is days since 1970-01-01 plus 2**31, as an unsigned 32-bit integer
_NUMBERS = {"bigint": ">i8", "counter": ">i8", "int": ">i4", "smallint": ">i2", "tinyint": ">i1",
            "double": ">f8", "float": ">f4"}
_TEXT = {"text", "varchar", "ascii"}


def encode_rows(frame: pd.DataFrame, columns: list[str], types: list[type]) -> list[tuple]:
    """`frame[columns]` as rows of serialized values (bytes, None for null) for a statement whose
    bind markers have `types` (the driver's type classes, `PreparedStatement.column_metadata`)."""
    encoded = [encode_column(frame[name], cql_type) for name, cql_type in zip(columns, types, strict=True)]
    return list(zip(*encoded, strict=True)) if encoded else []


def encode_column(column: pd.Series, cql_type: type) -> list[bytes | None]:
    """One column's values as `cql_type.serialize` gives them; None where the value is missing (None,
    NaN, NaT, NA), which the driver sends as null."""
    name = cql_type.typename
    if name in _NUMBERS:
        return _fixed(column, _NUMBERS[name])
    if name == "timestamp":
        return _timestamps(column)
    if name == "date":
        return _dates(column, cql_type)
    if name in _TEXT:
        return [None if _missing(v) else v.encode() for v in column.astype(object).tolist()]
    return [None if _missing(v) else cql_type.serialize(_python(v), 5)
            for v in column.astype(object).tolist()]


def _fixed(column: pd.Series, dtype: str) -> list[bytes | None]:
    missing = column.isna().to_numpy()
    kind = "f" if dtype[1] == "f" else "i"
    fill = 0.0 if kind == "f" else 0
    values = column.to_numpy(dtype="float64" if kind == "f" else "int64", na_value=fill)
    return _split(values.astype(dtype).tobytes(), np.dtype(dtype).itemsize, missing)


def _timestamps(column: pd.Series) -> list[bytes | None]:
    """Milliseconds since the epoch, UTC (a naive time is taken as UTC, as the driver does)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    elif column.dtype == object:
        column = pd.to_datetime(column, utc=True).dt.tz_localize(None)
    times = column.to_numpy(dtype="datetime64[us]")
    missing = np.isnat(times)
    # floor to whole milliseconds, as the driver's int(seconds * 1e3 + microseconds / 1e3) does after 1970
    millis = np.floor_divide(times.astype("int64"), 1000)
    return _split(millis.astype(">i8").tobytes(), 8, missing)


def _dates(column: pd.Series, cql_type: type) -> list[bytes | None]:
    if column.dtype == object:  # datetime.date or the driver's Date: a batch holds a few distinct days
        values = column.tolist()
        known = {v: None if _missing(v) else cql_type.serialize(v, 5) for v in set(values)}
        return [known[v] for v in values]
    days = column.to_numpy(dtype="datetime64[D]")
    missing = np.isnat(days)
    offset = days.astype("int64") + DATE_EPOCH
    return _split(np.where(missing, 0, offset).astype(">u4").tobytes(), 4, missing)


def _split(buffer: bytes, width: int, missing: np.ndarray) -> list[bytes | None]:
    out = [buffer[i:i + width] for i in range(0, len(buffer), width)]
    if missing.any():
        for i in np.flatnonzero(missing).tolist():
            out[i] = None
    return out


def _python(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)

