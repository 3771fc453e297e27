"""Where the services are and how to log in. Entry points build an `Endpoints` once (from the files
the Ansible roles render under `<var>/endpoints/`, and the credentials the cluster's units put in the
process environment) and pass it inward; nothing deeper reads files or the environment.

Credentials (cluster only; absent locally, where the services run without authentication):
STOCKAFOLIO_KAFKA_SASL_USERNAME / _PASSWORD (SCRAM-SHA-512 over SASL_PLAINTEXT) and
STOCKAFOLIO_CASSANDRA_USERNAME / _PASSWORD (PasswordAuthenticator). Passwords never appear in a repr."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stockafolio.errors import ConfigError


@dataclass(frozen=True)
class KafkaAuth:
    """A SASL/SCRAM-SHA-512 login (the cluster's brokers take nothing else from clients)."""

    username: str
    password: str = field(repr=False)
    mechanism: str = "SCRAM-SHA-512"
    protocol: str = "SASL_PLAINTEXT"

    def client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) settings."""
        return {"security.protocol": self.protocol, "sasl.mechanism": self.mechanism,
                "sasl.username": self.username, "sasl.password": self.password}

    def spark_options(self) -> dict[str, str]:
        """Spark Kafka source/sink options (the Java client: a JAAS line with quoted values)."""
        jaas = (f"org.apache.kafka.common.security.scram.ScramLoginModule required "
                f"username={_jaas_quote(self.username)} password={_jaas_quote(self.password)};")
        return {"kafka.security.protocol": self.protocol, "kafka.sasl.mechanism": self.mechanism,
                "kafka.sasl.jaas.config": jaas}


def _jaas_quote(value: str) -> str:
    """A JAAS option value in double quotes (Kafka parses it with Java's StreamTokenizer: backslash
    escapes a quote or a backslash)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kafka_client_config(auth: KafkaAuth | None) -> dict[str, str]:
    """The librdkafka settings a client adds to log in ({} without authentication)."""
    return auth.client_config() if auth else {}


def spark_kafka_options(auth: KafkaAuth | None) -> dict[str, str]:
    """The Spark Kafka source/sink options to log in ({} without authentication)."""
    return auth.spark_options() if auth else {}


@dataclass(frozen=True)
class KafkaEndpoint:
    bootstrap_servers: str
    auth: KafkaAuth | None = None


@dataclass(frozen=True)
class CassandraEndpoint:
    contact_points: tuple[str, ...]
    port: int
    local_dc: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def spark_conf(self) -> dict[str, str]:
        """The Spark Cassandra connector's login ({} without authentication)."""
        if not self.username:
            return {}
        return {"spark.cassandra.auth.username": self.username,
                "spark.cassandra.auth.password": self.password or ""}


@dataclass(frozen=True)
class HdfsEndpoint:
    url: str
    namenode_http: str


@dataclass(frozen=True)
class S3Endpoint:
    endpoint_url: str
    region: str
    access_key: str
    secret_key: str
    archive_bucket: str

    def __repr__(self) -> str:  # keep the secret out of logs and test output
        return f"S3Endpoint(endpoint_url={self.endpoint_url!r}, bucket={self.archive_bucket!r})"


@dataclass(frozen=True)
class SparkEndpoint:
    conf_dir: str
    master: str


@dataclass(frozen=True)
class Endpoints:
    kafka: KafkaEndpoint
    cassandra: CassandraEndpoint
    hdfs: HdfsEndpoint
    s3: S3Endpoint
    spark: SparkEndpoint

    @classmethod
    def load(cls, var_dir: Path, env: Mapping[str, str] = os.environ) -> Endpoints:
        """Read `<var_dir>/endpoints/*.json`, as rendered by `ansible/local.yml` (or the cluster play),
        and the credentials in `env`."""
        cass = _read(var_dir, "cassandra")
        kafka_user, cassandra_user = _login(env, "KAFKA_SASL"), _login(env, "CASSANDRA")
        return cls(
            kafka=KafkaEndpoint(**_read(var_dir, "kafka"),
                                auth=KafkaAuth(*kafka_user) if kafka_user else None),
            cassandra=CassandraEndpoint(
                contact_points=tuple(cass["contact_points"]),
                port=int(cass["port"]),
                local_dc=cass["local_dc"],
                **({"username": cassandra_user[0], "password": cassandra_user[1]} if cassandra_user else {}),
            ),
            hdfs=HdfsEndpoint(**_read(var_dir, "hdfs")),
            s3=S3Endpoint(**_read(var_dir, "s3")),
            spark=SparkEndpoint(**_read(var_dir, "spark")),
        )


REPO = Path(__file__).resolve().parent.parent


def default_var_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The local stack's folder (configs, data, endpoint files): $STOCKAFOLIO_VAR, else var/ in
    the clone. For entry points only; everything deeper receives a path or an `Endpoints`."""
    return Path(env.get("STOCKAFOLIO_VAR") or REPO / "var").resolve()


def default_keyspace(env: Mapping[str, str] = os.environ) -> str:
    """The Cassandra keyspace of the local stack: $STOCKAFOLIO_KEYSPACE, else stockafolio."""
    return env.get("STOCKAFOLIO_KEYSPACE", "stockafolio")


def _login(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(user, password) from STOCKAFOLIO_<name>_USERNAME / _PASSWORD; None when the user is unset; a
    user without a password is a configuration error, named."""
    user, password = env.get(f"STOCKAFOLIO_{name}_USERNAME"), env.get(f"STOCKAFOLIO_{name}_PASSWORD")
    if not user:
        return None
    if not password:
        raise ConfigError(f"STOCKAFOLIO_{name}_USERNAME is set but STOCKAFOLIO_{name}_PASSWORD is empty")
    return user, password


def _read(var_dir: Path, name: str) -> dict:
    path = var_dir / "endpoints" / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; provision the stack with: bin/stockafolio run") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
