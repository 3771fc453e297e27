"""The firm views on a handful of hand-made trades and positions, checked by hand."""

from __future__ import annotations

import pytest

from batch import holdings, views
from tests.unit.batch.conftest import T0, TRADE_DDL, trade

TRADES = [
    trade(1, 10, "AAPL", "buy", 10, 100.0, 0),
    trade(2, 10, "AAPL", "sell", 4, 110.0, 30),
    trade(3, 11, "MSFT", "buy", 5, 200.0, 61),
    trade(4, 12, "AAPL", "buy", 2, 105.0, 62),
    trade(5, 11, "MSFT", "buy", 1, 201.0, 62),
]
SECTORS = [("AAPL", "Information Technology"), ("MSFT", "Information Technology"), ("XOM", "Energy")]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyspark 3.5's pandas checks


@pytest.fixture(scope="module")
def trades(spark):
    return spark.createDataFrame(TRADES, TRADE_DDL)


@pytest.fixture(scope="module")
def cells(trades):
    return views.minute_side(trades)


@pytest.fixture(scope="module")
def sectors(spark):
    return spark.createDataFrame(SECTORS, "symbol STRING, sector STRING")


@pytest.fixture(scope="module")
def positions(spark):
    rows = [
        (10, "AAPL", 6, 100.0),
        (11, "MSFT", 6, 201.0),
        (12, "AAPL", 2, 100.0),
        (12, "XOM", -10, 50.0),
        (13, "XOM", 0, 50.0),
    ]
    holdings = spark.createDataFrame([r[:3] for r in rows], "user_id BIGINT, symbol STRING, quantity BIGINT")
    marks = spark.createDataFrame(
        [("AAPL", 100.0), ("MSFT", 201.0), ("XOM", 50.0)], "symbol STRING, price DOUBLE"
    )
    return views.valued(holdings, marks)


def rows(frame, key: str) -> dict:
    return {r[key]: r.asDict() for r in frame.collect()}


def test_by_symbol_counts_shares_notional_and_imbalance(cells) -> None:
    got = rows(views.by_symbol(cells), "symbol")
    assert got["AAPL"]["trades"] == 3 and got["AAPL"]["shares"] == 16
    assert got["AAPL"]["notional"] == pytest.approx(10 * 100 + 4 * 110 + 2 * 105)
    assert got["AAPL"]["buy_shares"] == 12 and got["AAPL"]["sell_shares"] == 4
    assert got["AAPL"]["imbalance"] == pytest.approx((12 - 4) / 16)
    assert got["MSFT"]["imbalance"] == 1.0 and got["MSFT"]["sell_notional"] == 0.0


def test_by_sector_sums_its_symbols(cells, sectors) -> None:
    got = rows(views.by_sector(cells, sectors), "sector")
    assert list(got) == ["Information Technology"]
    assert got["Information Technology"]["notional"] == pytest.approx(1650 + 1000 + 201)


def test_per_minute_has_active_users(trades, cells) -> None:
    got = {r["minute"].minute: r for r in views.per_minute(cells, views.active_users(trades)).collect()}
    assert got[30]["trades"] == 2 and got[30]["active_users"] == 1
    assert got[31]["trades"] == 3 and got[31]["active_users"] == 2


def test_top_users_rank_by_metric_then_user_id(trades) -> None:
    totals = views.user_totals(holdings.rebuild(trades, 2, 0, day=T0.date()))
    got = sorted(tuple(r) for r in totals.collect())
    assert got == [(10, 2.0, 1440.0), (11, 2.0, 1201.0), (12, 1.0, 210.0)]
    by_trades = [
        (r["rank"], r["user_id"], r["value"]) for r in views.top_users(totals, "trades", 2).collect()
    ]
    assert by_trades == [(1, 10, 2.0), (2, 11, 2.0)]
    by_notional = [r["user_id"] for r in views.top_users(totals, "notional").orderBy("rank").collect()]
    assert by_notional == [10, 11, 12]


def test_last_price_is_the_latest_trade(trades) -> None:
    assert rows(views.last_prices(trades), "symbol") == {
        "AAPL": {"symbol": "AAPL", "price": 105.0},
        "MSFT": {"symbol": "MSFT", "price": 201.0},
    }


def test_last_price_ties_on_time_go_to_the_higher_trade_id(spark) -> None:
    same_time = spark.createDataFrame([
        trade(9, 10, "AAPL", "buy", 1, 101.0, 40),
        trade(7, 11, "AAPL", "buy", 1, 102.0, 40),  # same second, lower id: not the last
        trade(20, 12, "AAPL", "buy", 1, 99.0, 39),  # highest id but earlier: not the last
        trade(3, 10, "MSFT", "sell", 1, 50.0, 5),
    ], TRADE_DDL)
    assert rows(views.last_prices(same_time), "symbol") == {
        "AAPL": {"symbol": "AAPL", "price": 101.0},
        "MSFT": {"symbol": "MSFT", "price": 50.0},
    }


def test_valued_drops_closed_positions_and_signs_shorts(positions) -> None:
    got = {(r["user_id"], r["symbol"]): r["value"] for r in positions.collect()}
    assert got == {(10, "AAPL"): 600.0, (11, "MSFT"): 1206.0, (12, "AAPL"): 200.0, (12, "XOM"): -500.0}


def test_portfolio_sizes_bucket_gross_value(positions) -> None:
    got = {r["label"]: (r["users"], r["share"]) for r in views.portfolio_sizes(positions).collect()}
    # gross: user 10 -> 600, 11 -> 1,206, 12 -> 200 + 500 = 700
    assert got == {"0-1000": (2.0, pytest.approx(2 / 3)), "1000-5000": (1.0, pytest.approx(1 / 3))}


def test_holdings_count_distribution(positions) -> None:
    got = {r["label"]: r["users"] for r in views.holdings_count(positions).collect()}
    assert got == {"1": 2.0, "2": 1.0}


def test_crowded_names_share_of_users(positions) -> None:
    got = rows(views.crowded_names(positions), "symbol")
    assert got["AAPL"]["holders"] == 2 and got["AAPL"]["share"] == pytest.approx(2 / 3)
    assert got["XOM"]["short_holders"] == 1 and got["XOM"]["long_holders"] == 0


def test_sector_exposure_long_short_net_gross(positions, sectors) -> None:
    got = rows(views.sector_exposure(positions, sectors), "sector")
    assert got["Energy"]["short"] == -500.0 and got["Energy"]["net"] == -500.0
    assert got["Information Technology"]["long"] == 2006.0
    assert got["Energy"]["share"] == pytest.approx(500 / 2506)


def test_view_rows_have_every_view_ranked(trades, cells, positions, sectors) -> None:
    out = views.view_rows(cells, views.active_users(trades), positions, sectors)
    assert set(out) == set(views.VIEWS)
    symbols = out["symbols"].orderBy("rank").collect()
    assert [(r["rank"], r["label"]) for r in symbols] == [(1, "AAPL"), (2, "MSFT")]
    assert symbols[0]["metrics"]["trades"] == 3.0
    minutes = [r["label"] for r in out["minutes"].orderBy("rank").collect()]
    assert minutes == ["2026-11-20T14:30Z", "2026-11-20T14:31Z"]
