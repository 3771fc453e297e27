"""The nightly batch on the real stack: a day generated into Kafka and the S3 archive, streamed into
Cassandra by the streaming job, then `python -m batch nightly`: refused while the market's clock (the
latest price tick) is inside the day, run for it by default once the clock is on the next weekday; the
views match computations made here straight from the archive, the reconciliation finds nothing wrong;
one corrupted holding is found (exactly that one) and repaired. Bad days and missing services end in
one clear message."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from confluent_kafka.admin import AdminClient
from hdfs_native import Client

from stack.cli import LOCAL_REPLICATION
from stockafolio import migrations
from stockafolio import s3 as s3lib
from stockafolio.settings import Endpoints

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-11-20"
TRADES = 4_000
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture()
def names(unique: str, endpoints: Endpoints, cassandra_session) -> Iterator[dict[str, str]]:
    made = {
        "trades": f"{unique}_trades",
        "prices": f"{unique}_prices",
        "events": f"{unique}_events",
        "dead": f"{unique}_dead",
        "bucket": unique.replace("_", "-")[:63],
        "keyspace": f"{unique}_ks"[:48],
        "root": f"/tests/{unique}",
    }
    migrations.apply(
        cassandra_session,
        made["keyspace"],
        migrations.load(REPO / "cassandra" / "migrations"),
        LOCAL_REPLICATION,
    )
    yield made
    cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {made['keyspace']}", timeout=120)
    admin = AdminClient({"bootstrap.servers": endpoints.kafka.bootstrap_servers})
    present = admin.list_topics(timeout=10).topics
    doomed = [made[k] for k in ("trades", "prices", "events", "dead") if made[k] in present]
    for future in admin.delete_topics(doomed).values() if doomed else []:
        future.result(30)
    s3 = s3lib.client(endpoints.s3)
    if made["bucket"] in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=made["bucket"]):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=made["bucket"], Key=obj["Key"])
        s3.delete_bucket(Bucket=made["bucket"])
    Client(endpoints.hdfs.url).delete(made["root"], True)


def run(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def batch(
    names: dict[str, str], command: str, *more: str, var: Path | None = None, day: str | None = DAY
) -> subprocess.CompletedProcess:
    extra = ["--var", str(var)] if var else []
    return run(
        "batch",
        command,
        *(["--date", day] if day else []),
        "--keyspace",
        names["keyspace"],
        "--bucket",
        names["bucket"],
        "--root",
        names["root"],
        "--opening-cash",
        "0",
        *extra,
        *more,
    )


def stream_a_day(names: dict[str, str], tmp_path: Path) -> None:
    gen = run(
        "generator",
        "live",
        "--users",
        "400",
        "--rate",
        "4000",
        "--trades",
        str(TRADES),
        "--speed",
        "20",
        "--seed",
        "9",
        "--date",
        DAY,
        "--trades-topic",
        names["trades"],
        "--prices-topic",
        names["prices"],
        "--bucket",
        names["bucket"],
        "--partitions",
        "2",
        "--archive-group",
        f"{names['trades']}_arch",
    )
    assert gen.returncode == 0, gen.stderr[-2000:]
    job = [
        "streaming.job",
        "--keyspace",
        names["keyspace"],
        "--checkpoint",
        str(tmp_path / "ckpt"),
        "--trades-topic",
        names["trades"],
        "--opening-cash",
        "0",
        "--available-now",
    ]
    flags = run("streaming.job", "--help", timeout=60).stdout
    for flag, value in (
        ("--prices-topic", names["prices"]),
        ("--events-topic", names["events"]),
        ("--dead-letter-topic", names["dead"]),
    ):
        if flag in flags:
            job += [flag, value]
    streamed = run(*job)
    assert streamed.returncode == 0, streamed.stderr[-3000:]


def archive(endpoints: Endpoints, bucket: str) -> pd.DataFrame:
    s3 = s3lib.client(endpoints.s3)
    frames = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"trades/date={DAY}/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            frames.append(pq.read_table(io.BytesIO(body)).to_pandas())
    return pd.concat(frames, ignore_index=True)


def view(session, ks: str, name: str) -> dict[str, dict[str, float]]:
    rows = session.execute(
        f"SELECT label, metrics FROM {ks}.nightly_view_by_day_view "  # noqa: S608
        f"WHERE day = '{DAY}' AND \"view\" = '{name}'"
    )
    return {r.label: dict(r.metrics) for r in rows}


def latest_report(session, ks: str):
    return session.execute(f"SELECT * FROM {ks}.reconciliation_by_day WHERE day = '{DAY}' LIMIT 1").one()  # noqa: S608


def tick(session, ks: str, moment: str) -> None:
    """A price tick in Q4: it sets the market's clock (the latest tick's event time)."""
    session.execute(
        f"INSERT INTO {ks}.latest_price_by_market (market, symbol, price, event_time) "  # noqa: S608
        "VALUES ('us', 'AAPL', 150.0, %s)",
        (pd.Timestamp(moment).to_pydatetime(),),
    )


def test_a_streamed_day_reconciles_and_a_corrupt_holding_is_found_and_repaired(
    endpoints: Endpoints, cassandra_session, names: dict[str, str], tmp_path: Path
) -> None:
    stream_a_day(names, tmp_path)
    ks = names["keyspace"]
    # the market's clock inside the day's session: the day is in progress, refused before Spark starts
    tick(cassandra_session, ks, f"{DAY}T20:00:00Z")
    early = batch(names, "nightly")
    assert early.returncode == 1 and f"{DAY} is still in progress" in early.stderr, early.stderr[-2000:]
    assert "starting Spark" not in early.stderr
    # the simulated market moves on to the next weekday (Monday): the default day is the finished Friday
    tick(cassandra_session, ks, "2026-11-23T14:30:00Z")
    night = batch(names, "nightly", day=None)
    assert night.returncode == 0, night.stderr[-3000:]
    assert f"[batch {DAY}] the last complete market day" in night.stderr
    assert "ingest done" in night.stderr and "risk done" in night.stderr
    trades = archive(endpoints, names["bucket"])
    assert len(trades) == TRADES

    # the views against the archive, computed here with pandas
    trades["notional"] = trades["quantity"] * trades["price"]
    by_symbol = trades.groupby("symbol").agg(trades=("trade_id", "size"), notional=("notional", "sum"))
    symbols = view(cassandra_session, ks, "symbols")
    assert set(symbols) == set(by_symbol.index)
    for symbol, row in by_symbol.iterrows():
        assert symbols[symbol]["trades"] == row["trades"]
        assert symbols[symbol]["notional"] == pytest.approx(row["notional"])
    minutes = view(cassandra_session, ks, "minutes")
    per_minute = trades.groupby(trades["event_time"].dt.strftime("%Y-%m-%dT%H:%MZ"))["user_id"]
    assert {k: v["trades"] for k, v in minutes.items()} == per_minute.size().astype(float).to_dict()
    # distinct users per minute are a HyperLogLog estimate (1 % relative standard deviation)
    exact_users = per_minute.nunique().astype(float).to_dict()
    assert set(exact_users) == set(minutes)
    for minute, users in exact_users.items():
        assert minutes[minute]["active_users"] == pytest.approx(users, rel=0.05, abs=1), minute
    top = cassandra_session.execute(
        f"SELECT rank, user_id, value FROM {ks}.top_users_by_day_metric "  # noqa: S608
        f"WHERE day = '{DAY}' AND metric = 'trades'"
    )
    counts = (
        trades.groupby("user_id")
        .size()
        .reset_index(name="n")
        .sort_values(["n", "user_id"], ascending=[False, True])
    )
    assert [(r.user_id, r.value) for r in top] == list(
        zip(counts["user_id"][:100], counts["n"][:100].astype(float), strict=True)
    )

    # the stream's holdings (read here from Cassandra) give the crowded names and the risk rows
    query = f"SELECT user_id, symbol, quantity FROM {ks}.portfolio_by_user"  # noqa: S608
    held = pd.DataFrame(list(cassandra_session.execute(query)))
    held = held.loc[held["quantity"].fillna(0) != 0]
    crowded = view(cassandra_session, ks, "crowded_names")
    assert {k: v["holders"] for k, v in crowded.items()} == held.groupby("symbol").size().astype(
        float
    ).to_dict()
    risk = cassandra_session.execute(f"SELECT count(*) FROM {ks}.hist_var_by_user").one()[0]  # noqa: S608
    assert risk == held["user_id"].nunique()

    report = latest_report(cassandra_session, ks)
    assert (report.mismatches, report.users_checked) == (0, trades["user_id"].nunique()), report.sample
    assert report.holdings_checked == len(trades.drop_duplicates(["user_id", "symbol"]))

    # corrupt one holding: the reconciliation finds exactly that one and puts it back
    victim = held.iloc[len(held) // 2]
    user, symbol, quantity = int(victim["user_id"]), victim["symbol"], int(victim["quantity"])
    cassandra_session.execute(
        f"UPDATE {ks}.portfolio_by_user SET quantity = %s "  # noqa: S608
        "WHERE user_id = %s AND symbol = %s",
        (quantity + 7, user, symbol),
    )
    fixed = batch(names, "reconcile", "--repair")
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    report = latest_report(cassandra_session, ks)
    assert (report.mismatches, report.repaired) == (1, 1)
    assert report.sample == [
        f"user {user} {symbol}: differs: quantity stored {quantity + 7} rebuilt {quantity}"
    ]
    back = cassandra_session.execute(
        f"SELECT quantity FROM {ks}.portfolio_by_user "  # noqa: S608
        "WHERE user_id = %s AND symbol = %s",
        (user, symbol),
    ).one()
    assert back.quantity == quantity


def test_bad_days_and_missing_services_end_in_one_clear_message(
    endpoints: Endpoints, names: dict[str, str], tmp_path: Path
) -> None:
    s3lib.ensure_bucket(endpoints.s3, names["bucket"])
    nothing = batch(names, "ingest")
    assert nothing.returncode == 1
    assert f"no trades archived for {DAY}" in nothing.stderr and "Traceback" not in nothing.stderr

    key = f"trades/date={DAY}/hour=14/trades-p0-o0.parquet"
    s3lib.client(endpoints.s3).put_object(Bucket=names["bucket"], Key=key, Body=b"not parquet at all")
    corrupt = batch(names, "ingest")
    assert corrupt.returncode == 1, corrupt.stderr[-2000:]
    assert f"s3a://{names['bucket']}/{key}" in corrupt.stderr and "Traceback" not in corrupt.stderr

    var = tmp_path / "var"
    (var / "endpoints").mkdir(parents=True)
    for name in ("cassandra", "kafka", "s3", "spark", "hdfs"):
        body = json.loads(
            (Path(endpoints.spark.conf_dir).parents[1] / "endpoints" / f"{name}.json").read_text()
        )
        if name == "hdfs":
            body["url"] = "hdfs://127.0.0.1:1"
        (var / "endpoints" / f"{name}.json").write_text(json.dumps(body))
    down = batch(names, "views", var=var)
    assert down.returncode == 1
    assert "HDFS (NameNode) is not reachable" in down.stderr and "bin/stockafolio run" in down.stderr
