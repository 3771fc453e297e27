"""`python -m batch schedule`: this machine's scheduler, a small loop that runs `nightly` every day at a
fixed UTC time (a cluster uses cron instead, see ansible/roles/nightly), for the child's default day:
the last complete market day in the archive, by the market's clock (batch/days.py).

Each night runs as a child process (`python -m batch nightly ...` with the same flags), so a failed
night is reported and the loop carries on, and Spark's memory is returned between nights.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock

PASSED = ("keyspace", "bucket", "prefix", "root", "sp500", "opening_cash", "seed", "groups", "driver_memory",
          "var")


def _at(text: str) -> clock:
    try:
        return clock.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a UTC time HH:MM, got {text!r}") from None


def add_parser(sub, common_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("schedule", help="run nightly (the last complete market day) every day at --at (UTC)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_flags(p)
    p.add_argument("--at", type=_at, default=clock(2, 30), help="UTC time of the nightly run (02:30)")
    p.add_argument("--repair", action="store_true", help="pass --repair to every night")
    p.add_argument("--nights", type=int, default=0, help="stop after this many nights (0: never)")


def next_run(now: datetime, at: clock) -> datetime:
    """The first `at` (UTC) strictly after `now`."""
    candidate = datetime.combine(now.date(), at, tzinfo=UTC)
    return candidate if candidate > now else candidate + timedelta(days=1)


def command(args: argparse.Namespace) -> list[str]:
    """The child command line of one night (its day: the last complete market day when it runs)."""
    argv = [sys.executable, "-m", "batch", "nightly"]
    for name in PASSED:
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return [*argv, *(["--repair"] if args.repair else [])]


def loop(args: argparse.Namespace, sleep: Callable[[float], None] = time.sleep,
         clock_now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> int:
    nights = 0
    while not args.nights or nights < args.nights:
        due = next_run(clock_now(), args.at)
        print(f"[batch schedule] next nightly run at {due:%Y-%m-%d %H:%M} UTC", file=sys.stderr, flush=True)
        while (left := (due - clock_now()).total_seconds()) > 0:
            sleep(min(left, 60.0))
        code = subprocess.call(command(args))
        print(f"[batch schedule] nightly run of {due:%Y-%m-%d %H:%M} UTC ended with exit code {code}",
              file=sys.stderr, flush=True)
        nights += 1
    return 0
