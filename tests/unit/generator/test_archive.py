"""The archive's pure parts: object naming, splitting, decoding by the wire contract (a poison corpus
mixed with good trades), the quarantine a flush writes beside the archive, and giving up on an
unreachable S3."""

from __future__ import annotations

import hashlib
import io
import random
from datetime import UTC, datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from generator import archive
from generator.archive import (
    QUARANTINE_SCHEMA,
    VALIDATOR_ERROR,
    ArchiveSettings,
    S3Writer,
    decode_values,
    hour_prefix,
    hours_of,
    runs,
    trades_from_dicts,
    universe_symbols,
)
from generator.archiver import TopicArchiver, _Pending
from generator.codec import TradeEncoder, trades_table
from generator.market import Market
from stockafolio.records import MAX_PRICE, MAX_QUANTITY, TRADE_ARROW_SCHEMA, invalid_trade_reason, reason_code
from stockafolio.reference import load_factor_model
from stockafolio.settings import S3Endpoint
from tests.poison import CORPUS, VALID, good, variant

from .conftest import make_generator

SYMBOLS = universe_symbols()


def test_hour_prefix_is_utc_date_and_hour() -> None:
    hour = 1_795_185_000_000 // 3_600_000  # 2026-11-20 14:30 UTC
    assert hour_prefix("trades", hour) == "trades/date=2026-11-20/hour=14"


def test_runs_split_on_any_key_change() -> None:
    part = np.array([0, 0, 0, 1, 1, 1])
    hour = np.array([5, 5, 6, 6, 6, 6])
    assert list(runs(part, hour)) == [(0, 2), (2, 3), (3, 6)]
    assert list(runs(np.array([]))) == []


