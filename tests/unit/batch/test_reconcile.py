"""Comparison of the rebuilt state with the stored one: each kind of mismatch found, readable lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batch import reconcile

REBUILT_DDL = (
    "user_id BIGINT, symbol STRING, quantity BIGINT, cost_basis_cents BIGINT, realized_pnl_cents BIGINT, "
    "last_trade_id BIGINT, last_trade_time TIMESTAMP, cash_cents BIGINT, cash_last_trade_id BIGINT"
)
STORED_DDL = (
    "user_id BIGINT, symbol STRING, quantity BIGINT, cost_basis_cents BIGINT, realized_pnl_cents BIGINT, "
    "last_trade_id BIGINT, last_trade_time TIMESTAMP, last_price DOUBLE, cash_cents BIGINT, "
    "cash_last_trade_id BIGINT"
)
DAY_END = datetime(2026, 11, 21, tzinfo=UTC)
T = datetime(2026, 11, 20, 15, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def compared(spark):
    rebuilt = spark.createDataFrame(
        [
            (1, "AAPL", 10, 1000, 0, 5, T, 500, 5),  # equal
            (1, "MSFT", 3, 300, 7, 6, T, 500, 5),  # stored quantity differs
            (2, "AAPL", 1, 100, 0, 8, T, 900, 8),  # not stored at all
            (3, "XOM", 2, 200, 0, 9, T, 100, 9),  # stored after the day: skipped
            (4, "IBM", 1, 100, 0, 10, T, 50, 10),  # cash differs
        ],
        REBUILT_DDL,
    )
    stored = spark.createDataFrame(
        [
            (1, "AAPL", 10, 1000, 0, 5, T, 100.0, 500, 5),
            (1, "MSFT", 4, 300, 7, 6, T, 100.0, 500, 5),
            (3, "XOM", 3, 300, 0, 12, LATER, 100.0, 70, 12),
            (4, "IBM", 1, 100, 0, 10, T, 100.0, 51, 10),
            (5, "TSLA", 1, 100, 0, 11, T, 100.0, 0, 11),  # no trade of it in the archive
        ],
        STORED_DDL,
    )
    return (
        reconcile.compare_holdings(rebuilt, stored, DAY_END),
        reconcile.compare_cash(rebuilt, stored, DAY_END),
    )


def test_each_holding_gets_its_kind(compared) -> None:
    held, _ = compared
    kinds = {(r["user_id"], r["symbol"]): r["kind"] for r in held.collect()}
    assert kinds == {
        (1, "AAPL"): "ok",
        (1, "MSFT"): "differs",
        (2, "AAPL"): "missing_in_cassandra",
        (3, "XOM"): "after_day",
        (4, "IBM"): "ok",
        (5, "TSLA"): "not_in_archive",
    }


def test_cash_kinds(compared) -> None:
    _, cash = compared
    kinds = {r["user_id"]: r["kind"] for r in cash.collect()}
    assert kinds == {1: "ok", 2: "missing_in_cassandra", 3: "after_day", 4: "differs", 5: "not_in_archive"}


def test_summary_counts_and_readable_sample(compared) -> None:
    report = reconcile.summarise(*compared)
    assert (report.holdings_checked, report.holding_mismatches, report.skipped) == (5, 3, 1)
    assert (report.users_checked, report.cash_mismatches, report.mismatches) == (4, 3, 6)
    assert report.sample[0] == "user 1 MSFT: differs: quantity stored 4 rebuilt 3"
    assert "user 4 cash: differs: cash_cents stored 51 rebuilt 50" in report.sample
    assert report.sample[1] == (
        "user 2 AAPL: missing_in_cassandra: rebuilt quantity 1, cost_basis_cents 100, "
        "realized_pnl_cents 0, last_trade_id 8"
    )
    assert report.sample[2].startswith("user 5 TSLA: not_in_archive: stored quantity 1,")
    assert report.status.startswith("mismatch: 3 holdings, 3 cash balances differ; 1 rows")


def test_status_after_repair() -> None:
    report = reconcile.Report(1, 1, 1, 0, 0, ["x"], repaired=1)
    assert report.status.startswith("repaired")
    assert reconcile.Report(1, 1, 0, 0, 0).status.startswith("ok")
