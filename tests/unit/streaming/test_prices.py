"""The driver's price feed: the newest tick per symbol by event time, written as one batch per poll."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stockafolio.records import PriceTick, encode
from streaming.prices import PriceFeed

T0 = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)


class FakeSession:
    """Records the batches the feed sends (a unit-test stand-in; the integration test uses Cassandra)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple]] = []

    def prepare(self, query: str) -> str:
        return query

    def execute(self, batch) -> None:
        self.batches.append(batch.rows)


class RecordingBatch:
    def __init__(self, batch_type=None) -> None:
        self.rows: list[tuple] = []

    def add(self, statement, parameters) -> None:
        self.rows.append(tuple(parameters))


def tick(symbol: str, price: float, seconds: int) -> bytes:
    return encode(PriceTick(symbol, price, T0 + timedelta(seconds=seconds)))


def test_newest_tick_wins_whatever_the_order_and_bad_ticks_are_skipped(monkeypatch) -> None:
    monkeypatch.setattr("streaming.prices.BatchStatement", RecordingBatch)
    session = FakeSession()
    feed = PriceFeed("127.0.0.1:1", "prices", session, "ks")
    for value in (tick("AAPL", 2.0, 5), tick("AAPL", 1.0, 3), tick("MSFT", 3.0, 1), b"not a tick", None,
                  tick("MSFT", -1.0, 9)):
        feed._take(value)
    assert feed.latest() == {"AAPL": 2.0, "MSFT": 3.0} and feed.malformed == 3
    feed._write()
    feed._write()  # nothing moved since: nothing sent
    assert len(session.batches) == 1
    micros = int((T0 + timedelta(seconds=5)).timestamp() * 1_000_000)
    assert session.batches[0][0] == ("us", "AAPL", 2.0, T0 + timedelta(seconds=5), micros)
    feed.consumer.close()
