"""Trade ids: `run_id << 32 | instance << 24 | sequence` (layout and bounds in `stockafolio.records`).

A run id is the whole second (counted from `RUN_EPOCH`) *after* the moment the run starts, and the
run waits for that second before producing. The instance (0..255, `--instance`) tells apart the
generators of one deployment, which may well start in the same second: each simulates its own users
(`trades.instance_of`) and stamps its number into its ids, so concurrent instances never collide
whatever their run ids. Two runs of the *same* instance at once would simulate the same users (and
collide if started in the same second): give every concurrent generator its own `--instance` (the
cluster's role does), and never reuse a `--run-id` by hand.

Ids of one instance grow from one run to the next. A run with run id R starts producing at second R
and moves on to the next run id each time its 24-bit sequence is used up (`TradeIds.take`), so by
second T, having made n trades, it has used the run ids up to R + n // 2**24. As long as an instance
produces fewer than 2**24 (16.7 million) trades per second on average, n < 2**24 (T - R), so that is
below T, while a run started at T gets run id floor(T) + 1: larger than every id of every earlier
run. (Live runs make 20,000 a second by default, batch runs about a million: far below.) The bound does
not depend on the instance, so ids also grow from run to run when a user moves to another instance
(a new `--instances`). Passing a run id (with the same seed and instances) makes a run reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from stockafolio.records import INSTANCE_SHIFT, MAX_INSTANCES, MAX_RUN_ID, MAX_SEQUENCE, RUN_EPOCH, RUN_SHIFT


def new_run_id(now: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> int:
    """Wait for the next whole second and return it as a run id."""
    elapsed = now() - RUN_EPOCH.timestamp()
    run_id = int(elapsed) + 1
    sleep(max(0.0, run_id - elapsed))
    return run_id


class TradeIds:
    """Hands out consecutive trade ids of one instance in one run. When the 24-bit sequence is used up
    (16.8 million trades: 14 minutes at 20,000/s) it moves on to run id + 1, a second long past (see
    above), so ids keep growing."""

    def __init__(self, run_id: int, instance: int = 0, next_sequence: int = 0):
        if not 0 <= run_id <= MAX_RUN_ID:
            raise ValueError(f"run id must be 0..{MAX_RUN_ID}, got {run_id}")
        if not 0 <= instance < MAX_INSTANCES:
            raise ValueError(f"instance must be 0..{MAX_INSTANCES - 1}, got {instance}")
        self.run_id, self.instance, self.next_sequence = run_id, instance, next_sequence

    def take(self, n: int) -> np.ndarray:
        """The next `n` ids (int64), increasing."""
        if self.next_sequence + n > MAX_SEQUENCE + 1:
            head = MAX_SEQUENCE + 1 - self.next_sequence
            first = self.take(head)
            self.run_id, self.next_sequence = self.run_id + 1, 0
            return np.concatenate([first, self.take(n - head)])
        base = (self.run_id << RUN_SHIFT) | (self.instance << INSTANCE_SHIFT)
        ids = np.int64(base) + np.arange(self.next_sequence, self.next_sequence + n, dtype=np.int64)
        self.next_sequence += n
        return ids
