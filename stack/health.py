"""Health checks, one per kind of launch spec `health` block. Each returns None when healthy, or
a short reason when not; none raises."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import requests

Check = Callable[[dict[str, Any]], "str | None"]


def tcp(h: dict[str, Any]) -> str | None:
    try:
        with socket.create_connection((h["host"], int(h["port"])), timeout=2):
            return None
    except OSError as exc:
        return f"tcp {h['host']}:{h['port']}: {exc.strerror or exc}"


def http(h: dict[str, Any]) -> str | None:
    try:
        got = requests.get(h["url"], timeout=3).status_code
    except requests.RequestException as exc:
        return f"GET {h['url']}: {type(exc).__name__}"
    want = int(h.get("expect_status", 200))
    return None if got == want else f"GET {h['url']}: status {got}, expected {want}"


def kafka(h: dict[str, Any]) -> str | None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": h["bootstrap"], "log_level": 0})
    try:
        meta = admin.list_topics(timeout=3)
    except Exception as exc:  # KafkaException; any failure means "not healthy yet"
        return f"kafka {h['bootstrap']}: {exc}"
    return None if meta.brokers else f"kafka {h['bootstrap']}: no broker in metadata"


def cassandra(h: dict[str, Any]) -> str | None:
    down = tcp(h)
    if down:
        return down
    from stockafolio.cql import connect
    from stockafolio.errors import ServiceUnavailable
    from stockafolio.settings import CassandraEndpoint

    try:
        cluster, session = connect(CassandraEndpoint((h["host"],), int(h["port"]), "datacenter1"), 5)
    except ServiceUnavailable as exc:
        return str(exc)
    try:
        session.execute("SELECT release_version FROM system.local", timeout=5)
        return None
    except Exception as exc:  # any driver error: not healthy yet
        return f"cassandra query failed: {exc}"
    finally:
        cluster.shutdown()


def hdfs(h: dict[str, Any]) -> str | None:
    """NameNode answering JMX; with min_datanodes > 0 also enough live DataNodes and safe mode off."""
    base = h["namenode_http"].rstrip("/")
    try:
        state = _jmx(base, "Hadoop:service=NameNode,name=FSNamesystemState")
        info = _jmx(base, "Hadoop:service=NameNode,name=NameNodeInfo")
    except (requests.RequestException, LookupError, ValueError) as exc:
        return f"namenode {base}: {type(exc).__name__} {exc}"
    want = int(h.get("min_datanodes", 0))
    if want == 0:
        return None
    if state.get("NumLiveDataNodes", 0) < want:
        return f"{state.get('NumLiveDataNodes', 0)} live datanodes, waiting for {want}"
    return f"namenode in safe mode: {info['Safemode']}" if info.get("Safemode") else None


def _jmx(base: str, query: str) -> dict[str, Any]:
    beans = requests.get(f"{base}/jmx", params={"qry": query}, timeout=3).json()["beans"]
    return beans[0]


def running(h: dict[str, Any]) -> str | None:
    """A process with no port: healthy while alive (the stack manager checks that it is, for at
    least `settle_s` seconds after start, and, for a supervised one, that it was not restarted)."""
    return None


CHECKS: dict[str, Check] = {"tcp": tcp, "http": http, "kafka": kafka, "cassandra": cassandra,
                            "hdfs": hdfs, "process": running}


def check(health: dict[str, Any]) -> str | None:
    kind = health.get("kind")
    if kind not in CHECKS:
        return f"unknown health check kind {kind!r}"
    return CHECKS[kind](health)
