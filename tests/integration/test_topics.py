"""The pipeline's topics on the real broker: the per-user events topic is log-compacted, also when it
existed before the setting did."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource

from stockafolio import topics
from stockafolio.settings import Endpoints
from tests.integration.conftest import drop_topics


def _policy(admin: AdminClient, name: str) -> str:
    (future,) = admin.describe_configs([ConfigResource("topic", name)]).values()
    return future.result(30)["cleanup.policy"].value


def test_events_topic_is_compacted_and_the_others_are_not(endpoints: Endpoints, unique: str,
                                                          monkeypatch) -> None:
    bootstrap = endpoints.kafka.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    events, plain = f"{unique}-events", f"{unique}-plain"
    monkeypatch.setitem(topics.TOPIC_CONFIGS, events, {"cleanup.policy": "compact"})
    try:
        assert topics.ensure_topics(bootstrap, (events, plain), 2, 1) == [events, plain]
        assert (_policy(admin, events), _policy(admin, plain)) == ("compact", "delete")
        # a topic made before the setting: ensure_topics sets it without recreating the topic
        monkeypatch.setitem(topics.TOPIC_CONFIGS, plain, {"cleanup.policy": "compact"})
        assert topics.ensure_topics(bootstrap, (events, plain), 2, 1) == []
        assert _policy(admin, plain) == "compact"
    finally:
        drop_topics(admin, [events, plain])
    assert topics.TOPIC_CONFIGS[topics.PORTFOLIO_EVENTS] == {"cleanup.policy": "compact"}
