"""`python -m streaming dead-letters [--latest N] [--since-minutes M]`: what the streaming job refused.

Reads the dead-letter topic (`trades-dead-letter`) from its beginning, or from M minutes ago (Kafka's
`offsets_for_times`), to its current end, and prints the count per reason code (the text before the
first ':' of a letter's `reason`) and the latest N letters: when each was written, where its original
record was (topic, partition, offset), the reason and the start of the raw record. Read-only and
without side effects on Kafka: partitions are assigned (no subscription, no consumer group joins) under
a group id of its own, and no offset is committed.

A dead letter is the JSON object the job writes (streaming/job.py): at least `reason`, `topic`,
`partition`, `offset` and `raw` (the record's text, possibly null or truncated; newer letters also
carry `raw_length` and `raw_sha256`).
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from stockafolio import topics
from stockafolio.argtypes import non_negative_int
from stockafolio.errors import ServiceUnavailable, StockafolioError
from stockafolio.settings import Endpoints, KafkaEndpoint, default_var_dir, kafka_client_config

RAW_CHARS = 100      # of each latest letter's raw record shown
REASON_CHARS = 120
IDLE_TIMEOUT_S = 10.0  # no record for this long before the end offsets: give up, say so


class MissingTopic(StockafolioError):
    """The dead-letter topic does not exist on the broker."""


@dataclass(frozen=True, order=True)
class Letter:
    """One dead letter as read back; ordered by when Kafka took it (then where it is in the topic)."""

    written_ms: int              # the dead letter's Kafka timestamp (0 if none)
    partition: int               # of the dead letter itself
    offset: int
    reason: str = field(compare=False)
    source: str = field(compare=False)        # where the original record was: "trades p3 @ 1234"
    raw: str | None = field(compare=False)
    raw_length: int | None = field(compare=False)


def code(reason: str) -> str:
    """The reason code: the text before the first ':' (the whole reason if it has none)."""
    return reason.split(":", 1)[0].strip() or "(empty)"


def decode(value: bytes | None, written_ms: int, partition: int, offset: int) -> Letter:
    """A Kafka record of the dead-letter topic -> `Letter`; a record that is not a letter still
    counts, under the reason `not_a_dead_letter`."""
    try:
        obj: Any = json.loads(value or b"")
    except ValueError as exc:
        obj = {"reason": f"not_a_dead_letter: not JSON ({exc})",
               "raw": (value or b"").decode(errors="replace")}
    if not isinstance(obj, dict):
        obj = {"reason": f"not_a_dead_letter: a JSON {type(obj).__name__}", "raw": json.dumps(obj)}
    raw, length = obj.get("raw"), obj.get("raw_length")
    return Letter(written_ms, partition, offset, reason=str(obj.get("reason") or "(no reason)"),
                  source=f"{obj.get('topic', '?')} p{obj.get('partition', '?')} @ {obj.get('offset', '?')}",
                  raw=None if raw is None else str(raw),
                  raw_length=length if isinstance(length, int) else None)


@dataclass
class Tally:
    """Counts per reason code and the latest `keep` letters, in constant memory."""

    keep: int
    total: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    _latest: list[Letter] = field(default_factory=list)  # a min-heap of at most `keep`

    def add(self, letter: Letter) -> None:
        self.total += 1
        self.by_code[code(letter.reason)] += 1
        if self.keep == 0:
            return
        if len(self._latest) < self.keep:
            heapq.heappush(self._latest, letter)
        else:
            heapq.heappushpop(self._latest, letter)

    def latest(self) -> list[Letter]:
        """Newest first."""
        return sorted(self._latest, reverse=True)


def tally(letters: Iterable[Letter], keep: int) -> Tally:
    counted = Tally(keep)
    for letter in letters:
        counted.add(letter)
    return counted


def report(counted: Tally, topic: str, since_minutes: float | None, complete: bool = True) -> list[str]:
    """The lines the command prints (pure)."""
    window = f"in the last {since_minutes:g} min" if since_minutes else "since the topic began"
    if counted.total == 0:
        hint = "; drop --since-minutes to see older ones" if since_minutes else ""
        return [f"{topic}: no dead letters {window}{hint}"]
    lines = [f"{topic}: {counted.total:,} dead letters {window}", "by reason code:"]
    width = max(len(c) for c in counted.by_code)
    lines += [f"  {c:<{width}}  {n:>9,}" for c, n in counted.by_code.most_common()]
    latest = counted.latest()
    if latest:
        lines.append(f"latest {len(latest)} (newest first; original record's topic, partition @ offset):")
        for letter in latest:
            lines += _letter_lines(letter)
    if not complete:
        lines.append(f"(stopped reading: no record for {IDLE_TIMEOUT_S:g} s before the topic's end; "
                     "the counts are partial)")
    return lines


def _letter_lines(letter: Letter) -> list[str]:
    when = (datetime.fromtimestamp(letter.written_ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")
            if letter.written_ms > 0 else "(no time)")
    return [f"  {when}  {letter.source}  {_clip(letter.reason, REASON_CHARS)}",
            f"      raw{_length(letter)}: {_raw(letter.raw)}"]


def _length(letter: Letter) -> str:
    return "" if letter.raw_length is None else f" ({letter.raw_length:,} chars)"


def _raw(raw: str | None) -> str:
    if raw is None:
        return "(none kept)"
    return _clip("".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in raw[:RAW_CHARS + 1]), RAW_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --- Kafka -------------------------------------------------------------------------------------

def consumer(kafka: KafkaEndpoint) -> Consumer:
    """A consumer that only reads: a fresh group id, no commits, librdkafka's own logging off."""
    return Consumer({"bootstrap.servers": kafka.bootstrap_servers,
                     "group.id": f"stockafolio-dead-letters-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "enable.partition.eof": True,
                     "auto.offset.reset": "earliest", "log_level": 0,
                     **kafka_client_config(kafka.auth)})


