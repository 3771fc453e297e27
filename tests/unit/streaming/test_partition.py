"""A partition of a micro-batch with no rows (an empty batch, or no user hashed to it) reports zeros
without touching Cassandra or Kafka; the driver combines the partitions' summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from stockafolio.settings import CassandraEndpoint
from streaming import partition

WORK = partition.Work("ks", CassandraEndpoint(("127.0.0.1",), 1, "dc"), "127.0.0.1:1", None, "events",
                      "dead", 100_000, 7, datetime(2026, 11, 20, tzinfo=UTC))


def test_an_empty_partition_reports_zeros_and_connects_nowhere() -> None:
    for frames in ([], [pd.DataFrame()]):
        (summary,) = partition.process(WORK, iter(frames))
        assert summary.to_dict("records") == [{"rows": 0, "dead_letters": 0, "touched_users": 0,
                                               "latency_ms": [], "read_s": 0.0, "compute_s": 0.0,
                                               "write_s": 0.0, "events_s": 0.0}]


def test_summaries_add_up_and_steps_take_the_slowest_partition() -> None:
    summaries = pd.DataFrame([
        {"rows": 10, "dead_letters": 1, "touched_users": 4, "latency_ms": [5.0, 7.0], "read_s": 1.0,
         "compute_s": 0.2, "write_s": 2.0, "events_s": 0.1},
        {"rows": 0, "dead_letters": 0, "touched_users": 0, "latency_ms": [], "read_s": 0.0,
         "compute_s": 0.0, "write_s": 0.0, "events_s": 0.0},
        {"rows": 5, "dead_letters": 0, "touched_users": 2, "latency_ms": [9.0], "read_s": 3.0,
         "compute_s": 0.1, "write_s": 1.0, "events_s": 0.3}])
    rows, dead, touched, latency, steps = partition.combine(summaries)
    assert (rows, dead, touched) == (15, 1, 6)
    assert np.array_equal(np.sort(latency), [5.0, 7.0, 9.0])
    assert steps == {"read": 3.0, "compute": 0.2, "write": 2.0, "events": 0.3}
