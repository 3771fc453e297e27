"""The job's driver-side Kafka outputs fail loudly (so the micro-batch is replayed) when Kafka does not
acknowledge, naming the topic and how to check the stack."""

from __future__ import annotations

import pytest

from stockafolio.errors import StockafolioError
from streaming.publish import Outputs


def test_send_raises_when_kafka_never_acknowledges() -> None:
    outputs = Outputs("127.0.0.1:1", {"message.timeout.ms": "1500", "enable.idempotence": False,
                                      "log_level": "0"})
    expected = r"topic events-x at 127\.0\.0\.1:1 failed: .*stockafolio status"
    with pytest.raises(StockafolioError, match=expected):
        outputs.send("events-x", [("1", '{"user_id": 1}'), ("2", '{"user_id": 2}')])


def test_sending_nothing_is_a_no_op() -> None:
    assert Outputs("127.0.0.1:1").send("events-x", []) == 0
