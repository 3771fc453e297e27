"""Marking Q1 rows to the latest prices: hand-checked numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from webapp.valuation import idle_symbols, iso, mark

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


def test_day_pnl_of_a_user_idle_for_days_starts_from_the_previous_close():
    """Last trade five days ago (stored equity $9,000 then): today's P&L counts from the previous
    market day's close of the same holdings and cash, never from that old equity."""
    idle = rows(TODAY - timedelta(days=5))
    assert idle_symbols(idle, TODAY) == ["AAPL", "XOM"]  # MSFT is closed: no close needed
    doc = mark(idle, {"AAPL": 160.0}, None, 1, TODAY, closes={"AAPL": 158.0, "XOM": 101.0})
    # open: cash 5,000 + 10 x 158 - 5 x 101 = 6,075; now: 5,000 + 1,600 - 500 (XOM's last mark) = 6,100
    assert doc["totals"]["equity"] == 6100.0 and doc["totals"]["day_pnl"] == 25.0


def test_a_name_without_a_previous_close_counts_no_move():
    doc = mark(rows(TODAY - timedelta(days=3)), {"AAPL": 160.0}, None, 1, TODAY, closes={"AAPL": 158.0})
    assert doc["totals"]["day_pnl"] == 20.0  # AAPL +2 x 10; XOM marked at today's price both times
    assert mark(rows(TODAY - timedelta(days=3)), {"AAPL": 160.0}, None, 1, TODAY)["totals"]["day_pnl"] == 0


def test_the_streams_open_is_used_once_it_wrote_the_user_today():
    assert idle_symbols(rows(), TODAY) == []
    doc = mark(rows(), {"AAPL": 160.0}, None, 1, TODAY, closes={"AAPL": 1.0, "XOM": 1.0})
    assert doc["totals"]["day_pnl"] == 6100.0 - 8800.0


def test_an_idle_user_with_cash_only_has_no_day_pnl():
    cash_only = [{**rows(TODAY - timedelta(days=9))[0], "symbol": None, "quantity": None}]
    assert idle_symbols(cash_only, TODAY) == []
    assert mark(cash_only, {"AAPL": 160.0}, None, 1, TODAY)["totals"]["day_pnl"] == 0


def test_as_of_is_the_prices_tick_not_the_streams_write_time():
    tick = datetime(2026, 11, 20, 14, 34, 9, tzinfo=UTC)
    written = [{**r, "updated_at": datetime(2026, 11, 20, 19, 34, tzinfo=UTC)} for r in rows()]
    assert mark(written, {}, tick, 1, TODAY)["as_of"] == "2026-11-20T14:34:09.000Z"
    assert mark(written, {}, None, 1, TODAY)["as_of"] == "2026-11-20T19:34:00.000Z"


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