def test_decode_a_clean_batch_on_the_vectorised_path(market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    batch, _ = make_generator(market).generate(np.full(2, 300))
    monkeypatch.setattr(archive, "_decode_one_by_one", None)  # a clean batch never goes record by record
    decoded = decode_values(TradeEncoder(market.symbols).values(batch), SYMBOLS)
    assert decoded.table.equals(trades_table(batch)) and decoded.keep.all() and not decoded.rejected
    assert len(np.unique(hours_of(decoded.table))) == 1


def test_the_universe_is_the_risk_models() -> None:
    assert frozenset(load_factor_model().symbols) == SYMBOLS and len(SYMBOLS) == 503


def test_invalid_records_are_left_out_with_a_reason(market: Market) -> None:
    batch, _ = make_generator(market).generate(np.full(1, 5))
    values = TradeEncoder(market.symbols).values(batch)
    bad = orjson.loads(values[2])
    bad["quantity"] = 0
    values[2] = orjson.dumps(bad)
    values.insert(4, b"garbage")
    decoded = decode_values(values, SYMBOLS)
    assert decoded.keep.tolist() == [True, True, False, True, False, True]
    assert len(decoded.table) == 4 and decoded.table.schema == TRADE_ARROW_SCHEMA
    assert [r.split(":")[0] for r in decoded.rejected] == ["non_positive", "bad_json"]


def _expected_code(value: bytes | None) -> str | None:
    """The contract's code for `value`; `validator_error` where the contract itself raises."""
    try:
        return reason_code(invalid_trade_reason(value, SYMBOLS))
    except Exception:  # the contract must not raise; the archive quarantines such a record anyway
        return VALIDATOR_ERROR


# Beyond tests/poison.py: what pyarrow's JSON reader reads differently from orjson, what shifts rows
# when values are joined by newlines, and what makes the contract itself raise.
MORE_POISON: dict[str, bytes | None] = {
    "byte_order_mark": b"\xef\xbb\xbf" + good(),
    "two_trades_in_one_value": good(trade_id=21) + b"\n" + good(trade_id=22),
    "two_trades_on_one_line": good(trade_id=23) + b" " + good(trade_id=24),
    "blank_value": b"   ",
    "json_string": b'"{}"',
    "json_number": b"5",
    "empty_object": b"{}",
    "infinity_literal_quantity": good().replace(b'"quantity":3', b'"quantity":Infinity'),
    "price_1e400": good().replace(b'"price":101.25', b'"price":1e400'),
    "price_2_pow_70": good().replace(b'"price":101.25', b'"price":%d' % 2**70),
    "quantity_exponent": good().replace(b'"quantity":3', b'"quantity":3e0'),
    "trade_id_2_pow_63": good().replace(b'"trade_id":11', b'"trade_id":9223372036854775808'),
    "year_0000": variant(event_time="0000-01-01T00:00:00.000Z"),
    "leap_second": variant(event_time="2026-12-31T23:59:60.000Z"),
    "feb_29_2025": variant(event_time="2025-02-29T00:00:00.000Z"),
    "lone_surrogate": good().replace(b'"AAPL"', b'"\\ud800"'),
    "symbol_with_brace": variant(symbol="AA{PL"),
    "nested_symbol": variant(symbol={"a": 1}),
    "deep_nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep_schema_version": b'{"schema_version":' + b"[" * 1_000 + b"]" * 1_000 + b"}",  # repr recurses
    "year_1_east_of_utc": variant(event_time="0001-01-01T00:30:00+01:00"),  # UTC year 0
    "comment": good().replace(b',"side"', b'/* */,"side"'),
    "trailing_comma": good()[:-1] + b",}",
}
MORE_VALID: dict[str, bytes] = {
    "repeated_key_last_wins": good().replace(b'{"trade_id":11', b'{"trade_id":7,"trade_id":12'),
    "microseconds": variant(trade_id=13, event_time="2026-12-07T14:30:00.123456Z"),
    "escaped_symbol": good(trade_id=14).replace(b'"AAPL"', b'"A\\u0041PL"'),
    "spaces": orjson.dumps(orjson.loads(good(trade_id=15)), option=orjson.OPT_INDENT_2).replace(b"\n", b" "),
    "dotted_symbol": good(trade_id=16, symbol="BRK.B"),
    "carriage_return": good(trade_id=17).replace(b',"side"', b',\r"side"'),  # whitespace to JSON
}


def test_a_poison_corpus_mixed_with_good_trades(market: Market) -> None:
    """Each bad record quarantined with the contract's code, each good one archived as the contract
    reads it, whatever the mix; nothing raises."""
    batch, _ = make_generator(market).generate(np.full(1, 200))
    generated = TradeEncoder(market.symbols).values(batch)
    poison = [v for v, _ in CORPUS.values()] + list(MORE_POISON.values())
    valid = list(VALID.values()) + list(MORE_VALID.values())
    assert [_expected_code(v) for v, _ in CORPUS.values()] == [code for _, code in CORPUS.values()]
    assert all(_expected_code(v) for v in MORE_POISON.values()) and not any(map(_expected_code, valid))
    values = generated + poison + valid
    random.Random(5).shuffle(values)
    decoded = decode_values(values, SYMBOLS)

    expected_keep = [_expected_code(v) is None for v in values]
    assert decoded.keep.tolist() == expected_keep
    assert [reason_code(r) for r in decoded.rejected] == [_expected_code(v) for v in values
                                                          if _expected_code(v) is not None]
    kept = [orjson.loads(v) for v, ok in zip(values, expected_keep, strict=True) if ok]
    assert decoded.table.equals(trades_from_dicts(kept))
    assert set(batch.trade_id.tolist()) <= set(decoded.table["trade_id"].to_pylist())


def test_each_poison_record_alone_and_at_each_end_of_a_clean_batch(market: Market) -> None:
    batch, _ = make_generator(market).generate(np.full(1, 300))
    generated = TradeEncoder(market.symbols).values(batch)
    for value in [v for v, _ in CORPUS.values()] + list(MORE_POISON.values()):
        for values in ([value], [value, *generated], [*generated, value]):
            decoded = decode_values(values, SYMBOLS)
            assert decoded.keep.sum() == len(values) - 1 and len(decoded.table) == len(values) - 1
            assert reason_code(decoded.rejected[0]) == _expected_code(value)


def test_the_vectorised_path_never_accepts_what_the_contract_rejects() -> None:
    """Random edits of good trades (a byte or a digit changed, bytes dropped or repeated): when the
    vectorised path accepts a value, the contract accepts it too and the row is the one it reads."""
    rng = random.Random(11)
    alphabet = b'{}[]",:.-+0123456789eEZT \n\rnulltrueNaIfy\\/\x00\xff'
    bases = [good(), *VALID.values(), *MORE_VALID.values()]
    accepted = 0
    for _ in range(4_000):
        value = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(value))
            edit = rng.randrange(4)
            if edit == 0:
                value[at] = rng.choice(alphabet)
            elif edit == 1:
                del value[at]
            elif edit == 2:
                value[at:at] = value[at:at + rng.randint(1, 12)]
            elif chr(value[at]).isdigit():
                value[at] = rng.choice(b"0123456789")
        table = archive._fast_table([bytes(value)], SYMBOLS)
        if table is not None:
            accepted += 1
            assert invalid_trade_reason(bytes(value), SYMBOLS) is None, bytes(value)
            assert table.equals(trades_from_dicts([orjson.loads(bytes(value))])), bytes(value)
    assert accepted > 200  # digit edits keep many values valid


