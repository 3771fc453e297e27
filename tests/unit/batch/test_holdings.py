"""The rebuild applies the stream's accounting per group of users; splitting users into groups changes
nothing, and the numbers are the hand-computed average-cost ones."""

from __future__ import annotations

import pandas as pd
import pytest

from batch import holdings
from tests.unit.batch.conftest import T0, TRADE_DDL, trade

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyspark 3.5's pandas conversions

TRADES = [
    trade(1, 1, "AAPL", "buy", 10, 100.00, 0),
    trade(2, 1, "AAPL", "buy", 10, 110.00, 1),
    trade(3, 1, "AAPL", "sell", 5, 120.00, 2),
    trade(4, 2, "MSFT", "buy", 3, 50.01, 3),
    trade(5, 1, "MSFT", "buy", 1, 10.00, 4),
    trade(6, 2, "MSFT", "sell", 3, 40.00, 5),
    trade(3, 1, "AAPL", "sell", 5, 120.00, 2),  # a duplicate counts once
]


def frame() -> pd.DataFrame:
    cols = [c.split()[0] for c in TRADE_DDL.split(", ")]
    return pd.DataFrame(TRADES, columns=cols)


def test_rebuild_group_matches_hand_computed_average_cost() -> None:
    got = holdings.rebuild_group(frame(), opening_cash_cents=1_000_000).set_index(["user_id", "symbol"])
    aapl = got.loc[(1, "AAPL")]
    # basis 100000 + 110000 = 210000 for 20; selling 5 removes 52500 and realizes 60000 - 52500
    assert (aapl.quantity, aapl.cost_basis_cents, aapl.realized_pnl_cents, aapl.last_trade_id) == (
        15,
        157500,
        7500,
        3,
    )
    msft2 = got.loc[(2, "MSFT")]
    assert (msft2.quantity, msft2.cost_basis_cents, msft2.realized_pnl_cents) == (0, 0, 12000 - 15003)
    assert aapl.cash_cents == 1_000_000 - 100000 - 110000 + 60000 - 1000
    assert msft2.cash_cents == 1_000_000 - 15003 + 12000 and msft2.cash_last_trade_id == 6


def test_rebuild_in_spark_groups_equals_one_pandas_call(spark) -> None:
    trades = spark.createDataFrame(TRADES, TRADE_DDL)
    for groups in (1, 3):
        got = holdings.rebuild(trades, groups, 0).toPandas().sort_values(["user_id", "symbol"])
        want = holdings.rebuild_group(frame(), 0).sort_values(["user_id", "symbol"])
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False
        )


def test_rebuild_with_the_symbols_given_equals_found(spark) -> None:
    trades = spark.createDataFrame(TRADES, TRADE_DDL)
    found = holdings.rebuild(trades, 2, 0).toPandas().sort_values(["user_id", "symbol"])
    given = holdings.rebuild(trades, 2, 0, ["AAPL", "MSFT", "XOM"]).toPandas()
    given = given.sort_values(["user_id", "symbol"])
    pd.testing.assert_frame_equal(found.reset_index(drop=True), given.reset_index(drop=True))


def test_rebuild_refuses_a_symbol_missing_from_the_list(spark) -> None:
    trades = spark.createDataFrame(TRADES, TRADE_DDL)
    with pytest.raises(Exception, match="missing from the symbol list"):
        holdings.rebuild(trades, 2, 0, ["AAPL"]).collect()


def test_the_day_activity_is_on_each_users_first_row_only(spark) -> None:
    day = T0.date()
    earlier = trade(0, 1, "XOM", "buy", 7, 30.00, -86_400)  # the day before: not today's activity
    trades = spark.createDataFrame([*TRADES, earlier], TRADE_DDL)
    got = holdings.rebuild(trades, 2, 0, day=day).toPandas().sort_values(["user_id", "symbol"])
    got = got.set_index(["user_id", "symbol"])[["day_trades", "day_notional_cents"]]
    # user 1: AAPL 100000 + 110000 + 60000 (the duplicate once), MSFT 1000; user 2: 15003 + 12000
    assert got.to_dict("index") == {
        (1, "AAPL"): {"day_trades": 4, "day_notional_cents": 271_000},
        (1, "MSFT"): {"day_trades": 0, "day_notional_cents": 0},
        (1, "XOM"): {"day_trades": 0, "day_notional_cents": 0},
        (2, "MSFT"): {"day_trades": 2, "day_notional_cents": 27_003},
    }
    without = holdings.rebuild(trades, 2, 0).toPandas()
    assert (without["day_trades"] == 0).all() and (without["day_notional_cents"] == 0).all()


def test_groups_scale_with_trades() -> None:
    assert holdings.groups_for(10) == 2 and holdings.groups_for(100_000_000) == 100


def test_opening_is_the_constant_when_given() -> None:
    assert holdings.opening(500, seed=1) == 500
