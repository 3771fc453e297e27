"""Benchmark of the nightly batch: a generated day of trades straight to S3, then each stage timed.

    python bench/batch_nightly.py [--trades 100000000] [--users 10000000] [--date 2026-11-19] [--keep]

Writes the day with the generator's batch mode into a fresh bucket, applies the migrations to a fresh
keyspace (so `portfolio_by_user` is empty: the reconciliation compares every rebuilt holding against
nothing and reports them all missing, which costs the same join and count as a full comparison but
skips the repair), then runs ingest -> views -> reconcile -> risk on one Spark session, printing and
writing bench/results/batch_nightly.md (time per stage and trades/s). One run: a 100-million-trade
day takes minutes per stage on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hdfs_native import Client  # noqa: E402

from batch import services, stages  # noqa: E402
from batch.settings import BatchSettings  # noqa: E402
from stack.cli import LOCAL_REPLICATION  # noqa: E402
from stockafolio import cql, migrations  # noqa: E402
from stockafolio import s3 as s3lib  # noqa: E402
from stockafolio.settings import Endpoints, default_var_dir  # noqa: E402

RESULTS = REPO / "bench" / "results" / "batch_nightly.md"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trades", type=int, default=100_000_000, help="trades in the day (100,000,000)")
    p.add_argument("--users", type=int, default=10_000_000, help="simulated users (10,000,000)")
    p.add_argument("--date", type=date.fromisoformat, default=date(2026, 11, 19), help="the day (2026-11-19)")
    p.add_argument("--keep", action="store_true", help="keep the bucket, HDFS folder and keyspace")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results file ({RESULTS.relative_to(REPO)})")
    return p.parse_args(argv)


def generate(args: argparse.Namespace, bucket: str) -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "generator", "batch", "--trades", str(args.trades), "--users",
                    str(args.users), "--date", args.date.isoformat(), "--bucket", bucket, "--run-id", "7"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def cleanup(endpoints: Endpoints, spark, settings: BatchSettings, session) -> None:
    Client(endpoints.hdfs.url).delete(settings.root, True)  # hdfs-native: works after Spark is interrupted
    session.execute(f"DROP KEYSPACE IF EXISTS {settings.keyspace}", timeout=120)
    s3 = s3lib.client(endpoints.s3)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=settings.bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=settings.bucket)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    endpoints = Endpoints.load(default_var_dir())
    tag = f"bench{uuid.uuid4().hex[:8]}"
    settings = BatchSettings(endpoints=endpoints, day=args.date, keyspace=tag, bucket=tag.replace("_", "-"),
                             root=f"/bench/{tag}", opening_cash_cents=0)
    print(f"generating {args.trades:,} trades of {args.users:,} users into s3://{settings.bucket} ...",
          file=sys.stderr, flush=True)
    times = {"generate (not a batch stage)": generate(args, settings.bucket)}
    cluster, session = cql.connect(endpoints.cassandra)
    migrations.apply(session, tag, migrations.load(REPO / "cassandra" / "migrations"), LOCAL_REPLICATION)
    spark = services.spark_session(endpoints, "bench-nightly", memory=settings.driver_memory)
    summaries = {}
    try:
        night = stages.Night(spark, settings, lambda m: print(f"  {m}", file=sys.stderr, flush=True))
        for name, stage in stages.STAGES.items():
            t0 = time.monotonic()
            print(f"{name} ...", file=sys.stderr, flush=True)
            summaries[name] = stage(night)
            times[name] = time.monotonic() - t0
            print(f"{name}: {times[name]:.1f} s: {summaries[name]}", file=sys.stderr, flush=True)
            # after every stage: an interrupted run keeps what it measured
            write(args, times, summaries, night.steps)
    finally:
        if not args.keep:
            cleanup(endpoints, spark, settings, session)
        spark.stop()
        cluster.shutdown()
    return 0


def write(args: argparse.Namespace, times: dict[str, float], summaries: dict[str, str],
          steps: dict[str, float]) -> None:
    total = sum(v for k, v in times.items() if k in stages.STAGES)
    done = [k for k in stages.STAGES if k in times]
    partial = "" if len(done) == len(stages.STAGES) else f" (only {', '.join(done)}: the run was interrupted)"
    rows = [f"| {k} | {v:,.1f} | {args.trades / v:,.0f} |" for k, v in times.items()]
    text = "\n".join([
        "# Nightly batch: time per stage", "",
        f"`python bench/batch_nightly.py --trades {args.trades} --users {args.users}` on "
        f"{platform.node()} ({platform.processor() or platform.machine()}), Spark local[2] beside the whole "
        f"stack, **one run** ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).", "",
        "| stage | seconds | trades/s |", "|---|---:|---:|", *rows,
        f"| **night{partial}** | **{total:,.1f}** | **{args.trades / total:,.0f}** |", "",
        f"Load average while it ran (1, 5, 15 min, at the end): {os.getloadavg()[0]:.1f}, "
        f"{os.getloadavg()[1]:.1f}, {os.getloadavg()[2]:.1f} on {os.cpu_count()} cores "
        "(the machine is shared).", "",
        "The timed steps inside the stages (each stage's remainder is planning, small reads and swaps):", "",
        "| step | seconds |", "|---|---:|", *[f"| {k} | {v:,.1f} |" for k, v in steps.items()], "",
        "What each stage reported:", "", *[f"- {k}: {v.splitlines()[0]}" for k, v in summaries.items()], "",
        "The keyspace is fresh, so `portfolio_by_user` is empty and every rebuilt holding is reported "
        "missing (no repair); the comparison's join and counts are the same work as against a full table, "
        "minus the connector's scan of that table.", ""])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
