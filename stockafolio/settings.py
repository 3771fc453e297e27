"""Where the services are. Entry points build an `Endpoints` once (from the files the Ansible roles
render under `<var>/endpoints/`) and pass it inward; nothing deeper reads files or the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stockafolio.errors import ConfigError


@dataclass(frozen=True)
class KafkaEndpoint:
    bootstrap_servers: str


@dataclass(frozen=True)
class CassandraEndpoint:
    contact_points: tuple[str, ...]
    port: int
    local_dc: str


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
    def load(cls, var_dir: Path) -> Endpoints:
        """Read `<var_dir>/endpoints/*.json`, as rendered by `ansible/local.yml`."""
        cass = _read(var_dir, "cassandra")
        return cls(
            kafka=KafkaEndpoint(**_read(var_dir, "kafka")),
            cassandra=CassandraEndpoint(
                contact_points=tuple(cass["contact_points"]),
                port=int(cass["port"]),
                local_dc=cass["local_dc"],
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


def _read(var_dir: Path, name: str) -> dict:
    path = var_dir / "endpoints" / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; provision the stack with: bin/stockafolio run") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
