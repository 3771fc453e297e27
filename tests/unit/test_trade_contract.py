"""One contract for a trade on the wire: every reader of trades accepts the same records and names a
bad one with the same reason code (the corpus is in tests/poison.py). The stream's JVM parse runs in a
small local Spark session (no services)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import orjson
import pandas as pd
import pytest

from stockafolio import records
from stockafolio.reference import load_factor_model
from streaming import job, parse, publish
from tests.poison import CORPUS, VALID

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyspark 3.5's pandas conversions
SYMBOLS = frozenset(load_factor_model().symbols)
KAFKA_DDL = "value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP"


@pytest.fixture(scope="module")
def spark() -> Iterator:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("contract-unit")
               .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def kafka_rows(values: list[bytes | None]) -> pd.DataFrame:
    return pd.DataFrame({"value": values, "topic": "trades", "partition": 0, "offset": range(len(values)),
                         "timestamp": pd.Timestamp("2026-12-07 14:30:01")})


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_contract_names_each_poison_record(name: str) -> None:
    raw, code = CORPUS[name]
    assert records.reason_code(records.invalid_trade_reason(raw, SYMBOLS)) == code


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_contract_accepts_the_edges(name: str) -> None:
    assert records.invalid_trade_reason(VALID[name], SYMBOLS) is None


def test_bounds_keep_one_trade_inside_int64_cents() -> None:
    notional = records.MAX_QUANTITY * records.MAX_PRICE_CENTS
    assert round(records.MAX_PRICE * 100) == records.MAX_PRICE_CENTS
    assert notional * 9_000 < 2**63  # ~9,000 maximal trades of one user before cash could overflow


def test_the_streams_jvm_parse_gives_the_contracts_verdict_and_code(spark) -> None:
    names = sorted(CORPUS) + sorted(VALID)
    values = [CORPUS[n][0] for n in sorted(CORPUS)] + [VALID[n] for n in sorted(VALID)]
    frame = spark.createDataFrame(kafka_rows(values), KAFKA_DDL)
    parsed = job.collect(parse.parse_trades(frame, sorted(SYMBOLS))).sort_values("offset")
    got = dict(zip(names, parsed["reason"], strict=True))
    assert {n: records.reason_code(got[n]) for n in CORPUS} == {n: code for n, (_, code) in CORPUS.items()}
    assert {n: got[n] for n in VALID} == dict.fromkeys(VALID)
    valid = parsed[parsed["reason"].isna()]
    assert valid["price"].tolist() == [orjson.loads(VALID[n])["price"] for n in sorted(VALID)]


def test_the_streams_dead_letters_carry_the_contracts_reason_and_stay_bounded(spark) -> None:
    values = [CORPUS[n][0] for n in sorted(CORPUS)]
    frame = spark.createDataFrame(kafka_rows(values), KAFKA_DDL)
    parsed = job.collect(parse.parse_trades(frame, sorted(SYMBOLS))).sort_values("offset")
    for name, row in zip(sorted(CORPUS), parsed.itertuples(index=False), strict=True):
        letter = job.dead_letter_of(row, SYMBOLS)
        assert len(letter) <= publish.DEAD_LETTER_MAX_BYTES, name
        decoded = orjson.loads(letter)
        raw = CORPUS[name][0]
        assert decoded["reason"] == records.invalid_trade_reason(raw, SYMBOLS), name
        assert decoded["raw_length"] == (None if raw is None else len(raw))
        assert (decoded["topic"], decoded["partition"], decoded["offset"]) == ("trades", 0, row.offset)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_drivers_fast_parse_hands_any_poison_batch_to_the_jvm(name: str) -> None:
    batch = kafka_rows([VALID["canonical"], CORPUS[name][0]]).rename(columns={"timestamp": "kafka_time"})
    assert parse.canonical_trades(batch, SYMBOLS) is None


def test_the_drivers_fast_parse_takes_generator_records_at_the_bounds() -> None:
    edges = [VALID["canonical"], VALID["largest_quantity"], VALID["largest_price"], VALID["largest_ids"]]
    batch = kafka_rows(edges).rename(columns={"timestamp": "kafka_time"})
    frame = parse.canonical_trades(batch, SYMBOLS)
    assert frame is not None and frame["reason"].isna().all() and len(frame) == 4