def test_the_vectorised_path_agrees_with_the_contract_at_the_bounds() -> None:
    """Trades in the generator's form with values at and around every bound: the vectorised path
    accepts exactly those the contract accepts."""
    rng = random.Random(4)
    edges = {
        "trade_id": [1, 0, -1, (1 << 63) - 1],
        "quantity": [1, 0, MAX_QUANTITY, MAX_QUANTITY + 1, 10**15],
        "price": [0.01, 0.0, -0.01, 5e-324, 0.005, 100.005, 100.00000001, 100.0000001, 100.000001, 310.33,
                  MAX_PRICE, float(np.nextafter(MAX_PRICE, 2 * MAX_PRICE)), 999_999.99, 1e300],
        "symbol": ["AAPL", "BRK.B", "aapl", "", "NOPE"],
        "side": ["buy", "sell", "Buy", ""],
        "event_time": ["2026-12-07T14:30:00.125Z", "0001-01-01T00:00:00.000Z", "0000-12-31T23:59:59.999Z",
                       "9999-12-31T23:59:59.999Z", "2024-02-29T12:00:00.000Z", "2025-02-29T12:00:00.000Z",
                       "2026-12-07T24:00:00.000Z", "2026-12-07T14:30:00.000z"],
    }
    agreed = {True: 0, False: 0}
    for _ in range(1_500):
        value = variant(**{name: rng.choice(edge) for name, edge in edges.items() if rng.random() < 0.3})
        valid = invalid_trade_reason(value, SYMBOLS) is None
        assert (archive._fast_table([value], SYMBOLS) is not None) == valid, value
        agreed[valid] += 1
    assert min(agreed.values()) > 50


# ---------------------------------------------------------------- a flush: archive and quarantine


class Bucket:
    """A fake S3 client keeping what was put, and a log of puts and commits in order."""

    def __init__(self, log: list[str]) -> None:
        self.objects: dict[str, bytes] = {}
        self.log = log

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # boto3's argument names
        self.objects[Key] = Body
        self.log.append(f"put {Key}")


class Consumer:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def commit(self, offsets: list, asynchronous: bool) -> None:
        self.log.extend(f"commit p{tp.partition} {tp.offset}" for tp in offsets)

    def close(self) -> None:
        pass


def _archiver(log: list[str]) -> tuple[TopicArchiver, Bucket, list[str]]:
    settings = ArchiveSettings("b")
    bucket, said = Bucket(log), []
    writer = S3Writer(S3Endpoint("http://127.0.0.1:9", "us-east-1", "k", "s", "b"), settings, said.append,
                      client=bucket)
    archiver = TopicArchiver("127.0.0.1:9", "trades", "g", writer, settings, said.append)
    archiver._consumer.close()
    archiver._consumer = Consumer(log)
    return archiver, bucket, said


HOUR_15 = int(datetime(2026, 12, 7, 15, tzinfo=UTC).timestamp() * 1000)


