"""Stop the whole stack and start it again: every service comes back on the same data."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from hdfs_native import Client

from stack import process, services
from stockafolio import cql
from stockafolio.settings import Endpoints
from tests.integration.conftest import drop_topics
from tests.integration.test_storage import s3_client


@pytest.mark.restarts_stack
def test_data_survives_stop_and_start(stack_config, endpoints: Endpoints, run_id: str) -> None:
    name, bucket = f"{run_id}_restart", f"{run_id}-restart"
    _write_everywhere(endpoints, name, bucket)

    services.stop_all(stack_config, out=lambda _: None)
    assert all(process.running_pid(stack_config.run_dir, n) is None for n in services.ORDER)
    services.start_all(stack_config, out=lambda _: None)
    assert services.all_healthy(stack_config)

    assert _read_everywhere(endpoints, name, bucket) == {
        "kafka": b"still here", "cassandra": 7, "hdfs": b"still here", "s3": b"still here"}


def _write_everywhere(e: Endpoints, name: str, bucket: str) -> None:
    admin = AdminClient({"bootstrap.servers": e.kafka.bootstrap_servers})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    producer = Producer({"bootstrap.servers": e.kafka.bootstrap_servers, "enable.idempotence": True})
    producer.produce(name, key=b"k", value=b"still here")
    assert producer.flush(30) == 0
    cluster, session = cql.connect(e.cassandra)
    session.execute(f"CREATE KEYSPACE {name} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute(f"CREATE TABLE {name}.t (id int PRIMARY KEY, v int)")
    session.execute(session.prepare(f"INSERT INTO {name}.t (id, v) VALUES (?, ?)"), (1, 7))  # noqa: S608
    cluster.shutdown()
    with Client(e.hdfs.url).create(f"/tests/{name}") as f:
        f.write(b"still here")
    s3_client(e).create_bucket(Bucket=bucket)
    s3_client(e).put_object(Bucket=bucket, Key="k", Body=b"still here")


def _read_everywhere(e: Endpoints, name: str, bucket: str) -> dict[str, object]:
    consumer = Consumer({"bootstrap.servers": e.kafka.bootstrap_servers, "group.id": name,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([name])
    msgs = [m for _ in range(30) for m in consumer.consume(10, timeout=1.0) if not m.error()][:1]
    consumer.close()
    cluster, session = cql.connect(e.cassandra)
    row = session.execute(session.prepare(f"SELECT v FROM {name}.t WHERE id = ?"), (1,)).one()  # noqa: S608
    session.execute(f"DROP KEYSPACE {name}")
    cluster.shutdown()
    hdfs = Client(e.hdfs.url)
    with hdfs.read(f"/tests/{name}") as f:
        hdfs_value = f.read()
    hdfs.delete(f"/tests/{name}")
    s3 = s3_client(e)
    s3_value = s3.get_object(Bucket=bucket, Key="k")["Body"].read()
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    drop_topics(AdminClient({"bootstrap.servers": e.kafka.bootstrap_servers}), [name])
    return {"kafka": msgs[0].value() if msgs else None, "cassandra": row.v if row else None,
            "hdfs": hdfs_value, "s3": s3_value}
