"""The operator's view of a run: a progress line (at most once a second) and messages, on stderr.

On a terminal the line rewrites itself in place; elsewhere (logs, CI) it is printed as a plain line
every `log_every` seconds so the log stays readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Snapshot:
    """Counters at one moment of a run."""

    at: float  # seconds since the run began
    simulated: str  # simulated time label
    sent: int
    acked: int | None  # None when nothing is acknowledged (batch mode)
    archived: int | None  # None when the run does not archive
    errors: int
    warnings: tuple[str, ...] = ()
    verb: str = "sent"  # what `sent` counts: "sent" (live) or "generated" (batch)


def format_line(now: Snapshot, before: Snapshot | None) -> str:
    """'  12 s  sim 2026-11-20 09:30:12  sent 240,000 (20,001/s)  acked ...'."""
    def rate(name: str) -> str:
        if before is None or now.at <= before.at:
            return ""
        value = getattr(now, name) - getattr(before, name)
        return f" ({value / (now.at - before.at):,.0f}/s)"

    parts = [f"{now.at:6.0f} s", f"sim {now.simulated}", f"{now.verb} {now.sent:,}{rate('sent')}"]
    if now.acked is not None:
        parts.append(f"acked {now.acked:,}{rate('acked')}")
    if now.archived is not None:
        parts.append(f"archived {now.archived:,}{rate('archived')}")
    parts.append(f"errors {now.errors:,}")
    return "  ".join([*parts, *now.warnings])


class Console:
    """Writes the progress line and messages to `stream` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, interval: float = 1.0, log_every: float = 10.0,
                 now: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if self.tty else log_every
        self._now = now
        self._last_print = -1e18
        self._last: Snapshot | None = None
        self._line_open = False

    def due(self) -> bool:
        return self._now() - self._last_print >= self.interval

    def progress(self, snapshot: Snapshot, force: bool = False) -> None:
        """Print `snapshot` if a line is due; `force` prints it now, without rates (the final one)."""
        if not (force or self.due()):
            return
        line = format_line(snapshot, None if force else self._last)
        self._last, self._last_print = snapshot, self._now()
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self._line_open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """A message on its own line (the progress line continues below it)."""
        self.end_line()
        self.stream.write(f"generator: {text}\n")
        self.stream.flush()

    def end_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
