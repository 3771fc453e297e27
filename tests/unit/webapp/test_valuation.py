"""Marking Q1 rows to the latest prices: hand-checked numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from webapp.valuation import iso, mark

TODAY = date(2026, 11, 20)


def rows(day: date = TODAY) -> list[dict]:
    statics = {"cash_cents": 500_000, "realized_pnl_total_cents": -250, "equity_cents": 900_000,
               "day": day, "day_open_equity_cents": 880_000, "updated_at": None}
    return [{**statics, "symbol": "AAPL", "quantity": 10, "cost_basis_cents": 150_000, "avg_cost": 150.0,
             "realized_pnl_cents": -250, "last_price": 155.0, "last_trade_time": None},
            {**statics, "symbol": "XOM", "quantity": -5, "cost_basis_cents": -50_000, "avg_cost": 100.0,
             "realized_pnl_cents": 0, "last_price": 100.0, "last_trade_time": None},
            {**statics, "symbol": "MSFT", "quantity": 0, "cost_basis_cents": 0, "avg_cost": 0.0,
             "realized_pnl_cents": 900, "last_price": 400.0, "last_trade_time": None}]


def test_marks_to_latest_price_and_falls_back_to_last_price():
    doc = mark(rows(), {"AAPL": 160.0}, datetime(2026, 11, 20, tzinfo=UTC), 1, TODAY)
    h = {x["symbol"]: x for x in doc["holdings"]}
    assert set(h) == {"AAPL", "XOM"}  # closed positions are omitted
    assert h["AAPL"]["market_value"] == 1600.0 and h["AAPL"]["unrealized_pnl"] == 100.0
    assert h["XOM"]["price"] == 100.0 and h["XOM"]["market_value"] == -500.0
    t = doc["totals"]
    assert t["market_value"] == 1100.0 and t["cash"] == 5000.0 and t["equity"] == 6100.0
    assert t["unrealized_pnl"] == 100.0 and t["realized_pnl"] == -2.5
    assert t["day_pnl"] == 6100.0 - 8800.0
    assert h["AAPL"]["weight"] == round(1600 / 2100, 6)
    assert doc["risk"]["largest_position_symbol"] == "AAPL"
    assert doc["risk"]["var_99"] > doc["risk"]["var_95"] > 0


def test_day_pnl_before_the_first_trade_of_the_day_starts_from_last_equity():
    doc = mark(rows(TODAY - timedelta(days=1)), {"AAPL": 160.0}, None, 1, TODAY)
    assert doc["totals"]["day_pnl"] == 6100.0 - 9000.0


def test_iso_accepts_driver_naive_utc():
    naive = datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=UTC).replace(tzinfo=None)
    assert iso(naive) == "2026-01-02T03:04:05.678Z"


def test_holdings_without_any_price_are_marked_at_cost_or_zero():
    at_cost = mark([{**r, "last_price": None} for r in rows()], {}, None, 1, TODAY)
    assert at_cost["totals"]["market_value"] == 1500.0 - 500.0 and at_cost["totals"]["unrealized_pnl"] == 0
    priceless = [{**r, "last_price": None, "avg_cost": None} for r in rows()]
    doc = mark(priceless, {}, None, 1, TODAY)
    assert doc["live_prices"] is False and doc["totals"]["market_value"] == 0
    assert doc["risk"]["largest_position_weight"] == 0 and {h["weight"] for h in doc["holdings"]} == {0}
