"""The command line: usage errors are exit 2 with a message, never a traceback; progress lines."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from generator import cli
from generator.kafka_sink import KafkaSettings
from generator.live import Summary
from generator.market import Market
from generator.progress import Console, Snapshot, format_line
from stockafolio.records import split_trade_id, trade_id

from .conftest import DAY


@pytest.mark.parametrize(("argv", "message"), [
    (["live", "--rate", "-5"], "argument --rate: must be > 0, got -5"),
    (["live", "--rate", "fast"], "expected a number"),
    (["live", "--users", "0"], "argument --users: must be > 0"),
    (["live", "--speed", "0"], "argument --speed: must be > 0"),
    (["live", "--duration", "5", "--trades", "10"], "not allowed with argument"),
    (["batch", "--date", "2026-13-01"], "expected a date like"),
    (["batch", "--bucket", "Bad_Bucket"], "not a valid S3 bucket name"),
    (["live", "--run-id", str(2**31)], "must be <="),
    (["live", "--instances", "257"], "argument --instances: must be <= 256"),
    (["batch", "--instances", "0"], "argument --instances: must be > 0"),
    (["live", "--instance", "-1"], "argument --instance: must be >= 0"),
    (["live", "--instance", "2", "--instances", "2"], "--instance must be below --instances (2), got 2"),
    (["batch", "--instance", "1"], "--instance must be below --instances (1), got 1"),
    (["live", "--instance", "255", "--instances", "256", "--users", "100"], "leaves instances without users"),
    (["live", "--symbols", "/nonexistent/symbols.txt"], "cannot read the symbol list"),
    (["fly"], "invalid choice"),
    ([], "required"),
])
def test_bad_flags_are_usage_errors(argv: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err
    assert err.startswith("usage:") or "error:" in err


def test_unknown_symbols_in_the_list_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = tmp_path / "symbols.txt"
    listed.write_text("# my picks\naapl\nMSFT  # comment\nNOPE\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["live", "--symbols", str(listed)])
    assert exit_.value.code == 2 and "not S&P 500 members: NOPE" in capsys.readouterr().err


def test_symbol_lists_are_read_and_deduplicated(tmp_path: Path) -> None:
    listed = tmp_path / "symbols.txt"
    listed.write_text("aapl\nMSFT\n\nAAPL\n")
    assert cli.read_symbols(str(listed), {"AAPL", "MSFT"}) == ("AAPL", "MSFT")


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["live", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for flag in ("--rate", "--users", "--duration", "--trades", "--seed", "--speed", "--trades-topic",
                 "--bucket", "--date", "--short-selling", "--instance K", "--instances N"):
        assert flag in out


def test_progress_line_shows_rates_and_warnings() -> None:
    before = Snapshot(1.0, "2026-11-20 09:30:00", 0, 0, 0, 0)
    now = Snapshot(2.0, "2026-11-20 09:30:01", 20_000, 19_000, 10_000, 3, ("Kafka unreachable for 4 s",))
    line = format_line(now, before)
    assert "sent 20,000 (20,000/s)" in line and "acked 19,000 (19,000/s)" in line
    assert "archived 10,000" in line and "errors 3" in line and line.endswith("Kafka unreachable for 4 s")


def test_summary_says_what_was_sent() -> None:
    summary = Summary("live", 9, 1_000, 990, 0, 990, 503, 2.0, 2, 9 << 32, (9 << 32) + 999, True)
    text = "\n".join(summary.lines())
    assert "interrupted" in text and "not acknowledged    10" in text and "archived to S3      990" in text
    assert "(run 9, instance 0, sequence 1,000 trades)" in text
    last = trade_id(9, 41, instance=3)
    assert "(run 9, instance 3, sequence 42 trades)" in "\n".join(Summary(
        "batch", 9, 42, 0, 0, 42, 0, 1.0, 60, trade_id(9, 0, 3), last, False).lines())


def test_the_instance_flags_reach_the_run() -> None:
    args = cli.parser().parse_args(["batch", "--run-id", "5", "--instance", "2", "--instances", "3",
                                    "--date", "2026-11-20"])
    shape = cli._shape(args, Console(io.StringIO()))
    assert (shape.run_id, shape.instance, shape.instances, shape.publishes_prices) == (5, 2, 3, False)
    single = cli._shape(cli.parser().parse_args(["live", "--run-id", "5"]), Console(io.StringIO()))
    assert (single.instance, single.instances, single.publishes_prices) == (0, 1, True)


class _Sink:
    """What a live run uses of `KafkaSink`, in memory: everything is acknowledged at once."""

    def __init__(self, settings: object, say: object) -> None:
        self.trades: list[dict] = []
        self.sent = self.acked = self.errors = self.prices_sent = 0

    def send_trades(self, keys: list[bytes], values: list[bytes]) -> None:
        self.trades += [orjson.loads(v) for v in values]
        self.sent += len(values)
        self.acked += len(values)

    def send_prices(self, keys: list[bytes], values: list[bytes]) -> None:
        self.prices_sent += len(values)

    def poll(self) -> None:
        pass

    def flush(self, timeout: float) -> int:
        return 0

    def in_flight(self) -> int:
        return 0

    def down_for(self) -> None:
        return None


def _live_run(market: Market, monkeypatch: pytest.MonkeyPatch, instance: int, instances: int) -> _Sink:
    from generator import live

    monkeypatch.setattr(live, "KafkaSink", _Sink)
    shape = live.RunShape(users=600, seed=3, run_id=11, date=DAY, instance=instance, instances=instances)
    settings = live.LiveSettings(shape, 20_000.0, 20_000.0, KafkaSettings("unused:9092"), None, "g",
                                 max_trades=1_000)
    run = live._Live(settings, market, Console(io.StringIO()), None)
    summary = run.run()
    assert summary.trades == 1_000 and summary.problem is None
    return run.sink


def test_live_instances_send_their_own_users_trades_and_one_sends_the_prices(
        market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    sinks = [_live_run(market, monkeypatch, k, 3) for k in range(3)]
    for k, sink in enumerate(sinks):
        assert len(sink.trades) == 1_000 and {t["user_id"] % 3 for t in sink.trades} == {k}
        ids = [t["trade_id"] for t in sink.trades]
        assert ids == sorted(ids) and {split_trade_id(i)[2] for i in ids} == {k}
        assert (sink.prices_sent > 0) == (k == 0)
    assert len({t["trade_id"] for sink in sinks for t in sink.trades}) == 3_000


class _Writer:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def ensure_bucket(self) -> None:
        pass

    def put(self, key: str, body: bytes) -> None:
        self.keys.append(key)


@pytest.mark.parametrize(("instance", "instances", "stem", "prices"), [
    (0, 1, "batch-r5-0", True), (0, 2, "batch-r5-i0-0", True), (1, 2, "batch-r5-i1-0", False)])
def test_batch_objects_are_named_by_instance_and_instance_0_writes_the_prices(
        market: Market, instance: int, instances: int, stem: str, prices: bool) -> None:
    from generator.archive import ArchiveSettings
    from generator.batch import BatchSettings, run_batch
    from generator.live import RunShape
    from generator.trades import day_schedule

    shape = RunShape(users=600, seed=3, run_id=5, date=DAY, instance=instance, instances=instances)
    writer = _Writer()
    settings = BatchSettings(shape, 100_000, ArchiveSettings("b"), seconds=120)
    summary = run_batch(settings, market, writer, Console(io.StringIO()))  # type: ignore[arg-type]
    trades = [k for k in writer.keys if k.startswith("trades/")]
    assert trades and all(k.rsplit("/", 1)[1].startswith(stem) for k in trades)
    assert any(k.startswith("prices/") for k in writer.keys) == prices
    alone = int(day_schedule(100_000)[:120].sum())  # what one instance makes: --trades is per instance
    assert summary.trades == alone if instances == 1 else abs(summary.trades / alone - 1) < 0.2


def _var_with(tmp_path: Path, kafka: str, s3: str) -> Path:
    import json

    folder = tmp_path / "endpoints"
    folder.mkdir()
    files = {"kafka": {"bootstrap_servers": kafka},
             "cassandra": {"contact_points": ["127.0.0.1"], "port": 9042, "local_dc": "dc1"},
             "hdfs": {"url": "hdfs://127.0.0.1:8020", "namenode_http": "http://127.0.0.1:9870"},
             "s3": {"endpoint_url": s3, "region": "us-east-1", "access_key": "k", "secret_key": "s",
                    "archive_bucket": "archive"},
             "spark": {"conf_dir": str(tmp_path), "master": "local[1]"}}
    for name, body in files.items():
        (folder / f"{name}.json").write_text(json.dumps(body))
    return tmp_path


def test_unreachable_kafka_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    var = _var_with(tmp_path, "127.0.0.1:9", "http://127.0.0.1:9")
    code = cli.main(["live", "--var", str(var), "--give-up", "2", "--run-id", "1", "--users", "10"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "Kafka is not reachable: no broker answered at 127.0.0.1:9" in err and "gave up" in err


def test_missing_endpoints_are_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["batch", "--var", str(tmp_path), "--run-id", "1"])
    assert exit_.value.code == 2 and ".json is missing" in capsys.readouterr().err


@pytest.mark.parametrize(("rate", "speed", "seconds"), [
    (20_000, 1, 1),  # a simulated second per step, 20k trades
    (20_000, 60, 6),  # 333 trades per simulated second: 6 seconds per step, 0.1 s of wall time
    (100, 1, 1),  # never hold trades back for more than a quarter of a wall second...
    (100, 1_000, 250),  # ...but gather more of them when time runs fast
])
def test_steps_are_sized_by_the_flags_alone(rate: float, speed: float, seconds: int) -> None:
    from generator.live import chunk_seconds

    assert chunk_seconds(rate / speed, speed) == seconds
