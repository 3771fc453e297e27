"""The S3 archive of trades: zstd Parquet objects partitioned by UTC date and hour, never one per trade.

    s3://<bucket>/<prefix>/date=YYYY-MM-DD/hour=HH/<topic>-p<partition>-o<first offset>.parquet  (live)
    s3://<bucket>/<prefix>/date=YYYY-MM-DD/hour=HH/batch-r<run id>-<n>.parquet                    (batch)

Live mode archives what Kafka holds, not what the generator meant to send: `TopicArchiver` consumes
the trades topic in its own consumer group, writes a batch (`batch_trades` trades or `batch_seconds`,
whichever comes first) and commits the offsets only after every object of the batch is uploaded.
Each object holds one run of consecutive offsets of one partition within one hour, and is named by its
first offset. After a crash the archiver re-reads from the last committed offset and rewrites the
very same object names, so a trade is never archived twice (and readers can still drop duplicates
by `trade_id`, the archive's primary key). Nothing the topic acknowledged can be missing: offsets
are committed only for uploaded trades.

S3 unreachable: uploads retry with backoff and say which endpoint is down and for how long; after
`give_up_s` the archiver stops with `ServiceUnavailable` and commits nothing more, so the trades stay in
Kafka for the next archiver run.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from stockafolio import s3 as s3lib
from stockafolio.errors import ServiceUnavailable
from stockafolio.records import SIDES, TRADE_ARROW_SCHEMA, TRADE_SCHEMA_VERSION, invalid_trade_reason
from stockafolio.settings import S3Endpoint

Say = Callable[[str], None]
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class ArchiveSettings:
    bucket: str
    prefix: str = "trades"
    batch_trades: int = 200_000
    batch_seconds: float = 10.0
    give_up_s: float = 120.0
    compression: str = "zstd"


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
    table: pa.Table
    keep: np.ndarray  # which of the input values made it into the table
    rejected: list[str] = field(default_factory=list)  # reasons, for the operator


def decode_values(values: list[bytes]) -> Decoded:
    """Trades JSON -> Arrow (pyarrow's C++ JSON reader). A batch holding anything that is not a
    valid trade is decoded record by record instead, and the invalid ones are left out."""
    try:
        raw = pj.read_json(pa.BufferReader(b"\n".join(values)), parse_options=_PARSE)
        table = raw.cast(TRADE_ARROW_SCHEMA)
        if len(table) == len(values) and _all_valid(table):
            return Decoded(table, np.ones(len(values), dtype=bool))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return _decode_one_by_one(values)


_PARSE = pj.ParseOptions(explicit_schema=TRADE_ARROW_SCHEMA, unexpected_field_behavior="error",
                         newlines_in_values=False)


def _all_valid(table: pa.Table) -> bool:
    checks = [pc.all(pc.equal(table["schema_version"], TRADE_SCHEMA_VERSION)),
              pc.all(pc.is_in(table["side"], pa.array(SIDES))),
              *(pc.all(pc.greater(table[c], 0)) for c in ("trade_id", "user_id", "quantity", "price"))]
    return all(c.as_py() is not False for c in checks)


def _decode_one_by_one(values: list[bytes]) -> Decoded:
    reasons = [invalid_trade_reason(v) for v in values]
    keep = np.array([r is None for r in reasons], dtype=bool)
    good = [orjson.loads(v) for v, ok in zip(values, keep, strict=True) if ok]
    if good:
        table = pj.read_json(pa.BufferReader(b"\n".join(orjson.dumps(g) for g in good)),
                             parse_options=_PARSE).cast(TRADE_ARROW_SCHEMA)
    else:
        table = TRADE_ARROW_SCHEMA.empty_table()
    return Decoded(table, keep, [r for r in reasons if r])