def start_offsets(c: Consumer, bootstrap: str, topic: str, since_ms: int | None,
                  timeout_s: float) -> dict[int, tuple[int, int]]:
    """Partition -> (first offset to read, end offset), only partitions with something to read."""
    try:
        meta = c.list_topics(topic, timeout=timeout_s).topics.get(topic)
    except KafkaException as exc:
        raise _unreachable(bootstrap, exc) from None
    if meta is None or meta.error is not None:
        raise MissingTopic(topic)
    ranges = {}
    for p in sorted(meta.partitions):
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        ranges[p] = (low, high)
    if since_ms is not None:
        found = c.offsets_for_times([TopicPartition(topic, p, since_ms) for p in ranges], timeout=timeout_s)
        ranges = {tp.partition: (tp.offset, ranges[tp.partition][1]) for tp in found if tp.offset >= 0}
    return {p: (start, end) for p, (start, end) in ranges.items() if start < end}


def read(c: Consumer, topic: str, ranges: dict[int, tuple[int, int]],
         complete: list[bool]) -> Iterator[Letter]:
    """Every letter in `ranges`; `complete[0]` turns False if Kafka went quiet before their end."""
    todo = dict(ranges)
    if not todo:
        return
    c.assign([TopicPartition(topic, p, start) for p, (start, _) in todo.items()])
    quiet_since = time.monotonic()
    while todo:
        batch = c.consume(500, timeout=1.0)
        if not batch and time.monotonic() - quiet_since > IDLE_TIMEOUT_S:
            complete[0] = False
            return
        for msg in batch:
            quiet_since = time.monotonic()
            yield from _letter(msg, todo)


def _letter(msg: Message, todo: dict[int, tuple[int, int]]) -> Iterator[Letter]:
    error = msg.error()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            todo.pop(msg.partition(), None)
            return
        raise KafkaException(error)
    p, offset = msg.partition(), msg.offset()
    if p not in todo:
        return
    if offset + 1 >= todo[p][1]:
        todo.pop(p)
    kind, ms = msg.timestamp()
    yield decode(msg.value(), ms if kind else 0, p, offset)


def _unreachable(bootstrap: str, exc: KafkaException) -> ServiceUnavailable:
    error = exc.args[0] if exc.args else None
    detail = error.str() if isinstance(error, KafkaError) else str(exc)
    return ServiceUnavailable("Kafka", f"{bootstrap}: {detail}")


# --- the command -------------------------------------------------------------------------------

def add_parser(commands: Any) -> None:
    cmd = commands.add_parser(
        "dead-letters", help="count the dead letters per reason code and show the latest ones",
        description="Read the dead-letter topic (no consumer group, nothing committed: other readers "
                    "are not affected) and print the count per reason code and the latest letters. "
                    "Kafka comes from the stack's endpoints (STOCKAFOLIO_VAR); start it with "
                    "`bin/stockafolio run`.")
    cmd.add_argument("--latest", type=non_negative_int, default=10, metavar="N",
                     help="how many of the newest letters to show (default: %(default)s)")
    cmd.add_argument("--since-minutes", type=_positive_float, default=None, metavar="M",
                     help="only letters written in the last M minutes (default: all of the topic)")
    cmd.add_argument("--topic", default=topics.TRADES_DEAD_LETTER,
                     help="the dead-letter topic (default: %(default)s)")


def run(args: argparse.Namespace) -> list[str]:
    """The report's lines; raises StockafolioError (Kafka down, topic missing) for the caller to print."""
    kafka = Endpoints.load(default_var_dir()).kafka
    since_ms = None if args.since_minutes is None else int((time.time() - args.since_minutes * 60) * 1000)
    c = consumer(kafka)
    try:
        try:
            ranges = start_offsets(c, kafka.bootstrap_servers, args.topic, since_ms, timeout_s=5)
        except MissingTopic:
            raise StockafolioError(
                f"the topic {args.topic} does not exist on Kafka at {kafka.bootstrap_servers}: the stack "
                "was not set up (bin/stockafolio run creates the pipeline's topics), or --topic is wrong"
            ) from None
        complete = [True]
        counted = tally(read(c, args.topic, ranges, complete), args.latest)
    except KafkaException as exc:
        raise _unreachable(kafka.bootstrap_servers, exc) from None
    finally:
        c.close()
    return report(counted, args.topic, args.since_minutes, complete[0])


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of minutes > 0, got {text!r}")
    return value
