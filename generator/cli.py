"""python -m generator: live, batch and archive, with flags turned into frozen settings here (the only
place that reads flags, the environment or the endpoint files)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from generator.archive import ArchiveSettings, S3Writer
from generator.clock import today_in_new_york
from generator.ids import new_run_id
from generator.kafka_sink import KafkaSettings
from generator.live import LiveSettings, RunShape, Summary, run_live
from generator.market import Market
from generator.progress import Console
from stockafolio import topics
from stockafolio.errors import ConfigError, StockafolioError
from stockafolio.records import MAX_INSTANCES, MAX_RUN_ID
from stockafolio.reference import load_factor_model, load_universe
from stockafolio.settings import Endpoints, default_var_dir

# ---------------------------------------------------------------- flag types: bad input is a usage error


def _number(kind: type, low: float, inclusive: bool = False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {low:g}, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


positive_int = _number(int, 0)
positive_float = _number(float, 0)
non_negative_int = _number(int, 0, inclusive=True)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-20, got {text!r}") from None


def _run_id(text: str) -> int:
    value = non_negative_int(text)
    if value > MAX_RUN_ID:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_RUN_ID}, got {text}")
    return value


def _instances(text: str) -> int:
    value = positive_int(text)
    if value > MAX_INSTANCES:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_INSTANCES} (8 bits of the trade id), got {text}")
    return value


def _instance_problem(args: argparse.Namespace) -> str | None:
    """Why --instance/--instances do not go together (or with --users), or None."""
    if args.instance >= args.instances:
        return f"--instance must be below --instances ({args.instances}), got {args.instance}"
    if args.instances > args.users:
        return f"--instances {args.instances} leaves instances without users (--users {args.users})"
    return None


def _bucket(text: str) -> str:
    if not (3 <= len(text) <= 63) or not all(c.islower() or c.isdigit() or c in "-." for c in text):
        raise argparse.ArgumentTypeError(f"not a valid S3 bucket name: {text!r}")
    return text


def read_symbols(path: str, known: set[str]) -> tuple[str, ...]:
    """Symbols listed in a file (one per line, '#' comments); raises `ConfigError` for a missing
    file, an empty list or a symbol outside the universe."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the symbol list {path}: {exc.strerror}") from None
    symbols = tuple(dict.fromkeys(s for line in lines if (s := line.split("#")[0].strip().upper())))
    unknown = [s for s in symbols if s not in known]
    if unknown:
        raise ConfigError(f"{path}: not S&P 500 members: {', '.join(unknown[:10])}")
    if not symbols:
        raise ConfigError(f"{path} lists no symbol")
    return symbols


# ---------------------------------------------------------------- the parser


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m generator",
        description="Stockafolio's market in a box: simulated S&P 500 prices and retail trades, to "
                    "Kafka (live) or straight to the S3 archive (batch).",
        epilog="Endpoints come from <var>/endpoints/*.json (the local stack's; --var or "
               "$STOCKAFOLIO_VAR). Same --seed and --run-id: the same trades, byte for byte.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _live_parser(sub.add_parser("live", help="stream trades and prices to Kafka, archived to S3",
                                description="Publish trades (key user id) and price ticks (key "
                                            "symbol) at a steady rate; a companion process archives "
                                            "the trades topic to S3. Ctrl-C stops cleanly."))
    _batch_parser(sub.add_parser("batch", help="write a whole simulated day straight to S3",
                                 description="Generate a trading day's trades (and price ticks) "
                                             "and write them to the S3 archive, as fast as possible."))
    _archive_parser(sub.add_parser("archive", help="archive a trades topic to S3 (standalone)",
                                   description="Consume a trades topic in its own consumer group "
                                               "and write it to S3; commits only what is uploaded."))
    return p


