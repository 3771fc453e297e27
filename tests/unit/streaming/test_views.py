"""Firm/market view math on small hand-checked cases: minute rows, VWAP, guarded day totals, ticks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from streaming import views

DAY = date(2026, 11, 20)
M1, M2 = (pd.Timestamp(datetime(2026, 11, 20, 14, m, tzinfo=UTC)) for m in (30, 31))


def aggregate(minute, key, trades, volume, notional, buys, buy_volume, last, users=0) -> dict:
    return {"minute": minute, "key": key, "trades": trades, "volume": volume, "notional_cents": notional,
            "buy_trades": buys, "sell_trades": trades - buys, "buy_volume": buy_volume,
            "sell_volume": volume - buy_volume, "last_price": last, "active_users": users}


def test_minute_rows_split_symbols_from_the_firm_and_compute_vwap() -> None:
    # AAPL in 14:30: buy 10 @ 100.00 and sell 30 @ 101.00 -> notional 100,000 + 303,000 cents
    rows = pd.DataFrame([aggregate(M1, "AAPL", 2, 40, 403_000, 1, 10, 101.0),
                         aggregate(M1, views.FIRM, 2, 40, 403_000, 1, 10, 101.0, users=2)])
    symbols, firm = views.minute_rows(rows)
    columns = ["day", "symbol", "trades", "volume", "sell_volume"]
    assert symbols[columns].values.tolist() == [[DAY, "AAPL", 2, 40, 30]]
    assert symbols["vwap"].tolist() == [100.75]  # 4,030.00 / 40
    assert firm[["day", "trades", "active_users"]].values.tolist() == [[DAY, 2, 2]]
    assert list(symbols.columns) == views.Q5_COLUMNS and list(firm.columns) == views.Q6_COLUMNS


def test_vwap_without_volume_is_nan() -> None:
    assert np.isnan(views.vwap(pd.Series([0]), pd.Series([0]))).all()


def q5(minute, symbol, trades, volume, notional, buy_volume) -> dict:
    return {"day": DAY, "symbol": symbol, "minute": minute, "trades": trades, "volume": volume,
            "notional_cents": notional, "buy_volume": buy_volume, "sell_volume": volume - buy_volume}


def test_day_totals_add_only_what_each_minute_gained() -> None:
    stored_days = pd.DataFrame([{"day": DAY, "symbol": "AAPL", "trades": 5, "volume": 50,
                                 "notional_cents": 500_000, "buy_volume": 20, "sell_volume": 30}])
    # 14:30 had 3 trades stored and now has 4; 14:31 is new with 2; MSFT is new today
    stored_minutes = pd.DataFrame([q5(M1, "AAPL", 3, 30, 300_000, 10)])
    new_minutes = pd.DataFrame([q5(M1, "AAPL", 4, 35, 350_000, 15), q5(M2, "AAPL", 2, 7, 70_000, 7),
                                q5(M2, "MSFT", 1, 1, 40_000, 0)])
    out = views.day_totals(stored_days, stored_minutes, new_minutes).set_index("symbol")
    assert out.loc["AAPL", views.TOTALS].tolist() == [5 + 1 + 2, 50 + 5 + 7, 500_000 + 50_000 + 70_000,
                                                      20 + 5 + 7, 30 + 0 + 0]
    assert out.loc["MSFT", views.TOTALS].tolist() == [1, 1, 40_000, 0, 1]


def test_day_totals_from_nothing_stored_are_the_minutes() -> None:
    new_minutes = pd.DataFrame([q5(M1, "AAPL", 4, 35, 350_000, 15), q5(M2, "AAPL", 2, 7, 70_000, 7)])
    out = views.day_totals(pd.DataFrame(), pd.DataFrame(), new_minutes)
    assert out[views.TOTALS].values.tolist() == [[6, 42, 420_000, 22, 20]]


def test_day_totals_read_back_from_cassandra_types() -> None:
    """Days come back as the driver's Date (str() = ISO), minutes as naive UTC datetimes."""
    class DriverDate:
        def __str__(self) -> str:
            return "2026-11-20"

    stored_minutes = pd.DataFrame([{**q5(M1.tz_convert(None).to_pydatetime(), "AAPL", 3, 30, 300_000, 10),
                                    "day": DriverDate()}])
    stored_days = pd.DataFrame([{"day": DriverDate(), "symbol": "AAPL", "trades": 3, "volume": 30,
                                 "notional_cents": 300_000, "buy_volume": 10, "sell_volume": 20}])
    new_minutes = pd.DataFrame([q5(M1, "AAPL", 4, 35, 350_000, 15)])
    out = views.day_totals(stored_days, stored_minutes, new_minutes)
    assert out[views.TOTALS].values.tolist() == [[4, 35, 350_000, 15, 20]]
