"""The command line: usage errors exit 2, the scheduler computes the next run and the child command."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, time

import pytest

from batch import cli, schedule
from tests.unit.batch.endpoints import write_endpoints


@pytest.mark.parametrize(
    "argv",
    [
        ["nightly", "--date", "2026-13-01"],
        ["ingest", "--groups", "-1"],
        ["views", "--opening-cash", "x"],
        ["schedule", "--at", "25:00"],
        ["risk", "--driver-memory", "6 GB"],
        ["bogus"],
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_next_run_is_today_or_tomorrow() -> None:
    now = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    assert schedule.next_run(now, time(2, 30)) == datetime(2026, 11, 22, 2, 30, tzinfo=UTC)
    assert schedule.next_run(now, time(1, 0)) == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def test_loop_runs_the_nightly_child_at_the_time(monkeypatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(schedule.subprocess, "call", lambda argv: calls.append(argv) or 0)
    now = [datetime(2026, 11, 22, 2, 0, tzinfo=UTC)]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] = now[0].replace(minute=now[0].minute + int(seconds // 60))

    args = cli.parser().parse_args(
        ["schedule", "--at", "02:02", "--nights", "1", "--keyspace", "k", "--repair"]
    )
    assert schedule.loop(args, sleep=sleep, clock_now=lambda: now[0]) == 0
    assert slept == [60.0, 60.0]
    (argv,) = calls
    assert argv[1:4] == ["-m", "batch", "nightly"] and "--repair" in argv
    assert argv[argv.index("--keyspace") + 1] == "k" and "--date" not in argv


def test_settings_from_flags(tmp_path) -> None:
    write_endpoints(tmp_path)
    args = cli.parser().parse_args(
        [
            "reconcile",
            "--var",
            str(tmp_path),
            "--date",
            "2026-11-20",
            "--opening-cash",
            "12.34",
            "--keyspace",
            "ks",
            "--repair",
        ]
    )
    settings = cli.settings_from(args)
    assert (settings.bucket, settings.opening_cash_cents, settings.repair) == ("arch", 1234, True)
    assert settings.source == "s3a://arch/trades/date=2026-11-20"
    assert settings.dataset("curated/trades") == "hdfs://n:1/stockafolio/curated/trades/date=2026-11-20"
    assert isinstance(args, argparse.Namespace)


def test_driver_memory_reaches_the_settings_and_the_scheduled_child() -> None:
    args = cli.parser().parse_args(["schedule", "--driver-memory", "4096M", "--var", "/tmp/v"])
    child = schedule.command(args)
    assert child[child.index("--driver-memory") + 1] == "4096m"
    assert cli.parser().parse_args(["nightly"]).driver_memory == "6g"
