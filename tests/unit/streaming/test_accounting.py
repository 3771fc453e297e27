"""Holdings accounting: hand-checked cases, the replay guard, and the vectorised batch against a slow
per-trade reference on random trades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from stockafolio.accounting import (
    HOLDING_COLUMNS,
    AccountingError,
    apply_batch,
    empty_cash,
    empty_holdings,
    price_cents,
    replay,
)

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT", "XOM")


def trades(*rows: tuple[int, int, str, str, int, float]) -> pd.DataFrame:
    """(trade_id, user_id, symbol, side, quantity, price) rows; event time = T0 + trade_id seconds."""
    frame = pd.DataFrame(rows, columns=["trade_id", "user_id", "symbol", "side", "quantity", "price"])
    return frame.assign(event_time=[T0 + timedelta(seconds=int(i)) for i in frame["trade_id"]])


def apply(batch: pd.DataFrame, prior: tuple[pd.DataFrame, pd.DataFrame] | None = None,
          opening: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    holdings, cash = prior or (empty_holdings(), empty_cash())
    result = apply_batch(batch, holdings, cash, opening_cash_cents=opening)
    return result.holdings, result.cash


def position(holdings: pd.DataFrame, user: int = 1, symbol: str = "AAPL") -> dict:
    row = holdings.loc[(holdings["user_id"] == user) & (holdings["symbol"] == symbol)]
    assert len(row) == 1
    return row.iloc[0].to_dict()


def state(p: dict) -> tuple[int, int, float, int]:
    """(quantity, cost basis cents, average cost, realized cents) of one position."""
    return p["quantity"], p["cost_basis_cents"], p["avg_cost"], p["realized_pnl_cents"]


def cash_of(cash: pd.DataFrame, user: int = 1) -> int:
    return int(cash.set_index("user_id").loc[user, "cash_cents"])


# ---------------------------------------------------------------- hand-checked cases


def test_buy_sets_quantity_average_cost_and_cash() -> None:
    holdings, cash = apply(trades((1, 1, "AAPL", "buy", 10, 100.0)), opening=1_000_000)
    p = position(holdings)
    assert state(p) == (10, 100_000, 100.0, 0)
    assert (p["last_trade_id"], p["last_trade_time"]) == (1, pd.Timestamp(T0 + timedelta(seconds=1)))
    assert cash_of(cash) == 900_000


def test_average_cost_across_several_buys() -> None:
    holdings, _ = apply(trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 1, "AAPL", "buy", 10, 110.0),
                               (3, 1, "AAPL", "buy", 20, 95.0)))
    p = position(holdings)
    assert (p["quantity"], p["cost_basis_cents"], p["avg_cost"]) == (40, 400_000, 100.0)


def test_partial_sell_realizes_against_average_cost_and_keeps_it() -> None:
    holdings, cash = apply(trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 1, "AAPL", "buy", 10, 110.0),
                                  (3, 1, "AAPL", "sell", 5, 120.0)))
    p = position(holdings)
    assert (p["quantity"], p["avg_cost"], p["realized_pnl_cents"]) == (15, 105.0, 5 * (120 - 105) * 100)
    assert p["cost_basis_cents"] == 157_500
    assert cash_of(cash) == -100_000 - 110_000 + 60_000


def test_sell_to_zero_resets_average_cost() -> None:
    holdings, cash = apply(trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 1, "AAPL", "buy", 10, 110.0),
                                  (3, 1, "AAPL", "sell", 5, 120.0), (4, 1, "AAPL", "sell", 15, 90.0)))
    p = position(holdings)
    assert (p["quantity"], p["cost_basis_cents"], p["avg_cost"]) == (0, 0, 0.0)
    assert p["realized_pnl_cents"] == 7_500 - 22_500
    assert cash_of(cash) == p["realized_pnl_cents"]  # a closed round trip: cash moved by the P&L


def test_sub_cent_average_cost_rounds_the_removed_basis_and_a_round_trip_is_exact() -> None:
    batch = trades((1, 1, "AAPL", "buy", 1, 1.00), (2, 1, "AAPL", "buy", 2, 1.01),
                   (3, 1, "AAPL", "sell", 1, 2.00))
    holdings, _ = apply(batch)
    p = position(holdings)  # basis 302 for 3 shares: the sold share takes round(100.67) = 101
    assert (p["quantity"], p["cost_basis_cents"], p["realized_pnl_cents"]) == (2, 201, 99)
    holdings, _ = apply(trades((4, 1, "AAPL", "sell", 2, 2.00)), (holdings, empty_cash()))
    assert position(holdings)["realized_pnl_cents"] == 600 - 302


def test_short_cover_and_flip_through_zero() -> None:
    holdings, _ = apply(trades((1, 1, "XOM", "sell", 10, 50.0), (2, 1, "XOM", "buy", 4, 40.0)))
    p = position(holdings, symbol="XOM")
    assert state(p) == (-6, -30_000, 50.0, 4_000)
    holdings, _ = apply(trades((3, 1, "XOM", "buy", 10, 45.0)), (holdings, empty_cash()))
    p = position(holdings, symbol="XOM")
    assert state(p) == (4, 18_000, 45.0, 7_000)


def test_users_and_symbols_are_kept_apart() -> None:
    holdings, cash = apply(trades((1, 1, "AAPL", "buy", 1, 10.0), (2, 2, "AAPL", "buy", 2, 20.0),
                                  (3, 1, "MSFT", "buy", 3, 30.0)))
    assert len(holdings) == 3
    assert position(holdings, 2)["quantity"] == 2 and position(holdings, 1, "MSFT")["quantity"] == 3
    assert (cash_of(cash, 1), cash_of(cash, 2)) == (-10_000, -4_000)


def test_trades_are_applied_in_trade_id_order_whatever_the_row_order() -> None:
    batch = trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 1, "AAPL", "sell", 10, 120.0),
                   (3, 1, "AAPL", "buy", 5, 90.0))
    in_order, _ = apply(batch)
    shuffled, _ = apply(batch.iloc[[2, 0, 1]])
    pd.testing.assert_frame_equal(in_order, shuffled)
    assert position(in_order)["realized_pnl_cents"] == 20_000


# ---------------------------------------------------------------- replay guard


def test_replayed_batch_changes_nothing() -> None:
    batch = trades((1, 1, "AAPL", "buy", 10, 100.0), (2, 1, "AAPL", "sell", 4, 110.0))
    first = apply_batch(batch, empty_holdings(), empty_cash())
    again = apply_batch(batch, first.holdings, first.cash)
    assert again.applied.empty and again.cash.empty
    pd.testing.assert_frame_equal(again.holdings, first.holdings)


def test_replayed_trade_is_skipped_and_new_one_applied() -> None:
    first = apply_batch(trades((5, 1, "AAPL", "buy", 10, 100.0)), empty_holdings(), empty_cash())
    later = apply_batch(trades((5, 1, "AAPL", "buy", 10, 100.0), (6, 1, "AAPL", "buy", 10, 200.0)),
                        first.holdings, first.cash)
    assert later.applied["trade_id"].tolist() == [6]
    assert position(later.holdings)["quantity"] == 20 and cash_of(later.cash) == -300_000


def test_duplicate_trade_ids_in_one_batch_count_once() -> None:
    holdings, cash = apply(trades((1, 1, "AAPL", "buy", 10, 100.0), (1, 1, "AAPL", "buy", 10, 100.0)))
    assert position(holdings)["quantity"] == 10 and cash_of(cash) == -100_000


def test_bad_side_and_missing_columns_are_refused() -> None:
    with pytest.raises(AccountingError, match=r"side must be 'buy' or 'sell', got 'hold' \(trade 1\)"):
        apply(trades((1, 1, "AAPL", "hold", 10, 100.0)))
    with pytest.raises(AccountingError, match=r"trades: expected columns .* missing \['price'\]"):
        apply(trades((1, 1, "AAPL", "buy", 10, 100.0)).drop(columns="price"))


# ---------------------------------------------------------------- against a slow reference


def reference(batch: pd.DataFrame, opening: int = 0) -> tuple[dict, dict]:
    """One Python step per trade, exact fractions: (user, symbol) -> (q, basis, realized, last id)."""
    book: dict[tuple[int, str], tuple[int, int, int, int]] = {}
    cash: dict[int, int] = {}
    for t in batch.drop_duplicates("trade_id").sort_values("trade_id").itertuples():
        q, basis, realized, _ = book.get((t.user_id, t.symbol), (0, 0, 0, 0))
        price = round(Fraction(t.price) * 100)
        d = t.quantity if t.side == "buy" else -t.quantity
        cash[t.user_id] = cash.get(t.user_id, opening) - d * price
        if q * d < 0:
            closed = min(abs(d), abs(q))
            share = Fraction(basis * closed, abs(q))
            removed = int(abs(share) + Fraction(1, 2)) * (1 if share >= 0 else -1)
            realized += (1 if q > 0 else -1) * closed * price - removed
            basis -= removed
            q += closed if d > 0 else -closed
            d += -closed if d > 0 else closed
        q, basis = q + d, basis + d * price
        book[(t.user_id, t.symbol)] = (q, basis, realized, t.trade_id)
    return book, cash


def random_trades(seed: int, n: int, users: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "trade_id": rng.permutation(np.arange(1, n + 1) * 3),
        "user_id": rng.integers(1, users + 1, n),
        "symbol": rng.choice(SYMBOLS, n),
        "side": rng.choice(["buy", "sell"], n, p=[0.55, 0.45]),
        "quantity": rng.integers(1, 300, n),
        "price": np.round(rng.uniform(0.5, 900.0, n), 2),
    })
    return frame.assign(event_time=pd.Timestamp(T0) + pd.to_timedelta(frame["trade_id"], unit="ms"))


def as_dicts(holdings: pd.DataFrame, cash: pd.DataFrame) -> tuple[dict, dict]:
    book = {(int(r.user_id), r.symbol): (int(r.quantity), int(r.cost_basis_cents), int(r.realized_pnl_cents),
                                         int(r.last_trade_id)) for r in holdings.itertuples()}
    return book, {int(u): int(c) for u, c in zip(cash["user_id"], cash["cash_cents"], strict=True)}


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_batch_equals_the_slow_reference(seed: int) -> None:
    batch = random_trades(seed, n=3_000, users=25 if seed % 2 else 400)
    assert as_dicts(*apply(batch, opening=5_000_000)) == reference(batch, opening=5_000_000)


@pytest.mark.parametrize("seed", range(4))
def test_replay_on_arrays_equals_apply_batch_on_an_empty_state(seed: int) -> None:
    batch = random_trades(200 + seed, n=3_000, users=25 if seed % 2 else 400)
    batch = pd.concat([batch, batch.sample(50, random_state=seed)])  # duplicate ids count once
    codes = {s: i for i, s in enumerate(SYMBOLS)}
    opening = 5_000_000 if seed % 2 else (lambda users: users * 100)
    held, cash = replay(batch["trade_id"].to_numpy(), batch["user_id"].to_numpy(),
                        batch["symbol"].map(codes).to_numpy(),
                        np.where(batch["side"] == "buy", batch["quantity"], -batch["quantity"]),
                        price_cents(batch["price"].to_numpy()),
                        batch["event_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64), opening)
    want = apply_batch(batch, empty_holdings(), empty_cash(), opening)
    held = held.assign(symbol=np.asarray(SYMBOLS)[held["symbol"]])
    assert as_dicts(held, cash) == as_dicts(want.holdings, want.cash)
    times = want.holdings.set_index(["user_id", "symbol"])["last_trade_time"]
    got = held.set_index(["user_id", "symbol"])["last_trade_time"]
    assert (got.reindex(times.index).to_numpy()
            == times.dt.tz_convert(None).to_numpy(dtype="datetime64[ms]").astype(np.int64)).all()
    assert (cash.set_index("user_id")["cash_last_trade_id"]
            == want.cash.set_index("user_id")["cash_last_trade_id"].reindex(cash["user_id"])).all()


def test_replay_of_nothing_is_empty() -> None:
    none = np.zeros(0, dtype=np.int64)
    held, cash = replay(none, none, none, none, none, none)
    assert held.empty and cash.empty and list(cash.columns) == ["user_id", "cash_cents", "cash_last_trade_id"]


@pytest.mark.parametrize("seed", range(4))
def test_two_batches_equal_one_batch(seed: int) -> None:
    batch = random_trades(100 + seed, n=2_000, users=30)
    cut = np.random.default_rng(seed).integers(1, len(batch))
    early = batch["trade_id"] <= np.sort(batch["trade_id"].to_numpy())[cut]
    first = apply_batch(batch[early], empty_holdings(), empty_cash())
    # the second batch also replays part of the first, as a restart from an older offset would
    second = apply_batch(pd.concat([batch[early].sample(frac=0.5, random_state=seed), batch[~early]]),
                         first.holdings, first.cash)
    merged_holdings = pd.concat([first.holdings, second.holdings]).drop_duplicates(["user_id", "symbol"],
                                                                                   keep="last")
    merged_cash = pd.concat([first.cash, second.cash]).drop_duplicates("user_id", keep="last")
    assert as_dicts(merged_holdings, merged_cash) == as_dicts(*apply(batch))


def test_long_only_matches_the_textbook_average_cost_formula_to_the_cent() -> None:
    """avg' = (q*avg + n*p)/(q+n) on buys, realized += n*(p - avg) on sells, in floats: the integer
    basis differs from it only by the half-cent rounding of each sell."""
    rng = np.random.default_rng(3)
    rows, q, avg, realized, sells = [], 0, 0.0, 0.0, 0
    for i in range(1, 400):
        n = int(rng.integers(1, 50))
        side = "buy" if q < n or rng.random() < 0.6 else "sell"
        price = round(float(rng.uniform(10, 500)), 2)
        rows.append((i, 1, "AAPL", side, n, price))
        if side == "buy":
            avg, q = (q * avg + n * price) / (q + n), q + n
        else:
            realized, q, sells = realized + n * (price - avg), q - n, sells + 1
            avg = avg if q else 0.0
    p = position(apply(trades(*rows))[0])
    assert p["quantity"] == q
    assert abs(p["realized_pnl_cents"] - realized * 100) <= sells * 0.5 + 1e-6
    assert abs(p["avg_cost"] - avg) < 0.01


def test_an_empty_batch_changes_nothing() -> None:
    result = apply_batch(trades(), empty_holdings(), empty_cash())
    assert result.holdings.empty and result.cash.empty and result.applied.empty


def test_replay_after_a_crash_that_wrote_cash_but_only_some_holdings() -> None:
    batch = random_trades(7, n=500, users=5)
    whole = apply_batch(batch, empty_holdings(), empty_cash())
    written = whole.holdings.iloc[: len(whole.holdings) // 2]  # the other rows never landed
    replay = apply_batch(batch, written, whole.cash)
    assert replay.cash.empty  # every trade is below the users' cash guards
    holdings = pd.concat([written, replay.holdings]).drop_duplicates(["user_id", "symbol"], keep="last")
    assert as_dicts(holdings, whole.cash) == as_dicts(whole.holdings, whole.cash)


def test_guards_stay_exact_for_live_trade_ids_when_the_batch_has_a_new_user() -> None:
    """Live trade ids are ~2**59: a float64 detour (a left merge or a reindex with a missing user)
    rounded the guards by up to 128 ids, so a user's next trade was skipped for the position and the
    cash, silently, whenever the same batch held a user without a stored row."""
    base = 939_916_338_183_665_488

    def live(*rows: tuple[int, int, str]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["trade_id", "user_id", "symbol"])
        return frame.assign(side="buy", quantity=1, price=10.0, event_time=T0)

    first = apply_batch(live((base, 1, "AAPL")), empty_holdings(), empty_cash(), 1_000_000)
    second = apply_batch(live((base + 5, 1, "AAPL"), (base + 6, 2, "MSFT")),
                         first.holdings[HOLDING_COLUMNS], first.cash, 1_000_000)
    held = second.holdings.set_index("user_id")
    assert held.loc[1, "quantity"] == 2 and held.loc[1, "last_trade_id"] == base + 5
    cash = second.cash.set_index("user_id")
    assert cash.loc[1, "cash_cents"] == 1_000_000 - 2 * 1_000
    assert cash.loc[1, "cash_last_trade_id"] == base + 5 and cash.loc[2, "cash_last_trade_id"] == base + 6
