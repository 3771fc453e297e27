"""Which day the nightly runs for: the last complete market day of the archive by the market's clock
(the latest price tick), never the wall clock's yesterday; a day still in progress is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from batch import cli, days, services
from batch.settings import BatchError
from tests.unit.batch.endpoints import write_endpoints

FRI, MON, TUE = date(2026, 12, 4), date(2026, 12, 7), date(2026, 12, 8)
MON_1434 = datetime(2026, 12, 7, 14, 34, 9, tzinfo=UTC)   # 09:34 New York: Monday in progress
MON_LAST = datetime(2026, 12, 7, 20, 59, 59, tzinfo=UTC)  # 15:59:59 New York: its last tick
WHERE = "s3://arch/trades/"


def test_archived_days_from_the_listing():
    listing = ["trades/date=2026-12-07/", "trades/date=2026-12-04/", "trades/hour=3/",
               "trades/date=2026-13-01/"]
    assert days.archived_days(listing) == [FRI, MON]


@pytest.mark.parametrize(("now", "archived", "expected"), [
    (MON_1434, [FRI, MON], FRI),          # Monday is running: Friday is the last complete day
    (MON_LAST, [FRI, MON], MON),          # Monday's last tick was seen
    (datetime(2026, 12, 8, 14, 30, tzinfo=UTC), [FRI, MON, TUE], MON),  # simulated days back to back
    (None, [FRI, MON], FRI),              # no tick: a day is complete when a later one is archived
    (datetime(2026, 7, 6, 19, 59, 59, tzinfo=UTC), [date(2026, 7, 6)], date(2026, 7, 6)),  # summer: 20:00
])
def test_last_complete_day(now, archived, expected):
    assert days.default_day(archived, now, WHERE) == expected


def test_no_complete_day_says_why_and_what_to_do():
    refused = r"newest, 2026-12-07, has not ended .*14:34:09 UTC.*21:00 UTC"
    with pytest.raises(BatchError, match=refused) as err:
        days.default_day([MON], MON_1434, WHERE)
    assert "--date 2026-12-07 --assume-complete" in str(err.value)
    with pytest.raises(BatchError, match="no trades archived in s3://arch/trades/"):
        days.default_day([], MON_1434, WHERE)


def test_a_day_in_progress_is_refused_naming_the_day_and_what_to_do():
    with pytest.raises(BatchError) as err:
        days.check_complete(MON, MON_1434, [FRI, MON], WHERE)
    text = str(err.value)
    assert text.startswith("2026-12-07 is still in progress") and "21:00 UTC" in text
    assert "2026-12-04 (the default without --date)" in text and "--assume-complete" in text
    days.check_complete(FRI, MON_1434, [FRI, MON], WHERE)  # ended: no error
    days.check_complete(MON, None, [MON], WHERE)  # no clock at all: --date is taken at its word


def test_the_session_ends_when_the_generator_ends_it():
    from generator.clock import SESSION_SECONDS, SessionClock

    last = SessionClock(MON).moment(SESSION_SECONDS - 1)
    assert days.is_complete(MON, last, []) and not days.is_complete(MON, last.replace(second=58), [])


@pytest.fixture()
def var(tmp_path: Path, monkeypatch) -> Path:
    write_endpoints(tmp_path)
    for check in ("check_s3", "check_cassandra"):
        monkeypatch.setattr(services, check, lambda endpoints: None)
    monkeypatch.setattr(services, "archive_days",
                        lambda endpoints, bucket, prefix: [f"{prefix}/date={d}/" for d in (FRI, MON)])
    monkeypatch.setattr(services, "market_now", lambda endpoints, keyspace: MON_1434)
    return tmp_path


def test_nightly_without_date_runs_the_last_complete_day(var: Path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(cli, "run", lambda settings, stages: ran.append((settings.day, list(stages))))
    assert cli.main(["nightly", "--var", str(var)]) == 0
    assert ran == [(FRI, ["ingest", "views", "reconcile", "risk"])]
    assert "the last complete market day in s3://arch/trades/" in capsys.readouterr().err


def test_nightly_of_a_day_in_progress_exits_1_before_spark(var: Path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "run", lambda settings, stages: pytest.fail("Spark must not start"))
    assert cli.main(["nightly", "--var", str(var), "--date", "2026-12-07"]) == 1
    assert "batch: error: 2026-12-07 is still in progress" in capsys.readouterr().err


def test_assume_complete_and_ingest_alone_run_the_date_as_given(var: Path, monkeypatch):
    ran = []
    monkeypatch.setattr(cli, "run", lambda settings, stages: ran.append((settings.day, list(stages))))
    monkeypatch.setattr(services, "market_now", lambda endpoints, keyspace: pytest.fail("no clock needed"))
    assert cli.main(["nightly", "--var", str(var), "--date", "2026-12-07", "--assume-complete"]) == 0
    assert cli.main(["ingest", "--var", str(var), "--date", "2026-12-07"]) == 0
    assert ran == [(MON, ["ingest", "views", "reconcile", "risk"]), (MON, ["ingest"])]


def test_bin_stockafolio_nightly_is_the_batchs_nightly(monkeypatch):
    import batch.cli
    from stack import cli as stack_cli

    calls = []
    monkeypatch.setattr(batch.cli, "main", lambda argv: calls.append(argv) or 0)
    assert stack_cli.main(["nightly"]) == 0
    assert stack_cli.main(["nightly", "--date", "2026-12-04", "--repair"]) == 0
    assert calls == [["nightly"], ["nightly", "--date", "2026-12-04", "--repair"]]
