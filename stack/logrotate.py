"""`python -m stack.logrotate LOG --pid PID`: keep the `.out` log of one running process bounded.

Every process the stack manager starts writes its stdout and stderr straight into `<name>.out`
through a descriptor opened in append mode (`>>` in stack/process.py; a supervised process inherits
its supervisor's). Nothing in those processes can reopen the file, so the log is rotated by
*copy-truncate*: once it is over `max_bytes`, `LOG.1` .. `LOG.<backups>` shift by one, the log's
content is copied to `LOG.1` and the log is truncated to zero. Writers in append mode then continue
at the new end (offset 0), so no hole and no stale offset is left; the process never notices. The
cost: whatever is written between the end of the copy and the truncation (microseconds; the copy is
repeated until the size stops moving) is lost, as with logrotate's `copytruncate`.

`stack/process.py` starts one keeper per process, detached like the process itself, so a keeper that
dies never affects its process (a writer behind a pipe would: MinIO, a Go program, dies of SIGPIPE
when the reader of its stdout goes). The keeper checks the size every `interval_s` and exits once its
process is gone (pid and start time, so a reused pid is not mistaken for it). Its own lines go to
the same log, prefixed `=== ` like the stack manager's.

The services' own log files (Kafka's server.log, Cassandra's system.log, the HDFS daemons' logs)
are rotated by their logging libraries (the roles' log4j/logback configs); this covers the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
LOG_MARK = "=== "  # as in stack/supervise.py: lines written by the stack manager, not by the process


@dataclass(frozen=True)
class Rotation:
    """How a process's `.out` log is kept bounded: at most `max_bytes` (checked every `interval_s`, so
    it can overshoot by what the process writes in that time) plus `backups` older parts of about
    that size. `max_bytes` 0: never rotated."""

    max_bytes: int = 50 * MIB
    backups: int = 5
    interval_s: float = 5.0

    @classmethod
    def of(cls, raw: dict[str, Any] | None) -> Rotation:
        """From a launch spec's optional `log_rotate` block (missing keys: the defaults)."""
        raw = raw or {}
        default = cls()
        rotation = cls(int(raw.get("max_bytes", default.max_bytes)), int(raw.get("backups", default.backups)),
                       float(raw.get("interval_s", default.interval_s)))
        if rotation.max_bytes < 0 or rotation.backups < 1 or rotation.interval_s <= 0:
            raise ValueError(f"log_rotate needs max_bytes >= 0, backups >= 1 and interval_s > 0, got {raw}")
        return rotation

    def as_json(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes, "backups": self.backups, "interval_s": self.interval_s}


def backup(log: Path, index: int) -> Path:
    return log.with_name(f"{log.name}.{index}")


def rotate(log: Path, backups: int) -> int:
    """Copy-truncate `log` once: shift the backups (the oldest goes), copy the log to `LOG.1`,
    truncate it. Returns the bytes moved to `LOG.1`."""
    backup(log, backups).unlink(missing_ok=True)
    for index in range(backups - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(backup(log, index), backup(log, index + 1))
    with open(log, "rb") as src, open(backup(log, 1), "wb") as dst:
        copied = _copy_until_still(src, dst)
        os.truncate(log, 0)
    return copied


def _copy_until_still(src: Any, dst: Any) -> int:
    """Copy src to dst until a read finds its end (what was appended during the copy comes too), so
    that only what is written between that last read and the truncation is lost."""
    copied = 0
    while chunk := src.read(1024 * 1024):
        dst.write(chunk)
        copied += len(chunk)
    return copied


def rotate_if_big(log: Path, rotation: Rotation) -> bool:
    """Rotate `log` when it is over `rotation.max_bytes`. A non-blocking lock on the log itself (the
    processes writing it never lock) keeps two keepers of one log (a restart of the stack while the
    old keeper is still finishing) from shifting the backups twice."""
    if rotation.max_bytes <= 0:
        return False
    try:
        if log.stat().st_size <= rotation.max_bytes:
            return False
        with open(log, "rb") as locked:
            try:
                fcntl.flock(locked, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            copied = rotate(log, rotation.backups)
    except FileNotFoundError:  # the log was removed (a clean reinstall): nothing to keep
        return False
    _note(log, f"log rotated: the previous {copied:,} bytes are in {backup(log, 1).name} "
               f"(at most {rotation.backups} older parts are kept)")
    return True


def _note(log: Path, what: str) -> None:
    with open(log, "a") as out:
        out.write(f"{LOG_MARK}logrotate {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {what}\n")


# --- the process the keeper serves -------------------------------------------------------------

def start_time(pid: int) -> int | None:
    """The start time of `pid` (clock ticks since boot, /proc/PID/stat field 22), None if it is gone
    or a zombie: with the pid it names one process, whatever reuses the pid later."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def keep(log: Path, pid: int, rotation: Rotation, started: int | None = None,
         sleep: Any = time.sleep) -> None:
    """Rotate `log` whenever it is too big, until process `pid` (started at `started`) is gone."""
    started = start_time(pid) if started is None else started
    while started is not None and start_time(pid) == started:
        rotate_if_big(log, rotation)
        sleep(rotation.interval_s)


def keeper_argv(log: str, pid: int, rotation: Rotation) -> list[str]:
    """The command line of a keeper (run from the clone, so `stack` imports)."""
    return [sys.executable, "-m", "stack.logrotate", log, "--pid", str(pid),
            "--max-bytes", str(rotation.max_bytes), "--backups", str(rotation.backups),
            "--interval", f"{rotation.interval_s:g}"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rotation = Rotation(args.max_bytes, args.backups, args.interval)
    keep(args.log, args.pid, rotation)
    return 0


def _parser() -> argparse.ArgumentParser:
    default = Rotation()
    p = argparse.ArgumentParser(
        prog="python -m stack.logrotate",
        description="Copy-truncate LOG whenever it is over --max-bytes, keeping --backups older parts "
                    "(LOG.1 newest), until process --pid is gone. Started by the stack manager beside "
                    "every process it starts (stack/LAUNCH.md, `log_rotate`).")
    p.add_argument("log", type=Path, help="the log a process appends to")
    p.add_argument("--pid", type=int, required=True, help="the process writing it; the keeper ends with it")
    p.add_argument("--max-bytes", type=int, default=default.max_bytes, help="(default %(default)s)")
    p.add_argument("--backups", type=int, default=default.backups, help="(default %(default)s)")
    p.add_argument("--interval", type=float, default=default.interval_s,
                   help="seconds between size checks (default %(default)s)")
    return p


if __name__ == "__main__":
    sys.exit(main())
