"""Trade ids: `run_id << 32 | sequence` (layout and bounds in `stockafolio.records`).

A run id is the whole second (counted from `RUN_EPOCH`) *after* the moment the run starts, and the
run waits for that second before producing. So a run that starts after another one has produced
anything gets a larger run id: ids are unique across runs and restarts and grow from one run to the
next. Two generators started in the same second would collide: give concurrent generators distinct
`--run-id`s. Passing a run id also makes a run fully reproducible (same seed, same bytes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from stockafolio.records import MAX_RUN_ID, MAX_SEQUENCE, RUN_EPOCH, RUN_SHIFT


def new_run_id(now: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> int:
    """Wait for the next whole second and return it as a run id."""
    elapsed = now() - RUN_EPOCH.timestamp()
    run_id = int(elapsed) + 1
    sleep(max(0.0, run_id - elapsed))
    return run_id


class TradeIds:
    """Hands out consecutive trade ids of one run. When the 32-bit sequence is used up (4.3 billion
    trades: 12 hours at 100k/s) it moves on to run id + 1, a second long past, so ids keep growing."""

    def __init__(self, run_id: int, next_sequence: int = 0):
        if not 0 <= run_id <= MAX_RUN_ID:
            raise ValueError(f"run id must be 0..{MAX_RUN_ID}, got {run_id}")
        self.run_id, self.next_sequence = run_id, next_sequence

    def take(self, n: int) -> np.ndarray:
        """The next `n` ids (int64), increasing."""
        if self.next_sequence + n > MAX_SEQUENCE + 1:
            head = MAX_SEQUENCE + 1 - self.next_sequence
            first = self.take(head)
            self.run_id, self.next_sequence = self.run_id + 1, 0
            return np.concatenate([first, self.take(n - head)])
        ids = (np.int64(self.run_id) << np.int64(RUN_SHIFT)) + np.arange(
            self.next_sequence, self.next_sequence + n, dtype=np.int64)
        self.next_sequence += n
        return ids
