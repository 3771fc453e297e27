"""The S3 archive of trades: zstd Parquet objects partitioned by UTC date and hour, never one per trade.

    s3://<bucket>/<prefix>/date=YYYY-MM-DD/hour=HH/<topic>-p<partition>-o<first offset>.parquet  (live)
    s3://<bucket>/<prefix>/date=YYYY-MM-DD/hour=HH/batch-r<run id>-<n>.parquet                    (batch)
    s3://<bucket>/<prefix>-quarantine/date=YYYY-MM-DD/hour=HH/<topic>-p<partition>-o<first offset>.parquet

Live mode archives what Kafka holds, not what the generator meant to send: `TopicArchiver` consumes
the trades topic in its own consumer group, writes a batch (`batch_trades` trades or `batch_seconds`,
whichever comes first) and commits the offsets only after every object of the batch is uploaded.
Each object holds one run of consecutive offsets of one partition within one hour, and is named by its
first offset. After a crash the archiver re-reads from the last committed offset and rewrites the
very same object names, so a trade is never archived twice (and readers can still drop duplicates
by `trade_id`, the archive's primary key). Nothing the topic acknowledged can be missing: offsets
are committed only for uploaded trades.

What is a trade is the wire contract of `stockafolio.records` (`invalid_trade_reason(value, symbols)`,
with the S&P 500 universe as `symbols`); `decode_values` enforces exactly it, vectorised for a batch
of plainly valid trades and record by record otherwise. Every other record (bad JSON, an empty or
null value, an integer outside int64, NaN, a quantity or price out of range, a sub-cent price, an
unknown symbol...) goes to the quarantine next to the archive, in the same flush and before the
offsets are committed: one object per (partition, hour) run of the batch's rejects, named by its first
offset and dated by each record's Kafka timestamp (the epoch when it has none), not by the wall clock,
so a rerun after a crash rewrites the same names, as for the archive. Columns (`QUARANTINE_SCHEMA`):
reason (the contract's text), reason_code, topic, partition, offset, kafka_timestamp, key, raw (the
value's full bytes, bounded by Kafka's message size), raw_length, raw_sha256. Nothing a record holds
stops the archiver.

S3 unreachable: uploads retry with backoff and say which endpoint is down and for how long; after
`give_up_s` the archiver stops with `ServiceUnavailable` and commits nothing more, so the trades stay in
Kafka for the next archiver run.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from stockafolio import s3 as s3lib
from stockafolio.errors import ServiceUnavailable
from stockafolio.records import (
    CANONICAL_TIME,
    MAX_PRICE,
    MAX_QUANTITY,
    POSITIVE_FIELDS,
    SIDES,
    TRADE_ARROW_SCHEMA,
    TRADE_SCHEMA_VERSION,
    invalid_trade_reason,
    parse_time,
    reason_code,
    whole_cents,
)
from stockafolio.reference import load_universe
from stockafolio.settings import S3Endpoint

Say = Callable[[str], None]
HOUR_MS = 3_600_000


@cache
def universe_symbols() -> frozenset[str]:
    """The S&P 500 symbols a valid trade may name (the contract's universe)."""
    return frozenset(s.symbol for s in load_universe())


@dataclass(frozen=True)
class ArchiveSettings:
    bucket: str
    prefix: str = "trades"
    batch_trades: int = 200_000
    batch_seconds: float = 10.0
    give_up_s: float = 120.0
    compression: str = "zstd"
    batch_bytes: int = 64 << 20  # a batch is also due at this many bytes of values (large poison records)
    symbols: frozenset[str] = field(default_factory=universe_symbols, repr=False)  # the contract's

    @property
    def quarantine_prefix(self) -> str:
        """Where rejected records go: next to the archive, never under it (readers list `<prefix>/`)."""
        return f"{self.prefix.rstrip('/')}-quarantine"


# ---------------------------------------------------------------- naming and splitting (pure)


def hour_prefix(prefix: str, hour_index: int) -> str:
    """'<prefix>/date=2026-11-20/hour=14' for hours since the epoch (UTC)."""
    start = np.datetime64(int(hour_index) * HOUR_MS, "ms").astype("datetime64[h]").item()
    return f"{prefix}/date={start:%Y-%m-%d}/hour={start:%H}"


def hours_of(table: pa.Table) -> np.ndarray:
    """Hour since the epoch (UTC) of each row's event_time."""
    ms = table.column("event_time").cast(pa.int64()).to_numpy()
    return ms // HOUR_MS


def runs(*keys: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, stop) of the maximal runs of rows where every key array stays the same."""
    n = len(keys[0])
    if n == 0:
        return
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    starts = np.flatnonzero(change)
    yield from zip(starts.tolist(), [*starts[1:].tolist(), n], strict=True)


def parquet_bytes(table: pa.Table, compression: str = "zstd") -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=compression)
    return sink.getvalue()


# ---------------------------------------------------------------- S3 with retries


class S3Writer:
    """Uploads objects, retrying with exponential backoff while S3 is unreachable."""

    def __init__(self, endpoint: S3Endpoint, settings: ArchiveSettings, say: Say,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 on_down: Callable[[float | None], None] = lambda seconds: None, client: object = None):
        """`on_down` hears how long S3 has been unreachable at each retry, and None once it is back;
        `client` replaces the boto3 client (tests)."""
        self.endpoint, self.settings, self._say, self._now, self._sleep = endpoint, settings, say, now, sleep
        self._on_down = on_down
        self._client = client or s3lib.client(endpoint)
        self.down_since: float | None = None
        self.objects = self.bytes = 0

    def ensure_bucket(self) -> None:
        self._retry(lambda: s3lib.ensure_bucket(self.endpoint, self.settings.bucket))

    def put(self, key: str, body: bytes) -> None:
        self._retry(lambda: self._client.put_object(Bucket=self.settings.bucket, Key=key, Body=body))
        self.objects += 1
        self.bytes += len(body)

    def _retry(self, call: Callable[[], object]) -> None:
        delay = 1.0
        while True:
            try:
                call()
                if self.down_since is not None:
                    self.down_since = None
                    self._on_down(None)
                return
            except (BotoCoreError, ClientError, ServiceUnavailable) as exc:
                if isinstance(exc, ClientError) and not _retryable(exc):
                    raise ServiceUnavailable("S3", f"{self.endpoint.endpoint_url} refused the request: "
                                             f"{exc}", hint="check the bucket and credentials") from None
                self._wait(exc, delay)
                delay = min(delay * 2, 15.0)

    def _wait(self, exc: Exception, delay: float) -> None:
        if self.down_since is None:
            self.down_since = self._now()
        down = self._now() - self.down_since
        self._on_down(down)
        if down >= self.settings.give_up_s:
            raise ServiceUnavailable("S3", f"{self.endpoint.endpoint_url} unreachable for {down:.0f} s "
                                     f"({exc}); gave up", hint="check it with: bin/stockafolio status")
        self._say(f"S3 at {self.endpoint.endpoint_url} unreachable for {down:.0f} s; retrying in "
                  f"{delay:.0f} s (giving up after {self.settings.give_up_s:.0f} s)")
        self._sleep(delay)


def _retryable(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status >= 500 or status in (0, 408, 429)


# ---------------------------------------------------------------- decoding Kafka values


@dataclass
class Decoded:
    table: pa.Table  # the valid trades, in input order, with TRADE_ARROW_SCHEMA
    keep: np.ndarray  # which of the input values made it into the table
    rejected: list[str] = field(default_factory=list)  # the reason of each value left out, in order


def decode_values(values: Sequence[bytes | None], symbols: AbstractSet[str]) -> Decoded:
    """Kafka values -> the valid trades as Arrow, and a reason for each of the others: exactly the
    contract of `stockafolio.records.invalid_trade_reason(value, symbols)`, and never an exception,
    whatever the values hold.

    A batch in which every value is plainly a valid trade goes through pyarrow's C++ JSON reader and
    vectorised checks (`_fast_table`). Any other batch is halved and each half tried again, down to
    ONE_BY_ONE values, which are decoded record by record by the contract itself (~100 us a record
    against ~1.5): a few poison records in 200,000 cost milliseconds, not seconds."""
    table = _fast_table(values, symbols)
    if table is not None:
        return Decoded(table, np.ones(len(values), dtype=bool))
    if len(values) <= ONE_BY_ONE:
        return _decode_one_by_one(values, symbols)
    half = len(values) // 2
    first, second = decode_values(values[:half], symbols), decode_values(values[half:], symbols)
    return Decoded(pa.concat_tables([first.table, second.table]), np.concatenate([first.keep, second.keep]),
                   first.rejected + second.rejected)


ONE_BY_ONE = 128


# The fast path reads event_time as text, to check its form before Arrow parses it.
_FAST_SCHEMA = pa.schema([pa.field("event_time", pa.string(), nullable=False) if f.name == "event_time" else f
                          for f in TRADE_ARROW_SCHEMA])
_PARSE = pj.ParseOptions(explicit_schema=_FAST_SCHEMA, unexpected_field_behavior="error",
                         newlines_in_values=False)
# The form records.format_time writes (a subset of what the contract accepts: others go record by record).
_CANONICAL_TIME = f"^{CANONICAL_TIME}$"
_YEAR_1_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z: Arrow reads year 0000, Python's datetime does not
_TIME = pa.timestamp("ms", tz="UTC")


def _fast_table(values: Sequence[bytes | None], symbols: AbstractSet[str]) -> pa.Table | None:
    """The whole batch as trades when every value passes every check of the contract, else None.
    Anything pyarrow raises (invalid UTF-8, an integer outside int64, a missing, null, repeated or
    unknown field, a calendar date that does not exist...) also means None: the batch then goes record
    by record, where the contract decides."""
    try:
        lines = b"\n".join(values)  # a None value raises
        if not values or not _one_object_per_line(np.frombuffer(lines, dtype=np.uint8), len(values)):
            return None
        parsed = pj.read_json(pa.BufferReader(lines), parse_options=_PARSE)
        if parsed.num_rows != len(values) or not _all_valid(parsed, symbols):
            return None
        times = pc.cast(parsed["event_time"], _TIME)
        if pc.min(times).cast(pa.int64()).as_py() < _YEAR_1_MS:
            return None
        return pa.Table.from_arrays([times if f.name == "event_time" else parsed[f.name]
                                     for f in TRADE_ARROW_SCHEMA], schema=TRADE_ARROW_SCHEMA)
    except Exception:  # whatever pyarrow refuses is decided record by record
        return None


_NL, _OPEN, _CLOSE = b"\n{}"


def _one_object_per_line(data: np.ndarray, n: int) -> bool:
    """The `n` values joined by newlines hold no other newline, and each one starts with '{', ends
    with '}' and holds no other '{': then each value is at most one JSON object and nothing else, so
    when the reader returns `n` rows they are the values one to one, in order (two objects in one
    value and a blank value would shift them; a byte order mark, which orjson refuses, is refused)."""
    if len(data) == 0 or data[0] != _OPEN or data[-1] != _CLOSE:
        return False
    breaks = np.flatnonzero(data == _NL)
    return (len(breaks) == n - 1 and bool((data[breaks - 1] == _CLOSE).all())
            and bool((data[breaks + 1] == _OPEN).all()) and np.count_nonzero(data == _OPEN) == n)


def _all_valid(table: pa.Table, symbols: AbstractSet[str]) -> bool:
    """The contract's value checks on the parsed columns (the reader has already enforced the fields
    and their JSON types: integers that fit int64, numbers for price, strings, no nulls)."""
    price = table["price"]
    checks = [pc.equal(table["schema_version"], TRADE_SCHEMA_VERSION),
              pc.is_in(table["symbol"], value_set=pa.array(sorted(symbols), pa.string())),
              pc.is_in(table["side"], value_set=pa.array(SIDES, pa.string())),
              *(pc.greater(table[name], 0) for name in POSITIVE_FIELDS),
              pc.less_equal(table["quantity"], MAX_QUANTITY),
              pc.is_finite(price), pc.less_equal(price, MAX_PRICE),
              pa.array(whole_cents(price.to_numpy())),
              pc.match_substring_regex(table["event_time"], _CANONICAL_TIME)]
    return _all_true(checks)


def _all_true(checks: list) -> bool:
    return all(c.null_count == 0 and pc.all(c).as_py() is True for c in checks)


def _decode_one_by_one(values: Sequence[bytes | None], symbols: AbstractSet[str]) -> Decoded:
    reasons = [reason_of(v, symbols) for v in values]
    keep = np.array([r is None for r in reasons], dtype=bool)
    good = [orjson.loads(v) for v, ok in zip(values, keep, strict=True) if ok]
    return Decoded(trades_from_dicts(good), keep, [r for r in reasons if r is not None])


VALIDATOR_ERROR = "validator_error"


def reason_of(value: bytes | None, symbols: AbstractSet[str]) -> str | None:
    """`invalid_trade_reason(value, symbols)`, and a `validator_error` reason when the contract itself
    raises on a value (it must not; such a value is no valid trade either), so one record never stops
    the archiver."""
    try:
        return invalid_trade_reason(value, symbols)
    except Exception as exc:  # a failure on a record's content quarantines the record
        return f"{VALIDATOR_ERROR}: the contract raised {type(exc).__name__} on this record: {str(exc)[:200]}"


def trades_from_dicts(trades: list[dict[str, Any]]) -> pa.Table:
    """Valid trades (dicts as orjson parsed them) -> Arrow, without the JSON reader: event_time through
    `records.parse_time` (a sub-millisecond fraction is truncated, as `format_time` does)."""
    columns = {name: [t[name] for t in trades] for name in TRADE_ARROW_SCHEMA.names}
    columns["event_time"] = [parse_time(text) for text in columns["event_time"]]
    return pa.Table.from_arrays([pa.array(columns[f.name], f.type) for f in TRADE_ARROW_SCHEMA],
                                schema=TRADE_ARROW_SCHEMA)


# ---------------------------------------------------------------- the quarantine of rejected records

QUARANTINE_SCHEMA = pa.schema([
    pa.field("reason", pa.string(), nullable=False),  # the contract's text, code first
    pa.field("reason_code", pa.string(), nullable=False),
    pa.field("topic", pa.string(), nullable=False),
    pa.field("partition", pa.int32(), nullable=False),
    pa.field("offset", pa.int64(), nullable=False),
    pa.field("kafka_timestamp", _TIME),  # null when the record carries none
    pa.field("key", pa.binary()),
    pa.field("raw", pa.binary()),  # the value's full bytes; null for a null value
    pa.field("raw_length", pa.int64()),
    pa.field("raw_sha256", pa.string()),  # hex
])
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


@dataclass
class Rejects:
    """The rejected records of one batch, column by column (`kafka_ms` None: no timestamp)."""

    reasons: list[str]
    topic: str
    partitions: np.ndarray
    offsets: np.ndarray
    kafka_ms: list[int | None]
    keys: list[bytes | None]
    values: list[bytes | None]

    def hours(self) -> np.ndarray:
        """Hour since the epoch of each record's Kafka timestamp (the quarantine's date and hour):
        the record's own, so a rerun after a crash files it under the same name. No timestamp counts
        as the epoch; a timestamp outside years 1970-9999 is clamped into them."""
        ms = np.array([0 if t is None else min(max(t, 0), _LAST_MS) for t in self.kafka_ms], dtype=np.int64)
        return ms // HOUR_MS

    def table(self) -> pa.Table:
        columns = {
            "reason": self.reasons, "reason_code": [reason_code(r) for r in self.reasons],
            "topic": [self.topic] * len(self.reasons), "partition": self.partitions, "offset": self.offsets,
            "kafka_timestamp": self.kafka_ms, "key": self.keys, "raw": self.values,
            "raw_length": [None if v is None else len(v) for v in self.values],
            "raw_sha256": [None if v is None else hashlib.sha256(v).hexdigest() for v in self.values],
        }
        return pa.Table.from_arrays([pa.array(columns[f.name], f.type) for f in QUARANTINE_SCHEMA],
                                    schema=QUARANTINE_SCHEMA)
