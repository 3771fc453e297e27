"""Integration tests talk to the real local stack that bin/stockafolio test started."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stockafolio import cql
from stockafolio.settings import Endpoints


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
    from pyspark.sql import SparkSession

    session = SparkSession.builder.master(endpoints.spark.master).appName("tests").getOrCreate()
    yield session
    session.stop()


def drop_topics(admin, names: list[str]) -> None:
    """Delete topics and wait for it: an unawaited delete is dropped with the client."""
    for future in admin.delete_topics(list(names)).values():
        future.result(30)
