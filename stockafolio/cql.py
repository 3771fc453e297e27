"""One Cassandra driver session per process, created on demand (after any fork)."""

from __future__ import annotations

import logging
import re

from cassandra import ProtocolVersion
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import DCAwareRoundRobinPolicy
from stockafolio.errors import ConfigError, ServiceUnavailable
from stockafolio.settings import CassandraEndpoint

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def check_identifier(name: str) -> str:
    """Keyspace names cannot be bound as parameters in DDL, so they are validated instead."""
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"keyspace name must match {_IDENTIFIER.pattern}, got {name!r}")
    return name


def connect(endpoint: CassandraEndpoint, timeout_s: float = 10.0,
            connection_class: type | None = None) -> tuple[Cluster, Session]:
    """Open a cluster connection; the caller keeps the pair for the life of the process.
    `connection_class`: the driver's reactor, e.g. its gevent one under a gevent server."""
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=endpoint.local_dc),
                               request_timeout=timeout_s)
    login = ({"auth_provider": PlainTextAuthProvider(username=endpoint.username, password=endpoint.password)}
             if endpoint.username else {})
    cluster = Cluster(
        list(endpoint.contact_points),
        **login,
        port=endpoint.port,
        protocol_version=ProtocolVersion.V5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout_s,
        control_connection_timeout=timeout_s,
        **({"connection_class": connection_class} if connection_class else {}),
    )
    try:
        return cluster, cluster.connect()
    except NoHostAvailable as exc:
        cluster.shutdown()
        where = f"{','.join(endpoint.contact_points)}:{endpoint.port}"
        raise ServiceUnavailable("Cassandra", f"no host answered at {where} ({exc})") from None
