"""A job restarted on the previous release's checkpoint: the market views' query it retires.

Until 2026-12-08 the market views (Q5-Q7a) were a second Spark query with its own checkpoint,
`<checkpoint>-market/trades`, which committed other offsets than the portfolio query: it ran every
10 s, so it was behind (or, reading larger batches, ahead). The portfolio query now moves the views
itself (`streaming.market`), so at the first batch on such a checkpoint:

- the trades the portfolio query committed but the old views had not counted (its committed offsets
  up to the portfolio query's) are read from Kafka and added to the views once, tagged
  `retired:<old query id>` (a crash during it replays the same tag), and a marker file
  `<checkpoint>-market/trades/views-caught-up` records that it was done;
- trades the old views had already counted (below its committed offsets, where it was ahead) stay
  out of the views of every later batch (`counted`), so none is counted twice.

The old query counted every valid trade, duplicates included, and dropped trades more than 10 minutes
late; the distinct users of a minute that both counted may include a user twice. The old checkpoint
folder is left in place: what it holds is read at every start (a few small files).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stockafolio import records
from stockafolio.accounting import TRADE_COLUMNS
from streaming import health, source

OLD_VIEWS = "-market/trades"  # the retired query's checkpoint: <checkpoint> + this
MARKER = "views-caught-up"


@dataclass(frozen=True)
class Files:
    """What this needs of a checkpoint's file system (local, or Hadoop's for hdfs:// and s3a://)."""

    read: Callable[[str], str]
    names: Callable[[str], list[str]]  # the entries of a folder ([] when it does not exist)
    write: Callable[[str, str], None]


def local_files() -> Files:
    def names(path: str) -> list[str]:
        folder = Path(path)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    return Files(read=lambda p: Path(p).read_text(), names=names,
                 write=lambda p, text: Path(p).write_text(text))


def hadoop_files(spark) -> Files:
    """Through Spark's Hadoop file systems, as Spark reads and writes its checkpoint."""
    jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()  # the py4j gateway to the JVM

    def fs_path(path: str):
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        return hadoop_path.getFileSystem(conf), hadoop_path

    def names(path: str) -> list[str]:
        fs, folder = fs_path(path)
        return sorted(s.getPath().getName() for s in fs.listStatus(folder)) if fs.exists(folder) else []

    def write(path: str, text: str) -> None:
        fs, file = fs_path(path)
        stream = fs.create(file, True)
        try:
            stream.write(bytearray(text.encode()))
        finally:
            stream.close()

    return Files(read=health.hadoop_reader(spark), names=names, write=write)


def committed_offsets(checkpoint: str, files: Files) -> health.Offsets | None:
    """The end offsets of the query's last committed batch (None: it committed none)."""
    done = [int(n) for n in files.names(f"{checkpoint.rstrip('/')}/commits") if n.isdigit()]
    return health.batch_end_offsets(checkpoint, max(done), files.read) if done else None


@dataclass(frozen=True)
class Retired:
    """What the retired views' query counted: per partition of the trades topic, the offset below
    which its views hold the trades."""

    counted: dict[int, int]

    def uncounted(self, trades: pd.DataFrame) -> np.ndarray:
        """True for the trades (with `partition`, `offset`) the old views did not count."""
        if not self.counted:
            return np.ones(len(trades), dtype=bool)
        below = trades["partition"].map(self.counted).fillna(-1).to_numpy(dtype=np.int64)
        return trades["offset"].to_numpy(dtype=np.int64) >= below


def retire(checkpoint: str, topic: str, files: Files, reader: source.RangeReader,
           apply: Callable[[pd.DataFrame, str], object], symbols: frozenset[str]) -> Retired:
    """At the first batch: catch the views up with the retired query's checkpoint, if there is one
    (see the module's docstring); `apply(trades, guard)` moves the views. Returns what it counted."""
    old = checkpoint.rstrip("/") + OLD_VIEWS
    if not files.names(old):
        return Retired({})
    counted = committed_offsets(old, files) or source.initial_offsets(old, files.read)
    counted = {p: o for (t, p), o in counted.items() if t == topic}
    if MARKER not in files.names(old):
        portfolio = committed_offsets(checkpoint, files) or {}
        ranges = {(t, p): (counted.get(p, source.EARLIEST), end) for (t, p), end in portfolio.items()
                  if t == topic and end > counted.get(p, 0)}
        if ranges:
            query = json.loads(files.read(f"{old}/metadata")).get("id", "unknown")
            apply(valid_trades(reader.read(ranges), symbols), f"retired:{query}")
        files.write(f"{old}/{MARKER}", json.dumps({str(p): r for (_, p), r in ranges.items()}))
    return Retired(counted)


def valid_trades(raw: pd.DataFrame, symbols: frozenset[str]) -> pd.DataFrame:
    """The valid trades among Kafka records (`source.RangeReader` frames), with partition and offset;
    the invalid ones were the portfolio query's dead letters already."""
    rows = []
    for value, partition, offset in zip(raw["value"], raw["partition"], raw["offset"], strict=True):
        if records.invalid_trade_reason(value, symbols) is None:
            trade = records.decode_trade(value)
            rows.append({**{c: getattr(trade, c) for c in TRADE_COLUMNS}, "partition": int(partition),
                         "offset": int(offset)})
    frame = pd.DataFrame(rows, columns=[*TRADE_COLUMNS, "partition", "offset"])
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True).dt.tz_convert(None) \
        .astype("datetime64[us]")
    return frame
