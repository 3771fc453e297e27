"""Integration tests talk to the real local stack that bin/stockafolio test started."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from stack.cli import LOCAL_REPLICATION
from stockafolio import cql, migrations
from stockafolio.settings import REPO, Endpoints


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)
    # Restarting the whole stack must come after every test that merely uses it.
    items.sort(key=lambda i: i.get_closest_marker("restarts_stack") is not None)


@pytest.fixture(scope="session")
def cassandra_session(endpoints: Endpoints) -> Iterator:
    cluster, session = cql.connect(endpoints.cassandra)
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def spark(endpoints: Endpoints) -> Iterator:
    """One local[2] session for the whole run, configured by the spark role's spark-defaults.conf."""
    os.environ["SPARK_CONF_DIR"] = endpoints.spark.conf_dir
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers (pandas UDFs): this venv
    from pyspark.sql import SparkSession

    session = SparkSession.builder.master(endpoints.spark.master).appName("tests").getOrCreate()
    yield session
    session.stop()


def drop_topics(admin, names: list[str]) -> None:
    """Delete topics and wait for it: an unawaited delete is dropped with the client."""
    for future in admin.delete_topics(list(names)).values():
        future.result(30)


def create_topics(endpoints: Endpoints, names: list[str], partitions: int = 2) -> AdminClient:
    """Create topics and wait until the broker has them; returns the admin client for drop_topics."""
    admin = AdminClient({"bootstrap.servers": endpoints.kafka.bootstrap_servers})
    for future in admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1)
                                       for t in names]).values():
        future.result(30)
    return admin


def migrate_keyspace(session, name: str) -> str:
    """A keyspace with every migration applied, as `run` would leave it."""
    migrations.apply(session, name, migrations.load(REPO / "cassandra" / "migrations"), LOCAL_REPLICATION)
    return name


@pytest.fixture()
def keyspace(cassandra_session, unique: str) -> Iterator[str]:
    """A fresh, migrated keyspace for one test, dropped afterwards."""
    ks = migrate_keyspace(cassandra_session, f"{unique}_ks"[:48])
    yield ks
    cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {ks}")
