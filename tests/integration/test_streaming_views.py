"""The market views on the real stack: trades and price ticks in, the exact Q4, Q5, Q6 and Q7a rows out
(computed here independently, one Python step per record), moved by the portfolio query's micro-batches,
in several batches and twice over, and unchanged by a new checkpoint reading the topic again."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from stockafolio.records import PriceTick, Trade, encode
from stockafolio.settings import Endpoints
from streaming import job, prices, upgrade
from tests.integration.conftest import create_topics, drop_topics

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 20, 14, 30, 5, tzinfo=UTC)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyspark's, see test_streaming_job


@pytest.fixture()
def topics(endpoints: Endpoints, unique: str):
    names = {"trades": unique, "prices": f"{unique}_prices"}
    admin = create_topics(endpoints, list(names.values()))
    yield names
    drop_topics(admin, list(names.values()))



def make_trades(first_id: int, n: int, start: datetime) -> list[Trade]:
    rng = np.random.default_rng(first_id)
    return [Trade(trade_id=first_id + i, user_id=int(rng.integers(1, 9)),
                  symbol=str(rng.choice(["AAPL", "MSFT"])),
                  side="buy" if rng.random() < 0.6 else "sell", quantity=int(rng.integers(1, 40)),
                  price=round(float(rng.uniform(50, 400)), 2), event_time=start + timedelta(seconds=i))
            for i in range(n)]


def make_ticks() -> list[PriceTick]:
    # MSFT's newest tick arrives first: the view keeps the newest by event time, not the last read
    return [PriceTick("MSFT", 410.5, T0 + timedelta(seconds=9)), PriceTick("AAPL", 200.0, T0),
            PriceTick("AAPL", 201.25, T0 + timedelta(seconds=5)), PriceTick("MSFT", 400.0, T0)]


def produce(endpoints: Endpoints, topic: str, records: list, key) -> None:
    producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "enable.idempotence": True})
    for record in records:
        producer.produce(topic, key=key(record), value=encode(record))
    assert producer.flush(30) == 0


def expected(trades: list[Trade]) -> tuple[dict, dict, dict]:
    """(Q5, Q6, Q7a) as dicts keyed like the tables, from the trades one at a time."""
    q5: dict = defaultdict(lambda: defaultdict(int))
    q6: dict = defaultdict(lambda: defaultdict(int))
    q7: dict = defaultdict(lambda: defaultdict(int))
    users, last = defaultdict(set), {}
    for t in sorted(trades, key=lambda t: (t.event_time, t.trade_id)):
        minute = t.event_time.replace(second=0, microsecond=0)
        cents = t.quantity * round(t.price * 100)
        side = "buy" if t.side == "buy" else "sell"
        for row in (q5[(minute, t.symbol)], q6[minute], q7[(t.event_time.date(), t.symbol)]):
            row["trades"] += 1
            row["volume"] += t.quantity
            row["notional_cents"] += cents
            row[f"{side}_volume"] += t.quantity
            row[f"{side}_trades"] += 1
        last[(minute, t.symbol)] = t.price
        users[minute].add(t.user_id)
    for key, row in q5.items():
        row["last_price"], row["vwap"] = last[key], row["notional_cents"] / row["volume"] / 100
    for minute, row in q6.items():
        row["active_users"] = len(users[minute])
        row.pop("buy_volume", None), row.pop("sell_volume", None)
    for row in q7.values():
        row.pop("buy_trades", None), row.pop("sell_trades", None)
    return ({k: dict(v) for k, v in q5.items()}, {k: dict(v) for k, v in q6.items()},
            {k: dict(v) for k, v in q7.items()})


def stored(session, ks: str) -> tuple[dict, dict, dict, dict]:
    def utc(moment: datetime) -> datetime:
        return moment.replace(tzinfo=UTC)

    counts = ["trades", "volume", "notional_cents", "buy_trades", "sell_trades", "buy_volume", "sell_volume"]
    q5 = {(utc(r.minute), r.symbol): {**{c: getattr(r, c) for c in counts}, "last_price": r.last_price,
                                      "vwap": pytest.approx(r.vwap)}
          for r in session.execute(f"SELECT * FROM {ks}.symbol_stats_by_day_symbol")}  # noqa: S608
    q6 = {utc(r.minute): {**{c: getattr(r, c) for c in counts[:5]}, "active_users": r.active_users}
          for r in session.execute(f"SELECT * FROM {ks}.firm_activity_by_day")}  # noqa: S608
    totals = ["trades", "volume", "notional_cents", "buy_volume", "sell_volume"]
    q7 = {(r.day.date(), r.symbol): {c: getattr(r, c) for c in totals}
          for r in session.execute(f"SELECT * FROM {ks}.symbol_totals_by_day")}  # noqa: S608
    q4 = {r.symbol: (r.price, utc(r.event_time))
          for r in session.execute(f"SELECT * FROM {ks}.latest_price_by_market WHERE market = 'us'")}  # noqa: S608
    return q5, q6, q7, q4


def feed_prices(endpoints: Endpoints, session, topic: str, keyspace: str) -> None:
    """What the job's price feed does while it runs: read the topic's tail, write the newest ticks."""
    feed = prices.PriceFeed(endpoints.kafka.bootstrap_servers, topic, session, keyspace)
    try:
        feed._assign_tail()
        while feed.poll_once(timeout_s=2.0):
            pass
    finally:
        feed.consumer.close()


def run_views(spark, settings: job.JobSettings) -> None:
    query = job.start(spark, settings, available_now=True)
    query.awaitTermination(300)
    assert query.exception() is None


def test_trades_and_ticks_in_exact_market_views_out(spark, endpoints: Endpoints, cassandra_session, topics,
                                                    keyspace, tmp_path: Path) -> None:
    first = make_trades(1_000, 150, T0)  # 14:30:05 .. 14:32:34, three minutes
    produce(endpoints, topics["trades"], first, key=lambda t: str(t.user_id))
    produce(endpoints, topics["prices"], make_ticks(), key=lambda p: p.symbol)
    settings = job.JobSettings(endpoints.kafka.bootstrap_servers, keyspace, str(tmp_path / "portfolio"),
                               cassandra=endpoints.cassandra, trades_topic=topics["trades"],
                               prices_topic=topics["prices"], max_offsets_per_trigger=10)  # 40 a batch
    run_views(spark, settings)
    feed_prices(endpoints, cassandra_session, topics["prices"], keyspace)
    q5, q6, q7, q4 = stored(cassandra_session, keyspace)
    want5, want6, want7 = expected(first)
    assert (q5, q6, q7) == (want5, want6, want7)
    assert q4 == {"AAPL": (201.25, T0 + timedelta(seconds=5)), "MSFT": (410.5, T0 + timedelta(seconds=9))}
    feed_prices(endpoints, cassandra_session, topics["prices"], keyspace)  # the tail again: no change
    assert stored(cassandra_session, keyspace)[3] == q4

    # more trades into the last minute and a new one, from the same checkpoint: minutes grow, day
    # totals add exactly what they gained
    second = make_trades(5_000, 60, T0 + timedelta(seconds=140))
    produce(endpoints, topics["trades"], second, key=lambda t: str(t.user_id))
    run_views(spark, settings)
    assert stored(cassandra_session, keyspace)[:3] == expected(first + second)

    # a new checkpoint reads the whole topic again: the portfolios hold every trade, nothing is new
    run_views(spark, dataclasses.replace(settings, checkpoint=str(tmp_path / "again")))
    assert stored(cassandra_session, keyspace)[:3] == expected(first + second)


def test_a_checkpoint_whose_views_ran_as_a_query_of_their_own_is_caught_up(
        spark, endpoints: Endpoints, cassandra_session, topics, keyspace, tmp_path: Path) -> None:
    """The previous release's views query stopped behind the portfolio query: the views gain exactly
    the trades in between, once, then move with the portfolio batches."""
    checkpoint = tmp_path / "portfolio"
    settings = job.JobSettings(endpoints.kafka.bootstrap_servers, keyspace, str(checkpoint),
                               cassandra=endpoints.cassandra, trades_topic=topics["trades"],
                               prices_topic=topics["prices"], max_offsets_per_trigger=25)
    first, second, third = (make_trades(n * 1_000, 50, T0 + timedelta(minutes=2 * n)) for n in (1, 2, 3))
    produce(endpoints, topics["trades"], first, key=lambda t: str(t.user_id))
    run_views(spark, settings)
    counted = upgrade.committed_offsets(str(checkpoint), upgrade.local_files())
    produce(endpoints, topics["trades"], second, key=lambda t: str(t.user_id))
    run_views(spark, dataclasses.replace(settings, views=False))  # the portfolios run ahead of the views
    assert stored(cassandra_session, keyspace)[2] == expected(first)[2]

    old = Path(f"{checkpoint}{upgrade.OLD_VIEWS}")  # what the previous release's views query left
    (old / "offsets").mkdir(parents=True)
    (old / "commits").mkdir()
    (old / "metadata").write_text('{"id":"old-views-query"}')
    sources = {topics["trades"]: {str(p): o for (_, p), o in counted.items()}}
    (old / "offsets" / "7").write_text('v1\n{"batchWatermarkMs":0}\n' + json.dumps(sources))
    (old / "commits" / "7").write_text('v1\n{"nextBatchWatermarkMs":0}')

    produce(endpoints, topics["trades"], third, key=lambda t: str(t.user_id))
    run_views(spark, settings)
    assert stored(cassandra_session, keyspace)[:3] == expected(first + second + third)
    assert (old / upgrade.MARKER).exists()
    run_views(spark, settings)  # started again: the catch-up is not repeated
    assert stored(cassandra_session, keyspace)[:3] == expected(first + second + third)
