"""`python -m streaming dead-letters`: decoding letters, the counts per reason code, the report, and the
read to the topic's end against a fake consumer (no Kafka)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from stockafolio.errors import ServiceUnavailable
from streaming import __main__ as streaming_cli
from streaming import dead_letters as dl

T0 = int(datetime(2026, 1, 2, 9, 30, tzinfo=UTC).timestamp() * 1000)


def _value(reason: str, offset: int, raw: str | None = '{"bad": 1}', **more: object) -> bytes:
    return json.dumps({"reason": reason, "topic": "trades", "partition": 3, "offset": offset, "raw": raw,
                       **more}).encode()


def _letters() -> list[dl.Letter]:
    reasons = ["bad_json: Expecting value", "unknown_symbol: 'ZZZ' is not in the universe", "bad_json: x"]
    letters = [dl.decode(_value(r, 100 + i), T0 + i * 1000, i % 2, i) for i, r in enumerate(reasons)]
    letters.append(dl.decode(_value("bad_side: got 'hold'", 200, raw=None), T0 + 9000, 0, 9))
    letters.append(dl.decode(_value("schema_version: expected 1", 300, raw="x" * 100, raw_length=5000,
                                    raw_sha256="ab" * 32), T0 + 5000, 1, 7))
    return letters


def test_the_report_counts_per_reason_code_and_shows_the_latest_newest_first() -> None:
    lines = dl.report(dl.tally(_letters(), keep=3), "trades-dead-letter", None)
    assert lines[:2] == ["trades-dead-letter: 5 dead letters since the topic began", "by reason code:"]
    assert [ln.split() for ln in lines[2:6]] == [
        ["bad_json", "2"], ["unknown_symbol", "1"], ["bad_side", "1"], ["schema_version", "1"]]
    assert lines[6].startswith("latest 3 (newest first")
    latest = lines[7:]
    written = datetime.fromtimestamp((T0 + 9000) / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert latest[0] == f"  {written}  trades p3 @ 200  bad_side: got 'hold'"  # local time
    assert latest[1] == "      raw: (none kept)"
    assert "trades p3 @ 300  schema_version: expected 1" in latest[2]
    assert latest[3] == "      raw (5,000 chars): " + "x" * 100  # truncated by the job: its length is known
    assert latest[4].endswith("trades p3 @ 102  bad_json: x") and latest[5] == '      raw: {"bad": 1}'
    assert len(latest) == 6


def test_long_raw_records_are_clipped_and_control_characters_escaped() -> None:
    letter = dl.decode(_value("bad_json: x", 1, raw="a\nb" + "c" * 200), T0, 0, 0)
    raw_line = dl._letter_lines(letter)[1]
    assert raw_line.startswith("      raw: a\\nb") and raw_line.endswith("...")
    assert len(raw_line.split("raw: ", 1)[1]) == dl.RAW_CHARS


def test_records_that_are_not_letters_still_count() -> None:
    assert dl.decode(b"\xff garbage", T0, 0, 0).reason.startswith("not_a_dead_letter: not JSON")
    assert dl.decode(b"[1, 2]", T0, 0, 0).reason == "not_a_dead_letter: a JSON list"
    assert dl.decode(b"{}", T0, 0, 0).reason == "(no reason)"
    assert dl.code("no colon here") == "no colon here" and dl.code("bad_json: a: b") == "bad_json"


def test_an_empty_window_says_so() -> None:
    assert dl.report(dl.tally([], 10), "dl", None) == ["dl: no dead letters since the topic began"]
    assert dl.report(dl.tally([], 10), "dl", 30) == [
        "dl: no dead letters in the last 30 min; drop --since-minutes to see older ones"]
    assert dl.report(dl.tally(_letters(), 0), "dl", None)[-1].split() == ["schema_version", "1"]


class FakeConsumer:
    """Partition 0 holds offsets 5..7 (the first 5 deleted by retention), partition 1 is empty."""

    def __init__(self, topic_error: object = None, down: bool = False) -> None:
        self.topic_error, self.down, self.assigned = topic_error, down, []
        self.records = [_Msg(0, offset, _value("bad_json: x", offset)) for offset in (5, 6, 7)]

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        meta = SimpleNamespace(partitions={0: None, 1: None}, error=self.topic_error)
        return SimpleNamespace(topics={topic: meta})

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return (5, 8) if tp.partition == 0 else (0, 0)

    def offsets_for_times(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 7 if tp.partition == 0 else -1) for tp in tps]

    def close(self) -> None:
        pass

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = [(tp.partition, tp.offset) for tp in tps]

    def consume(self, n: int, timeout: float) -> list[_Msg]:
        start = dict(self.assigned).get(0, 99)
        batch, self.records = [m for m in self.records if m.offset() >= start], []
        return batch


class _Msg:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._p, self._o, self._v = partition, offset, value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v

    def timestamp(self) -> tuple[int, int]:
        return (1, T0 + self._o)


def test_reads_from_the_first_offset_to_the_end_without_waiting_for_more() -> None:
    c = FakeConsumer()
    ranges = dl.start_offsets(c, "k:9092", "dl", None, timeout_s=1)  # type: ignore[arg-type]
    assert ranges == {0: (5, 8)}  # the empty partition is not read at all
    complete = [True]
    letters = list(dl.read(c, "dl", ranges, complete))  # type: ignore[arg-type]
    assert [letter.offset for letter in letters] == [5, 6, 7] and complete == [True]
    assert c.assigned == [(0, 5)]


def test_since_starts_at_kafkas_offset_for_that_time() -> None:
    c = FakeConsumer()
    assert dl.start_offsets(c, "k:9092", "dl", T0, timeout_s=1) == {0: (7, 8)}  # type: ignore[arg-type]


def test_missing_topic_and_kafka_down_are_clear_errors(monkeypatch, capsys) -> None:
    with pytest.raises(dl.MissingTopic):
        dl.start_offsets(FakeConsumer(topic_error="UNKNOWN_TOPIC"), "k:9092", "dl", None, 1)  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable, match=r"Kafka is not reachable: k:9092: .*bin/stockafolio run"):
        dl.start_offsets(FakeConsumer(down=True), "k:9092", "dl", None, 1)  # type: ignore[arg-type]

    endpoints = SimpleNamespace(kafka=SimpleNamespace(bootstrap_servers="k:9092", auth=None))
    monkeypatch.setattr(dl.Endpoints, "load", lambda _var: endpoints)
    monkeypatch.setattr(dl, "consumer", lambda _kafka: FakeConsumer(topic_error="UNKNOWN_TOPIC"))
    assert streaming_cli.main(["dead-letters"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("streaming dead-letters: the topic trades-dead-letter does not exist on Kafka")
    assert "bin/stockafolio run" in err


def test_flags() -> None:
    parser = streaming_cli._parser()
    args = parser.parse_args(["dead-letters", "--latest", "3", "--since-minutes", "2.5"])
    assert (args.latest, args.since_minutes, args.topic) == (3, 2.5, "trades-dead-letter")
    for bad in (["--latest", "-1"], ["--since-minutes", "0"], ["--since-minutes", "x"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["dead-letters", *bad])