def test_a_flush_quarantines_every_rejected_record_before_committing(market: Market) -> None:
    log: list[str] = []
    archiver, bucket, said = _archiver(log)
    goods = TradeEncoder(market.symbols).values(make_generator(market).generate(np.full(1, 20))[0])
    poison = {name: value for name, (value, _) in CORPUS.items()}
    values = [*goods[:10], *poison.values(), *goods[10:]]
    n = len(values)
    partitions = [i % 2 for i in range(n)]
    offsets = [100 + i // 2 for i in range(n)]
    stamps = [(1, HOUR_15 + i) for i in range(n)]
    stamps[12] = (0, -1)  # no timestamp: filed under the epoch
    keys = [None if i % 3 == 0 else str(i).encode() for i in range(n)]
    archiver._pending = _Pending(values, partitions, offsets, keys, stamps, since=0.0)
    archiver.flush()
    archiver._pool.shutdown()
    rerun, again, _ = _archiver([])  # a rerun after a crash before the commit
    rerun._pending = _Pending(values, partitions, offsets, keys, stamps, since=0.0)
    rerun.flush()
    rerun._pool.shutdown()
    assert again.objects == bucket.objects  # rewrites the same objects, adds none

    commits = [line for line in log if line.startswith("commit")]
    assert log[-len(commits):] == commits  # every upload before the first commit
    ends = {p: max(o for o, q in zip(offsets, partitions, strict=True) if q == p) + 1 for p in (0, 1)}
    assert sorted(commits) == [f"commit p{p} {end}" for p, end in ends.items()]
    trades = [k for k in bucket.objects if k.startswith("trades/")]
    quarantined = [k for k in bucket.objects if k.startswith("trades-quarantine/")]
    assert archiver.archived == 20 and archiver.rejected == len(poison)
    archived = pa.concat_tables([pq.read_table(io.BytesIO(bucket.objects[k])) for k in trades])
    assert archived.schema == TRADE_ARROW_SCHEMA
    assert sorted(archived["trade_id"].to_pylist()) == sorted(orjson.loads(v)["trade_id"] for v in goods)

    assert sorted(quarantined) == [
        "trades-quarantine/date=1970-01-01/hour=00/trades-p000-o000000000106.parquet",
        "trades-quarantine/date=2026-12-07/hour=15/trades-p000-o000000000105.parquet",
        "trades-quarantine/date=2026-12-07/hour=15/trades-p000-o000000000107.parquet",
        "trades-quarantine/date=2026-12-07/hour=15/trades-p001-o000000000105.parquet",
    ]
    rows = [r for k in sorted(quarantined, key=lambda k: k.split("/")[-1])
            for r in pq.read_table(io.BytesIO(bucket.objects[k])).to_pylist()]
    assert pq.read_schema(io.BytesIO(bucket.objects[quarantined[0]])) == QUARANTINE_SCHEMA
    assert len(rows) == len(poison)
    by_place = {(i % 2, 100 + i // 2): i for i in range(n)}
    for row in rows:
        i = by_place[(row["partition"], row["offset"])]
        value = values[i]
        assert row["raw"] == value and row["key"] == keys[i] and row["topic"] == "trades"
        assert row["reason"] == invalid_trade_reason(value, SYMBOLS)
        assert row["reason_code"] == reason_code(row["reason"]) == CORPUS[_name(poison, value)][1]
        assert row["raw_length"] == (None if value is None else len(value))
        assert row["raw_sha256"] == (None if value is None else hashlib.sha256(value).hexdigest())
        stamp = row["kafka_timestamp"]
        assert (stamp is None) if i == 12 else stamp.timestamp() * 1000 == HOUR_15 + i
    assert said == [f"left {len(poison)} invalid records out of the archive, quarantined under "
                    f"s3://b/trades-quarantine/, e.g. partition 0 offset 105: {rows[0]['reason']}"]


def _name(corpus: dict[str, bytes | None], value: bytes | None) -> str:
    return next(name for name, v in corpus.items() if v == value)
