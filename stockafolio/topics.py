"""The Kafka topics of the pipeline, named once. `bin/stockafolio run` creates them (like the
Cassandra schema) so that no component depends on broker-side auto-creation."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from stockafolio.errors import ServiceUnavailable

TRADES = "trades"                 # key user_id: per-user order
PRICES = "prices"                 # key symbol
TRADES_DEAD_LETTER = "trades-dead-letter"  # malformed trades, with the reason and the original bytes
PORTFOLIO_EVENTS = "portfolio-events"      # per-user updates for the web tier

PIPELINE_TOPICS: tuple[str, ...] = (TRADES, PRICES, TRADES_DEAD_LETTER, PORTFOLIO_EVENTS)
# Per-topic settings at creation. The events topic is log-compacted: it is keyed by user, and only a
# user's latest event matters to the web tier, so Kafka may drop the older ones.
# The dead-letter topic takes records of at most 64 KiB: a dead letter is bounded to 16 KiB
# (streaming.publish.dead_letter), so one that is larger is a bug, refused by the broker, not stored.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    PORTFOLIO_EVENTS: {"cleanup.policy": "compact"},
    TRADES_DEAD_LETTER: {"max.message.bytes": "65536", "retention.ms": str(14 * 24 * 3600 * 1000)},
}


def ensure_topics(bootstrap: str, names: tuple[str, ...], partitions: int, replication: int) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise ServiceUnavailable("Kafka", f"{bootstrap}: {exc}") from None
    missing = [n for n in names if n not in existing]
    if missing:
        futures = admin.create_topics([NewTopic(n, partitions, replication, config=TOPIC_CONFIGS.get(n, {}))
                                       for n in missing])
        for future in futures.values():
            future.result(30)
    _configure(admin, [n for n in names if n in existing and n in TOPIC_CONFIGS])
    return missing


def _configure(admin: AdminClient, names: list[str]) -> None:
    """Set TOPIC_CONFIGS on topics made before the setting existed (idempotent, other settings kept)."""
    if not names:
        return
    resources = [ConfigResource("topic", n, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        for key, value in TOPIC_CONFIGS[n].items()]) for n in names]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(30)