def _shape_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to simulate")
    g.add_argument("--users", type=positive_int, default=10_000_000, help="number of users (10,000,000)")
    g.add_argument("--seed", type=non_negative_int, default=1, help="random seed (1)")
    g.add_argument("--run-id", type=_run_id, help="high 31 bits of the trade ids (default: the next "
                   "whole second since 2020; give one to reproduce a run exactly)")
    g.add_argument("--instance", type=non_negative_int, default=0, metavar="K",
                   help="this generator's number among --instances: it simulates the users whose id %% N "
                        "is K and stamps K into its trade ids (0)")
    g.add_argument("--instances", type=_instances, default=1, metavar="N",
                   help=f"generators sharing the users, at most {MAX_INSTANCES}; each makes about --rate "
                        "(live) or --trades (batch) of its own, instance 0 also the price ticks (1)")
    g.add_argument("--date", type=_date, help="simulated trading day, YYYY-MM-DD (today in New York)")
    g.add_argument("--symbols", metavar="FILE", help="trade only these symbols (one per line)")
    g.add_argument("--slots", type=positive_int, default=6, help="position slots per user (6)")
    g.add_argument("--short-selling", action="store_true", help="let users sell what they do not hold")


def _s3_flags(p: argparse.ArgumentParser, prefix: str = "trades") -> None:
    g = p.add_argument_group("S3 archive")
    g.add_argument("--bucket", type=_bucket, help="archive bucket (the stack's archive bucket)")
    g.add_argument("--prefix", default=prefix, help=f"key prefix of the trades ({prefix})")
    g.add_argument("--give-up", type=positive_float, default=120.0, metavar="SECONDS",
                   help="stop retrying an unreachable Kafka or S3 after this long (120)")
    p.add_argument("--var", type=Path, help="the stack's var folder (endpoints)")


def _live_parser(p: argparse.ArgumentParser) -> None:
    _shape_flags(p)
    g = p.add_argument_group("how fast and how long")
    g.add_argument("--rate", type=positive_float, default=20_000.0,
                   help="trades per second of this instance (20,000)")
    g.add_argument("--speed", type=positive_float, default=1.0,
                   help="simulated seconds per wall second (1; 60 runs a session in 6.5 minutes)")
    stop = g.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=positive_float, metavar="SECONDS", help="stop after this long")
    stop.add_argument("--trades", type=positive_int, help="stop after this many trades")
    g.add_argument("--days", type=positive_int, default=1,
                   help="simulated sessions before stopping, if nothing stops it earlier (1)")
    g = p.add_argument_group("Kafka")
    g.add_argument("--trades-topic", default=topics.TRADES, help=f"trades topic ({topics.TRADES})")
    g.add_argument("--prices-topic", default=topics.PRICES, help=f"prices topic ({topics.PRICES})")
    g.add_argument("--partitions", type=positive_int, default=6, help="partitions of topics it creates (6)")
    _s3_flags(p)
    p.add_argument("--no-archive", action="store_true", help="do not start the archiver process")
    p.add_argument("--archive-group", default="stockafolio-archiver",
                   help="consumer group of the archiver (stockafolio-archiver)")
    p.set_defaults(func=cmd_live)


def _batch_parser(p: argparse.ArgumentParser) -> None:
    _shape_flags(p)
    p.add_argument("--trades", type=positive_int, default=100_000_000,
                   help="trades in the day, of this instance (100,000,000)")
    p.add_argument("--seconds", type=positive_int, help="only the first SECONDS of the session")
    p.add_argument("--price-prefix", default="prices", help="key prefix of the price ticks (prices)")
    p.add_argument("--rows-per-object", type=positive_int, default=2_000_000,
                   help="largest Parquet object, in rows (2,000,000)")
    _s3_flags(p)
    p.set_defaults(func=cmd_batch)


def _archive_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", default=topics.TRADES, help=f"trades topic ({topics.TRADES})")
    p.add_argument("--group", default="stockafolio-archiver", help="consumer group (stockafolio-archiver)")
    p.add_argument("--until-caught-up", action="store_true",
                   help="stop once the topic's current end is archived (default: run until Ctrl-C)")
    p.add_argument("--batch-trades", type=positive_int, default=200_000, help="trades per batch (200,000)")
    p.add_argument("--batch-seconds", type=positive_float, default=10.0,
                   help="upload a batch once its oldest trade is this old (10 s)")
    _s3_flags(p)
    p.set_defaults(func=cmd_archive)


