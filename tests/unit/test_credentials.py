"""Cluster logins reach every client: the settings read them from the environment the units set, the
Kafka, Spark-Kafka, Cassandra and S3 clients use them, and no password shows in a repr. Locally
(no variables) nothing changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.kafka_sink import KafkaSettings
from stockafolio import cql, s3
from stockafolio.errors import ConfigError
from stockafolio.settings import (
    CassandraEndpoint,
    Endpoints,
    KafkaAuth,
    S3Endpoint,
    kafka_client_config,
    spark_kafka_options,
)

LOGINS = {"STOCKAFOLIO_KAFKA_SASL_USERNAME": "streaming", "STOCKAFOLIO_KAFKA_SASL_PASSWORD": 'p"w\\1',
          "STOCKAFOLIO_CASSANDRA_USERNAME": "stockafolio_stream",
          "STOCKAFOLIO_CASSANDRA_PASSWORD": "c-secret"}


@pytest.fixture()
def var(tmp_path: Path) -> Path:
    files = {"kafka": {"bootstrap_servers": "b1:9092,b2:9092"},
             "cassandra": {"contact_points": ["c1", "c2"], "port": 9042, "local_dc": "dc1"},
             "hdfs": {"url": "hdfs://nn:8020", "namenode_http": "http://nn:9870"},
             "s3": {"endpoint_url": "", "region": "us-east-1", "access_key": "", "secret_key": "",
                    "archive_bucket": "archive"},
             "spark": {"conf_dir": "/conf", "master": "spark://m:7077"}}
    (tmp_path / "endpoints").mkdir()
    for name, content in files.items():
        (tmp_path / "endpoints" / f"{name}.json").write_text(json.dumps(content))
    return tmp_path


def test_without_variables_there_is_no_login(var: Path) -> None:
    endpoints = Endpoints.load(var, env={})
    assert endpoints.kafka.auth is None and endpoints.cassandra.username is None
    assert kafka_client_config(None) == {} and spark_kafka_options(None) == {}
    assert KafkaSettings("b:9092").producer_config()["bootstrap.servers"] == "b:9092"
    assert "security.protocol" not in KafkaSettings("b:9092").producer_config()


def test_the_units_variables_become_logins_and_never_show(var: Path) -> None:
    endpoints = Endpoints.load(var, env=LOGINS)
    auth = endpoints.kafka.auth
    assert auth == KafkaAuth("streaming", 'p"w\\1')
    assert kafka_client_config(auth) == {"security.protocol": "SASL_PLAINTEXT",
                                         "sasl.mechanism": "SCRAM-SHA-512",
                                         "sasl.username": "streaming", "sasl.password": 'p"w\\1'}
    assert (endpoints.cassandra.username, endpoints.cassandra.password) == ("stockafolio_stream", "c-secret")
    shown = repr(endpoints)
    assert "c-secret" not in shown and 'p"w' not in shown and "streaming" in shown


def test_spark_kafka_options_quote_the_password_for_the_jaas_parser() -> None:
    options = spark_kafka_options(KafkaAuth("web", 'a"b\\c'))
    assert options["kafka.security.protocol"] == "SASL_PLAINTEXT"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule '
                                                 'required username="web" password="a\\"b\\\\c";')


def test_a_user_without_a_password_is_named(var: Path) -> None:
    with pytest.raises(ConfigError, match="STOCKAFOLIO_CASSANDRA_PASSWORD is empty"):
        Endpoints.load(var, env={"STOCKAFOLIO_CASSANDRA_USERNAME": "web"})


def test_generator_clients_log_in() -> None:
    settings = KafkaSettings("b:9092", auth=KafkaAuth("generator", "gen-secret"))
    for config in (settings.client_config(), settings.producer_config()):
        assert config["sasl.username"] == "generator" and config["security.protocol"] == "SASL_PLAINTEXT"
    assert "gen-secret" not in repr(settings)


def test_cassandra_sessions_log_in_when_the_endpoint_has_a_user(monkeypatch) -> None:
    made = {}

    class FakeCluster:  # stands in for the driver's Cluster: records what the session is built with
        def __init__(self, hosts, **kwargs) -> None:
            made.update(kwargs)

        def connect(self) -> str:
            return "session"

    monkeypatch.setattr(cql, "Cluster", FakeCluster)
    cql.connect(CassandraEndpoint(("c1",), 9042, "dc1", "stockafolio_web", "w-secret"))
    assert made["auth_provider"].username == "stockafolio_web"
    assert made["auth_provider"].password == "w-secret"
    made.clear()
    cql.connect(CassandraEndpoint(("c1",), 9042, "dc1"))
    assert "auth_provider" not in made


def test_s3_without_keys_uses_the_default_chain(monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(s3.boto3, "client", lambda service, **kwargs: seen.update(kwargs))
    s3.client(S3Endpoint("", "eu-west-1", "", "", "archive"))
    assert "aws_access_key_id" not in seen and seen["endpoint_url"] is None
    s3.client(S3Endpoint("http://127.0.0.1:9000", "us-east-1", "AK", "SK", "archive"))
    assert seen["aws_access_key_id"] == "AK" and seen["endpoint_url"] == "http://127.0.0.1:9000"


def test_spark_jobs_give_the_connector_the_same_login() -> None:
    assert CassandraEndpoint(("c1",), 9042, "dc1").spark_conf() == {}
    login = CassandraEndpoint(("c1",), 9042, "dc1", "stockafolio_batch", "b-secret").spark_conf()
    assert login == {"spark.cassandra.auth.username": "stockafolio_batch",
                     "spark.cassandra.auth.password": "b-secret"}
