"""The retired views query of an older checkpoint: what it counted, the catch-up run once, on local
checkpoint folders laid out as Spark writes them."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pandas as pd

from stockafolio.records import Trade, encode
from streaming import upgrade
from tests.unit.streaming.test_views import T0

TOPIC = "trades"
SYMBOLS = frozenset({"AAPL", "MSFT"})


def batch(folder: Path, batch_id: int, ends: dict[int, int], committed: bool = True) -> None:
    (folder / "offsets").mkdir(parents=True, exist_ok=True)
    (folder / "commits").mkdir(exist_ok=True)
    offsets = {TOPIC: {str(p): o for p, o in ends.items()}}
    (folder / "offsets" / str(batch_id)).write_text('v1\n{"batchWatermarkMs":0}\n' + json.dumps(offsets))
    if committed:
        (folder / "commits" / str(batch_id)).write_text('v1\n{"nextBatchWatermarkMs":0}')


class Reader:
    """Records 0..n-1 of every partition: valid trades, and at offset 3 of partition 0 a bad record."""

    def __init__(self) -> None:
        self.asked: list = []

    def read(self, ranges):
        self.asked.append(dict(ranges))
        rows = []
        for (topic, partition), (start, end) in sorted(ranges.items()):
            for offset in range(max(start, 0), end):
                trade = Trade(trade_id=1_000 * partition + offset + 1, user_id=partition + 1, symbol="AAPL",
                              side="buy", quantity=1, price=10.0, event_time=T0.replace(tzinfo=UTC))
                value = b"{not json" if (partition, offset) == (0, 3) else encode(trade)
                rows.append({"value": value, "topic": topic, "partition": partition, "offset": offset,
                             "kafka_time": pd.Timestamp(T0)})
        return pd.DataFrame(rows)


def test_no_old_checkpoint_counts_nothing(tmp_path: Path) -> None:
    applied = []
    retired = upgrade.retire(str(tmp_path / "cp"), TOPIC, upgrade.local_files(), Reader(),
                             lambda t, g: applied.append(t), SYMBOLS)
    assert retired.counted == {} and applied == []
    assert retired.uncounted(pd.DataFrame({"partition": [0], "offset": [0]})).tolist() == [True]


def test_the_trades_between_the_two_queries_are_added_once(tmp_path: Path) -> None:
    checkpoint = tmp_path / "cp"
    old = Path(f"{checkpoint}{upgrade.OLD_VIEWS}")
    batch(checkpoint, 4, {0: 8, 1: 5})                      # the portfolio query committed these
    batch(checkpoint, 5, {0: 9, 1: 6}, committed=False)      # and was running this one
    batch(old, 1, {0: 2, 1: 6})                              # the views: behind on 0, ahead on 1
    batch(old, 2, {0: 7, 1: 7}, committed=False)
    (old / "metadata").write_text('{"id":"q-old"}')
    applied, reader = [], Reader()

    def apply(trades, guard):
        applied.append((guard, trades))

    retired = upgrade.retire(str(checkpoint), TOPIC, upgrade.local_files(), reader, apply, SYMBOLS)
    assert reader.asked == [{(TOPIC, 0): (2, 8)}]  # partition 1: the views are ahead, nothing to add
    guard, trades = applied[0]
    assert guard == "retired:q-old"
    assert trades["offset"].tolist() == [2, 4, 5, 6, 7]  # offset 3 is a dead letter, not a trade
    assert retired.counted == {0: 2, 1: 6}
    later = pd.DataFrame({"partition": [0, 1, 1], "offset": [8, 5, 6]})
    assert retired.uncounted(later).tolist() == [True, False, True]  # 1@5 is in the views already
    assert (old / upgrade.MARKER).exists()

    again = upgrade.retire(str(checkpoint), TOPIC, upgrade.local_files(), reader, apply, SYMBOLS)
    assert len(applied) == 1 and again.counted == retired.counted  # not caught up twice


def test_an_old_query_that_committed_nothing_counted_from_its_start(tmp_path: Path) -> None:
    checkpoint = tmp_path / "cp"
    old = Path(f"{checkpoint}{upgrade.OLD_VIEWS}")
    batch(checkpoint, 0, {0: 3})
    (old / "sources" / "0").mkdir(parents=True)
    (old / "sources" / "0" / "0").write_text("\x00v1\n" + json.dumps({TOPIC: {"0": 1}}))
    (old / "metadata").write_text('{"id":"q-old"}')
    reader = Reader()
    retired = upgrade.retire(str(checkpoint), TOPIC, upgrade.local_files(), reader,
                             lambda t, g: None, SYMBOLS)
    assert reader.asked == [{(TOPIC, 0): (1, 3)}] and retired.counted == {0: 1}