# ---------------------------------------------------------------- commands


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if hasattr(args, "instances") and (problem := _instance_problem(args)):
        p.exit(2, f"{p.prog} {args.command}: error: {problem}\n")
    console = Console()
    try:
        if getattr(args, "symbols", None):
            args.symbols = read_symbols(args.symbols, {s.symbol for s in load_universe()})
        return int(args.func(args, console))
    except ConfigError as exc:
        p.exit(2, f"{p.prog} {args.command}: error: {exc}\n")
    except StockafolioError as exc:
        console.say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        console.say("interrupted")
        return 130
    return 0


def _endpoints(args: argparse.Namespace) -> Endpoints:
    var = args.var or default_var_dir()
    return Endpoints.load(var)


def _shape(args: argparse.Namespace, console: Console) -> RunShape:
    run_id = args.run_id if args.run_id is not None else new_run_id()
    shares = f" --instance {args.instance} --instances {args.instances}" if args.instances > 1 else ""
    console.say(f"run id {run_id} (pass --run-id {run_id} --seed {args.seed}{shares} to reproduce this run)")
    return RunShape(users=args.users, seed=args.seed, run_id=run_id, date=args.date or today_in_new_york(),
                    symbols=args.symbols, slots=args.slots, short_selling=args.short_selling,
                    instance=args.instance, instances=args.instances)


def _archive_settings(args: argparse.Namespace, endpoints: Endpoints, **extra) -> ArchiveSettings:
    return ArchiveSettings(bucket=args.bucket or endpoints.s3.archive_bucket, prefix=args.prefix,
                           give_up_s=args.give_up, **extra)


def _market(shape: RunShape) -> Market:
    return Market.from_model(load_factor_model(), load_universe(), shape.symbols)


def _print_summary(summary: Summary) -> int:
    print("\n".join(summary.lines()), flush=True)
    if summary.problem:
        return 1
    return 130 if summary.interrupted else 0


def cmd_live(args: argparse.Namespace, console: Console) -> int:
    endpoints = _endpoints(args)
    kafka = KafkaSettings(endpoints.kafka.bootstrap_servers, args.trades_topic, args.prices_topic,
                          args.partitions, give_up_s=args.give_up, auth=endpoints.kafka.auth)
    shape = _shape(args, console)
    settings = LiveSettings(shape, args.rate, args.speed, kafka,
                            None if args.no_archive else _archive_settings(args, endpoints),
                            args.archive_group, args.duration, args.trades, args.days)
    return _print_summary(run_live(settings, _market(shape), endpoints.s3, console))


def cmd_batch(args: argparse.Namespace, console: Console) -> int:
    from generator.batch import BatchSettings, run_batch

    endpoints = _endpoints(args)
    shape = _shape(args, console)
    archive = _archive_settings(args, endpoints)
    settings = BatchSettings(shape, args.trades, archive, args.price_prefix, args.rows_per_object,
                             **({"seconds": args.seconds} if args.seconds else {}))
    writer = S3Writer(endpoints.s3, archive, console.say)
    return _print_summary(run_batch(settings, _market(shape), writer, console))


def cmd_archive(args: argparse.Namespace, console: Console) -> int:
    from generator.archiver import TopicArchiver

    endpoints = _endpoints(args)
    archive = _archive_settings(args, endpoints, batch_trades=args.batch_trades,
                                batch_seconds=args.batch_seconds)
    writer = S3Writer(endpoints.s3, archive, console.say)
    writer.ensure_bucket()
    stop = {"now": args.until_caught_up}

    def request_stop(signum: int, frame: object) -> None:
        stop["now"] = True

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        archiver = TopicArchiver(endpoints.kafka.bootstrap_servers, args.topic, args.group, writer, archive,
                                 console.say, auth=endpoints.kafka.auth)
        archived = archiver.run(lambda: stop["now"])
    finally:
        signal.signal(signal.SIGINT, previous)
    print(f"archived {archived:,} trades from {args.topic} to s3://{archive.bucket}/{archive.prefix}/ "
          f"in {writer.objects:,} objects ({writer.bytes / 1e6:,.1f} MB); {archiver.rejected:,} invalid "
          "records left out")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
