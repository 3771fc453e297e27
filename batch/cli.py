"""python -m batch: the nightly batch, stage by stage or all of it.

    python -m batch nightly   [--date YYYY-MM-DD] [--repair] [--keyspace K] [--bucket B] ...
    python -m batch ingest|views|reconcile|risk [--date ...]
    python -m batch schedule  [--at 02:30] (runs `nightly` every day at that UTC time)

--date defaults to the last complete market day in the archive: the market's clock is the latest
price tick's event time (simulated by the generator), not the wall clock (batch/days.py). A day whose
session has not ended by that clock is refused.

Exit codes: 0 done, 1 a stage failed (one message naming what and why), 2 bad flags, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from batch import schedule
from batch.settings import BatchError, BatchSettings
from stockafolio.argtypes import non_negative_int as _non_negative
from stockafolio.cql import check_identifier
from stockafolio.errors import StockafolioError
from stockafolio.settings import Endpoints, default_keyspace, default_var_dir

STAGE_NAMES = ("ingest", "views", "reconcile", "risk")
NEEDS = {"ingest": ("s3", "hdfs"), "views": ("hdfs", "cassandra"), "reconcile": ("hdfs", "cassandra"),
         "risk": ("hdfs", "cassandra")}


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _memory(text: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*[mMgG]", text):
        raise argparse.ArgumentTypeError(f"expected a size like 6g or 4096m, got {text!r}")
    return text.lower()


def _money(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e12:
        raise argparse.ArgumentTypeError(f"expected dollars >= 0, got {text!r}")
    return value


def common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", type=_date, default=None,
                   help="the market day (UTC) to process (default: the last complete day in the archive, "
                        "by the market's clock: the latest price tick)")
    p.add_argument("--assume-complete", action="store_true",
                   help="run --date even if the market's clock says its session has not ended (trading "
                        "of that day is over all the same: a generator run that stopped early)")
    p.add_argument("--keyspace", help="Cassandra keyspace (default: $STOCKAFOLIO_KEYSPACE or stockafolio)")
    p.add_argument("--bucket", help="S3 archive bucket (default: the stack's archive bucket)")
    p.add_argument("--prefix", default="trades", help="key prefix of the trades in the bucket (trades)")
    p.add_argument("--root", default="/stockafolio", help="HDFS folder of the batch datasets (/stockafolio)")
    p.add_argument("--sp500", type=Path, help="raw S&P 500 folder: the risk stage derives its scenarios "
                   "and model from it (default: the repository's reference scenarios and model)")
    p.add_argument("--opening-cash", type=_money, help="a new user's cash in dollars, as given to the "
                   "streaming job (default: the generator's per-user starting cash for --seed)")
    p.add_argument("--seed", type=_non_negative, default=1, help="the generator's --seed (1)")
    p.add_argument("--groups", type=_non_negative, default=0,
                   help="user groups of the reconciliation and risk (0: one per million trades)")
    p.add_argument("--driver-memory", type=_memory, default="6g",
                   help="heap of the Spark JVM that runs the stages, e.g. 6g or 4096m (6g; the "
                   "stack's spark-defaults give other Spark programs 2g)")
    p.add_argument("--var", type=Path, help="the stack's var folder (endpoint files)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m batch", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {"nightly": "ingest -> views -> reconcile -> risk for one day",
             "ingest": "the day's trade files from S3 into curated Parquet on HDFS (+ rejects)",
             "views": "firm-wide views of the day into Cassandra (Q9) and the top users (Q7b)",
             "reconcile": "holdings rebuilt from the archive vs portfolio_by_user (Q10)",
             "risk": "historical VaR per user (Q11) and the factor model re-estimated on HDFS"}
    for name, text in helps.items():
        p = sub.add_parser(name, help=text, description=text)
        common_flags(p)
        if name in ("nightly", "reconcile"):
            p.add_argument("--repair", action="store_true",
                           help="rewrite mismatched holdings with the rebuilt values")
        if name == "nightly":
            p.add_argument("--skip", action="append", choices=STAGE_NAMES, default=[],
                           help="leave a stage out (repeatable)")
    schedule.add_parser(sub, common_flags)
    return top


def settings_from(args: argparse.Namespace, day: date | None = None) -> BatchSettings:
    """The settings of one run; `day` (else `--date`) must be known: see `market_day`."""
    endpoints = Endpoints.load(args.var or default_var_dir())
    day = day or args.date
    if day is None:
        raise BatchError("no day to process: pass --date YYYY-MM-DD")
    return BatchSettings(
        endpoints=endpoints, day=day,
        keyspace=check_identifier(args.keyspace or default_keyspace()),
        bucket=args.bucket or endpoints.s3.archive_bucket, prefix=args.prefix, root=args.root,
        sp500=args.sp500, seed=args.seed,
        opening_cash_cents=None if args.opening_cash is None else round(args.opening_cash * 100),
        repair=getattr(args, "repair", False), groups=args.groups, driver_memory=args.driver_memory)


def market_day(args: argparse.Namespace, stages: Sequence[str]) -> date:
    """`--date`, checked to have ended by the market's clock (unless --assume-complete, or only ingest
    runs); without it, the last complete day of the archive. Reads the archive's day folders (S3) and
    the latest price tick (Cassandra), before Spark starts."""
    from batch import days, services

    endpoints = Endpoints.load(args.var or default_var_dir())
    if args.date is not None and (args.assume_complete or list(stages) == ["ingest"]):
        return args.date
    bucket = args.bucket or endpoints.s3.archive_bucket
    keyspace = check_identifier(args.keyspace or default_keyspace())
    services.check_s3(endpoints)
    services.check_cassandra(endpoints)
    where = f"s3://{bucket}/{args.prefix.strip('/')}/"
    archived = days.archived_days(services.archive_days(endpoints, bucket, args.prefix))
    now = services.market_now(endpoints, keyspace)
    if args.date is None:
        day = days.default_day(archived, now, where)
        say(day, f"the last complete market day in {where} ({_market(now)})")
        return day
    days.check_complete(args.date, now, archived, where)
    return args.date


def _market(now: datetime | None) -> str:
    return "no price tick stored yet" if now is None else f"market clock {now:%Y-%m-%d %H:%M:%S} UTC"


def say(day: date, message: str) -> None:
    print(f"[batch {day}] {message}", file=sys.stderr, flush=True)


def run(settings: BatchSettings, stages: Sequence[str]) -> None:
    """Run `stages` in order on one Spark session, each announced and timed."""
    from batch import services
    from batch import stages as impl

    def note(message: str) -> None:
        say(settings.day, f"  {message}")

    needed = sorted({svc for st in stages for svc in NEEDS[st]})
    checks = {"s3": services.check_s3, "hdfs": services.check_hdfs, "cassandra": services.check_cassandra}
    for service in needed:
        checks[service](settings.endpoints)
    if "ingest" in stages:
        services.list_day(settings)  # no data for the day: say so before Spark starts
    started = time.monotonic()
    say(settings.day, f"starting Spark ({settings.endpoints.spark.master}) for {', '.join(stages)}")
    spark = services.spark_session(settings.endpoints, memory=settings.driver_memory)
    try:
        night = impl.Night(spark, settings, note)
        for name in stages:
            t0 = time.monotonic()
            say(settings.day, f"{name} ...")
            summary = impl.STAGES[name](night)
            say(settings.day, f"{name} done in {time.monotonic() - t0:.1f} s: {summary}")
    finally:
        spark.stop()
    say(settings.day, f"all done in {time.monotonic() - started:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "schedule":
            return schedule.loop(args)
        stages = ([s for s in STAGE_NAMES if s not in args.skip] if args.command == "nightly"
                  else [args.command])
        settings = settings_from(args, market_day(args, stages))
        run(settings, stages)
        return 0
    except KeyboardInterrupt:
        print("batch: interrupted", file=sys.stderr)
        return 130
    except StockafolioError as exc:
        print(f"batch: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # Spark and py4j errors: one line, the traceback only with --debug
        if getattr(args, "debug", False):
            traceback.print_exc()
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        print(f"batch: error: {type(exc).__name__}: {first[:500]} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
