"""How fast the nightly risk stage can put one row per user into `hist_var_by_user` through the Spark
Cassandra connector, by write setting.

    python bench/batch_cassandra_writes.py [--rows 400000] [--reps 3]

Side by side in one run, medians of `--reps` (variants interleaved rep by rep, so a noisy minute hits
all of them), into a throwaway keyspace made from the real migrations (dropped at the end):

- `default`: the connector's defaults (rows grouped into batches only when they share a partition
  key; every `hist_var_by_user` row is its own partition, so one request per row), 5 writes in flight
  per task;
- `replica_set/N`: rows bound for the same replicas grouped into UNLOGGED batches of N rows
  (`spark.cassandra.output.batch.grouping.key=replica_set`, `batch.size.rows=N`), so one request
  carries N partitions that the coordinator owns anyway;
- `... x16`: the same with 16 batches in flight per task (`output.concurrent.writes`).

Writes `bench/results/batch_cassandra_writes.md`.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from batch import services, store  # noqa: E402
from cassandra.concurrent import execute_concurrent_with_args  # noqa: E402
from stack.cli import LOCAL_REPLICATION  # noqa: E402
from stockafolio import cql, migrations  # noqa: E402
from stockafolio.settings import Endpoints, default_var_dir  # noqa: E402

RESULT = REPO / "bench" / "results" / "batch_cassandra_writes.md"
SAMPLE = 2_000
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "replica_set/16": store.batched_writes(16, 5),
    "replica_set/64": store.batched_writes(64, 5),
    "replica_set/128": store.batched_writes(128, 5),
    "replica_set/64 x16": store.batched_writes(64, 16),
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=400_000, help="rows (users) per write (400,000)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each variant (3)")
    p.add_argument("--out", type=Path, default=RESULT, help=f"results file ({RESULT.relative_to(REPO)})")
    return p.parse_args(argv)


def rows(spark: SparkSession, n: int, rep: int) -> DataFrame:
    """`n` hist_var_by_user rows of users 1..n for a night of its own (a fresh row per rep)."""
    rand = F.rand(seed=rep)
    return (spark.range(1, n + 1, numPartitions=8).select(
        F.col("id").alias("user_id"), F.lit(date(2026, 1, 2 + rep)).alias("day"),
        (rand * 1e7).cast("bigint").alias("market_value_cents"),
        (rand * 2e7).cast("bigint").alias("gross_exposure_cents"),
        (rand * 900).alias("var_95"), (rand * 1500).alias("var_99"), (rand * 1200).alias("es_95"),
        (rand * 2000).alias("es_99"), F.lit(1258).alias("scenarios"),
        F.current_timestamp().alias("computed_at")).persist())


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    endpoints = Endpoints.load(default_var_dir())
    keyspace = f"bench{uuid.uuid4().hex[:8]}"
    cluster, session = cql.connect(endpoints.cassandra)
    migrations.apply(session, keyspace, migrations.load(REPO / "cassandra" / "migrations"), LOCAL_REPLICATION)
    spark = services.spark_session(endpoints, "bench-batch-cassandra-writes")
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    missing = 0
    try:
        for rep in range(args.reps):
            for i, (name, options) in enumerate(VARIANTS.items()):
                frame = rows(spark, args.rows, rep * len(VARIANTS) + i)
                frame.count()  # generated before the clock starts
                t0 = time.monotonic()
                store.append(frame, keyspace, "hist_var_by_user", options)
                seconds[name].append(time.monotonic() - t0)
                frame.unpersist()
                print(f"rep {rep + 1} {name}: {seconds[name][-1]:.1f} s "
                      f"({args.rows / seconds[name][-1]:,.0f} rows/s)", file=sys.stderr, flush=True)
                missing += absent(session, keyspace, args.rows, date(2026, 1, 2 + rep * len(VARIANTS) + i))
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        spark.stop()
        cluster.shutdown()
    text = report(args, seconds, missing)
    args.out.write_text(text)
    print(text)
    return 0 if not missing else 1


def absent(session, keyspace: str, n: int, day: date, sample: int = SAMPLE) -> int:
    """How many of `sample` random users of the write have no row for `day` (read back one by one;
    a count(*) over millions of rows times out on one node)."""
    users = random.Random(day.toordinal()).sample(range(1, n + 1), min(sample, n))
    query = session.prepare(f"SELECT user_id FROM {keyspace}.hist_var_by_user WHERE user_id = ? AND day = ?")  # noqa: S608
    results = execute_concurrent_with_args(session, query, [(u, day) for u in users], concurrency=64,
                                           raise_on_first_error=True)
    return sum(1 for ok, rows in results if not (ok and rows.one()))


def report(args: argparse.Namespace, seconds: dict[str, list[float]], missing: int) -> str:
    lines = [f"| {name} | {', '.join(f'{s:.1f}' for s in runs)} | {statistics.median(runs):.1f} | "
             f"{args.rows / statistics.median(runs):,.0f} |" for name, runs in seconds.items()]
    return "\n".join([
        "# Nightly batch: writing one row per user to Cassandra through the Spark connector", "",
        f"`python bench/batch_cassandra_writes.py --rows {args.rows} --reps {args.reps}` on "
        f"{platform.node()}, "
        f"Spark local[2] and one Cassandra node beside the whole stack "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores).", "",
        "| variant | seconds per rep | median s | rows/s (median) |", "|---|---|---:|---:|", *lines, "",
        f"Read back after each write: {SAMPLE:,} random users of it, one query each; "
        f"{missing} of {SAMPLE * args.reps * len(VARIANTS):,} missing.", ""])


if __name__ == "__main__":
    sys.exit(main())
