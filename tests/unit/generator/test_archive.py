"""The archive's pure parts: object naming, splitting, decoding, and giving up on an unreachable S3."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import EndpointConnectionError

from generator.archive import (
    ArchiveSettings,
    S3Writer,
    decode_values,
    hour_prefix,
    hours_of,
    parquet_bytes,
    runs,
)
from generator.codec import TradeEncoder, trades_table
from generator.market import Market
from stockafolio.errors import ServiceUnavailable
from stockafolio.records import TRADE_ARROW_SCHEMA
from stockafolio.settings import S3Endpoint

from .conftest import make_generator


def test_hour_prefix_is_utc_date_and_hour() -> None:
    hour = 1_795_185_000_000 // 3_600_000  # 2026-11-20 14:30 UTC
    assert hour_prefix("trades", hour) == "trades/date=2026-11-20/hour=14"


def test_runs_split_on_any_key_change() -> None:
    part = np.array([0, 0, 0, 1, 1, 1])
    hour = np.array([5, 5, 6, 6, 6, 6])
    assert list(runs(part, hour)) == [(0, 2), (2, 3), (3, 6)]
    assert list(runs(np.array([]))) == []


def test_decode_a_clean_batch(market: Market) -> None:
    batch, _ = make_generator(market).generate(np.full(2, 300))
    decoded = decode_values(TradeEncoder(market.symbols).values(batch))
    assert decoded.table.equals(trades_table(batch)) and decoded.keep.all() and not decoded.rejected
    assert len(np.unique(hours_of(decoded.table))) == 1


def test_invalid_records_are_left_out_with_a_reason(market: Market) -> None:
    batch, _ = make_generator(market).generate(np.full(1, 5))
    values = TradeEncoder(market.symbols).values(batch)
    bad = orjson.loads(values[2])
    bad["quantity"] = 0
    values[2] = orjson.dumps(bad)
    values.insert(4, b"garbage")
    decoded = decode_values(values)
    assert decoded.keep.tolist() == [True, True, False, True, False, True]
    assert len(decoded.table) == 4 and decoded.table.schema == TRADE_ARROW_SCHEMA
    assert [r.split(":")[0] for r in decoded.rejected] == ["non_positive", "bad_json"]


def test_parquet_round_trip(market: Market) -> None:
    import io

    table = trades_table(make_generator(market).generate(np.full(2, 100))[0])
    back = pq.read_table(io.BytesIO(parquet_bytes(table)))
    assert back.equals(table)


def test_unreachable_s3_is_named_and_given_up(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = S3Endpoint("http://127.0.0.1:9", "us-east-1", "k", "s", "b")
    clock = {"t": 0.0}
    said: list[str] = []
    downs: list[float | None] = []

    def sleep(seconds: float) -> None:
        clock["t"] += seconds

    class Unreachable:
        def put_object(self, **kwargs: object) -> None:
            raise EndpointConnectionError(endpoint_url=endpoint.endpoint_url)

    writer = S3Writer(endpoint, ArchiveSettings("b", give_up_s=10), said.append, now=lambda: clock["t"],
                      sleep=sleep, on_down=downs.append, client=Unreachable())
    with pytest.raises(ServiceUnavailable, match=r"S3 is not reachable: \S+ unreachable for 1\d s"):
        writer.put("x", b"y")
    assert said[0].startswith("S3 at http://127.0.0.1:9 unreachable for 0 s; retrying in 1 s")
    assert downs[:3] == [0.0, 1.0, 3.0]
