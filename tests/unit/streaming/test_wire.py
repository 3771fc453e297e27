"""The job's column-at-a-time serialization gives, value for value, the bytes the driver's own `serialize`
gives (what `PreparedStatement.bind` sends), nulls where a value is missing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from cassandra import cqltypes
from cassandra.util import Date
from streaming import wire


def driver(values: list, cql_type: type) -> list[bytes | None]:
    return [None if v is None else cql_type.serialize(v, 5) for v in values]


@pytest.mark.parametrize(("cql_type", "column", "python"), [
    (cqltypes.LongType, pd.Series([0, 1, -1, 256, 2**62 + 12345, -(2**63) + 1], dtype="int64"),
     [0, 1, -1, 256, 2**62 + 12345, -(2**63) + 1]),
    (cqltypes.LongType, pd.array([5, None, 1 << 59], dtype="Int64"), [5, None, 1 << 59]),
    (cqltypes.Int32Type, pd.Series([0, 7, -3, 2**31 - 1], dtype="int32"), [0, 7, -3, 2**31 - 1]),
    (cqltypes.DoubleType, pd.Series([0.0, 1.5, -2.25, np.nan, 1e300]), [0.0, 1.5, -2.25, None, 1e300]),
    (cqltypes.UTF8Type, pd.Series(["AAPL", "BRK.B", None, "é"], dtype=object), ["AAPL", "BRK.B", None, "é"]),
    (cqltypes.BooleanType, pd.Series([True, False]), [True, False]),
])
def test_numbers_text_and_other_types(cql_type, column, python) -> None:
    assert wire.encode_column(pd.Series(column), cql_type) == driver(python, cql_type)


def test_timestamps_naive_aware_and_missing() -> None:
    times = [datetime(2026, 12, 8, 14, 30, 1, 123456, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
             datetime(2026, 1, 1, 0, 0, 0, 999, tzinfo=UTC)]
    times = [t.replace(tzinfo=None) for t in times]  # the driver takes a naive time as UTC
    expected = driver([*times, None], cqltypes.DateType)
    naive = pd.Series([*times, None], dtype="datetime64[us]")
    assert wire.encode_column(naive, cqltypes.DateType) == expected
    aware = pd.Series([t.replace(tzinfo=UTC) for t in times] + [None], dtype="datetime64[us, UTC]")
    assert wire.encode_column(aware, cqltypes.DateType) == expected
    assert wire.encode_column(naive.astype("datetime64[ns]"), cqltypes.DateType) == expected


def test_dates_as_objects_datetime64_and_the_drivers_date() -> None:
    days = [date(2026, 12, 8), date(1970, 1, 1), date(1969, 12, 31)]
    expected = driver([*days, None], cqltypes.SimpleDateType)
    assert wire.encode_column(pd.Series([*days, None], dtype=object), cqltypes.SimpleDateType) == expected
    as_times = pd.Series([*days, None], dtype="datetime64[s]")
    assert wire.encode_column(as_times, cqltypes.SimpleDateType) == expected
    stored = [Date(d) for d in days]  # as a read returns them
    assert wire.encode_column(pd.Series(stored, dtype=object), cqltypes.SimpleDateType) == driver(
        stored, cqltypes.SimpleDateType)


def test_rows_follow_the_statements_columns() -> None:
    frame = pd.DataFrame({"user_id": [1, 2], "symbol": ["AAPL", "MSFT"], "extra": [9, 9]})
    rows = wire.encode_rows(frame, ["user_id", "symbol"], [cqltypes.LongType, cqltypes.UTF8Type])
    one, two = (cqltypes.LongType.serialize(u, 5) for u in (1, 2))
    assert rows == [(one, b"AAPL"), (two, b"MSFT")]
    assert wire.encode_rows(frame.iloc[:0], ["user_id"], [cqltypes.LongType]) == []
