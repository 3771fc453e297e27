"""Spark (pyspark local[2]) with the connector jars the spark role resolved: s3a://, hdfs://,
and a Structured Streaming job from Kafka into Cassandra through the Cassandra connector."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from stockafolio.settings import Endpoints
from tests.integration.conftest import drop_topics
from tests.integration.test_storage import s3_client

ROWS = [(i, f"user-{i % 7}", float(i) * 1.5) for i in range(500)]


def _round_trip(spark, path: str) -> list[tuple]:
    df = spark.createDataFrame(ROWS, "id INT, user STRING, amount DOUBLE")
    df.write.mode("overwrite").partitionBy("user").parquet(path)
    back = spark.read.parquet(path).select("id", "user", "amount").orderBy("id")
    return [tuple(r) for r in back.collect()]


def test_spark_parquet_on_s3a(spark, endpoints: Endpoints, unique: str) -> None:
    bucket = unique.replace("_", "-")
    s3 = s3_client(endpoints)
    s3.create_bucket(Bucket=bucket)
    try:
        assert _round_trip(spark, f"s3a://{bucket}/table") == ROWS
    finally:
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)


def test_spark_parquet_on_hdfs(spark, endpoints: Endpoints, unique: str) -> None:
    path = f"{endpoints.hdfs.url}/tests/{unique}/table"
    assert _round_trip(spark, path) == ROWS
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    hpath.getFileSystem(spark._jsc.hadoopConfiguration()).delete(hpath.getParent(), True)


@pytest.fixture()
def kafka_topic(endpoints: Endpoints, unique: str):
    admin = AdminClient({"bootstrap.servers": endpoints.kafka.bootstrap_servers})
    admin.create_topics([NewTopic(unique, num_partitions=2, replication_factor=1)])[unique].result(30)
    yield unique
    drop_topics(admin, [unique])


def test_streaming_kafka_to_cassandra(spark, endpoints: Endpoints, cassandra_session, kafka_topic,
                                      run_id: str, tmp_path) -> None:
    ks = f"{run_id}_spark"
    cassandra_session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    cassandra_session.execute(f"CREATE TABLE IF NOT EXISTS {ks}.trades_by_user "
                              "(user_id text, trade_id bigint, quantity bigint, "
                              "PRIMARY KEY (user_id, trade_id))")
    producer = Producer({"bootstrap.servers": endpoints.kafka.bootstrap_servers,
                         "enable.idempotence": True})
    for i in range(300):
        trade = {"user_id": f"u{i % 5}", "trade_id": i, "quantity": i * 10}
        producer.produce(kafka_topic, key=trade["user_id"], value=json.dumps(trade))
    assert producer.flush(30) == 0

    from pyspark.sql import functions as F

    raw = (spark.readStream.format("kafka")
           .option("kafka.bootstrap.servers", endpoints.kafka.bootstrap_servers)
           .option("subscribe", kafka_topic).option("startingOffsets", "earliest").load())
    schema = "user_id STRING, trade_id BIGINT, quantity BIGINT"
    trades = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("t")).select("t.*")
    query = (trades.writeStream.outputMode("append")
             .format("org.apache.spark.sql.cassandra")
             .option("keyspace", ks).option("table", "trades_by_user")
             .option("checkpointLocation", str(tmp_path / "checkpoint"))
             .trigger(availableNow=True).start())
    query.awaitTermination(180)
    try:
        assert query.exception() is None
        rows = cassandra_session.execute(f"SELECT * FROM {ks}.trades_by_user")  # noqa: S608
        got = {(r.user_id, r.trade_id, r.quantity) for r in rows}
        assert got == {(f"u{i % 5}", i, i * 10) for i in range(300)}
    finally:
        cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {ks}")
