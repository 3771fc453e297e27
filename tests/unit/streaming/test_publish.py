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


def test_a_dead_letter_is_bounded_whatever_the_record() -> None:
    import hashlib

    import orjson

    from streaming.publish import DEAD_LETTER_MAX_BYTES, RAW_PREVIEW_CHARS, dead_letter

    huge = bytes(range(32)) * 31_250  # 1 MB of control bytes: 6 bytes each once escaped in JSON
    letter = dead_letter("bad_json: " + "x" * 10_000, "trades", 3, 42, huge)
    assert len(letter) <= DEAD_LETTER_MAX_BYTES
    decoded = orjson.loads(letter)
    assert decoded["raw_length"] == len(huge) and decoded["raw_sha256"] == hashlib.sha256(huge).hexdigest()
    assert decoded["raw_truncated"] and len(decoded["raw"]) <= RAW_PREVIEW_CHARS
    assert len(decoded["reason"]) == 500 and (decoded["partition"], decoded["offset"]) == (3, 42)
    small = orjson.loads(dead_letter("bad_side: got 'hold'", "trades", 0, 1, b'{"side":"hold"}'))
    assert small["raw"] == '{"side":"hold"}' and not small["raw_truncated"] and small["raw_length"] == 15
    empty = orjson.loads(dead_letter("bad_json: empty value", "trades", 0, 2, None))
    assert empty["raw"] is None and empty["raw_length"] is None and not empty["raw_truncated"]
