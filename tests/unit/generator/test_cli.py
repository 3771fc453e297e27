"""The command line: usage errors are exit 2 with a message, never a traceback; progress lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import cli
from generator.live import Summary
from generator.progress import Snapshot, format_line


@pytest.mark.parametrize(("argv", "message"), [
    (["live", "--rate", "-5"], "argument --rate: must be > 0, got -5"),
    (["live", "--rate", "fast"], "expected a number"),
    (["live", "--users", "0"], "argument --users: must be > 0"),
    (["live", "--speed", "0"], "argument --speed: must be > 0"),
    (["live", "--duration", "5", "--trades", "10"], "not allowed with argument"),
    (["batch", "--date", "2026-13-01"], "expected a date like"),
    (["batch", "--bucket", "Bad_Bucket"], "not a valid S3 bucket name"),
    (["live", "--run-id", str(2**31)], "must be <="),
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
                 "--bucket", "--date", "--short-selling"):
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
