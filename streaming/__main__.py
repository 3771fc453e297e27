"""`python -m streaming status [--keyspace K]`: inspect the streaming job (see streaming/README.md);
`python -m streaming dead-letters [--latest N] [--since-minutes M]`: what it refused (dead_letters.py).

The job itself runs as `python -m streaming.job`; on the stack `bin/stockafolio run` starts it (and the
generator) as a managed pipeline process and `bin/stockafolio stop` stops it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from cassandra import DriverException
from cassandra.cluster import NoHostAvailable
from stockafolio import cql
from stockafolio.errors import StockafolioError
from stockafolio.settings import Endpoints, default_keyspace, default_var_dir
from streaming import dead_letters, status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "dead-letters":
        return _dead_letters(args)
    try:
        keyspace = cql.check_identifier(args.keyspace or default_keyspace())
        cluster, session = cql.connect(Endpoints.load(default_var_dir()).cassandra, timeout_s=5)
    except StockafolioError as exc:
        print(f"streaming status: {exc}", file=sys.stderr)
        return 1
    try:
        for job in status.JOBS:
            print("\n".join(status.report(job, status.latest_batches(session, keyspace, job),
                                          datetime.now(UTC))))
    except (DriverException, NoHostAvailable) as exc:  # a missing keyspace, Cassandra gone mid-read
        print(f"streaming status: cannot read {keyspace}.batches_by_job from Cassandra: {exc}; "
              "is the stack running (bin/stockafolio status / run)?", file=sys.stderr)
        return 1
    finally:
        cluster.shutdown()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streaming",
        description="Inspect the streaming job. It is a managed pipeline process of the stack: start it "
                    "with `bin/stockafolio run`, stop it with `bin/stockafolio stop`; it can also run on "
                    "its own as `python -m streaming.job` (see its --help).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = commands.add_parser("status", help="current batch, input and processing rates, Kafka lag, "
                               "last batch age and trade-to-Cassandra latency, from batches_by_job")
    show.add_argument("--keyspace", help="default: the stack's keyspace (STOCKAFOLIO_KEYSPACE)")
    dead_letters.add_parser(commands)
    return parser


def _dead_letters(args: argparse.Namespace) -> int:
    try:
        print("\n".join(dead_letters.run(args)))
    except StockafolioError as exc:
        print(f"streaming dead-letters: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
