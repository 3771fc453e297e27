"""Everything the web app needs, built once at the entry point (`python -m webapp`) or by a test and
passed to `create_app`; nothing inside the app reads the environment."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stockafolio import topics
from stockafolio.settings import CassandraEndpoint, KafkaAuth

AsyncMode = Literal["threading", "gevent"]


@dataclass(frozen=True)
class RateLimits:
    """Failed logins allowed per `window_s` (a sliding window, counted in Cassandra, so one limit
    holds across every process and web host; webapp.login_limit)."""

    login: int = 10          # per client address + user name
    login_ip: int = 60       # per client address, whatever the user names tried
    window_s: int = 60


@dataclass(frozen=True)
class SocketLimits:
    """Open Socket.IO sockets per process. Each one holds a worker thread (simple-websocket), so the
    total stays below the thread pool, leaving threads for HTTP requests."""

    per_account: int = 5      # every session (tab, device) of one account together
    per_address: int = 20     # one client address (after the trusted proxy hops)
    total: int = 40           # this process (python -m webapp: threads minus a reserve for HTTP)


@dataclass(frozen=True)
class WebSettings:
    keyspace: str = "stockafolio"
    cassandra: CassandraEndpoint = field(
        default_factory=lambda: CassandraEndpoint(("127.0.0.1",), 9042, "datacenter1"))
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_auth: KafkaAuth | None = None  # the cluster's SASL login (None: the local broker)
    events_topic: str = topics.PORTFOLIO_EVENTS
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    # Origins a Socket.IO connection may come from (the dashboard's own origin).
    allowed_origins: tuple[str, ...] = ("http://127.0.0.1:8000", "http://localhost:8000")
    vendor_dir: Path | None = None        # npm assets (socket.io client, charts), served read-only
    secure_cookies: bool = False          # True behind HTTPS (the ALB on the cluster)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    max_content_length: int = 64 * 1024   # bytes; larger bodies get 413
    cassandra_timeout_s: float = 3.0
    cassandra_retry_s: float = 5.0        # after a failed connect, wait this long before trying again
    prices_ttl_s: float = 1.0             # how stale the per-process copy of Q4 may get
    shared_ttl_s: float = 1.0             # the firm's views (Q5-Q10), the same for every analyst
    user_cache_users: int = 20_000        # users whose Q1-Q3 rows a process keeps until their next
    user_cache_ttl_s: float = 10.0        # portfolio event, at most this long (0 users: no cache)
    session_check_ttl_s: float = 1.0      # how long a process trusts an account's session epoch
    trusted_proxies: int = 0              # X-Forwarded-For hops to trust for the client address
    sockets: SocketLimits = field(default_factory=SocketLimits)
    async_mode: AsyncMode = "threading"
    live_tasks: bool = True               # start the Kafka/Cassandra push tasks (off in unit tests)
    testing: bool = False
