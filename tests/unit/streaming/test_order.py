"""Which trades of a micro-batch are new, replays, duplicates or out of order (streaming/order.py)."""

from __future__ import annotations

import pandas as pd

from streaming.order import DUPLICATE, NEW, OUT_OF_ORDER, REPLAY, classify


def batch(*rows: tuple[int, int, int, int]) -> pd.DataFrame:
    """(user, trade id, partition, offset) rows."""
    return pd.DataFrame(rows, columns=["user_id", "trade_id", "partition", "offset"])


def guards(*rows: tuple) -> pd.DataFrame:
    """(user, last applied trade id, last partition, last offset) rows; None: stored before offsets."""
    return pd.DataFrame(rows, columns=["user_id", "cash_last_trade_id", "last_partition", "last_offset"])


def test_a_user_without_state_takes_rising_ids() -> None:
    assert classify(batch((1, 5, 0, 10), (1, 7, 0, 11)), guards()).tolist() == [NEW, NEW]


def test_ids_below_the_guard_or_an_earlier_trade_are_out_of_order_and_equal_ones_duplicates() -> None:
    trades = batch((1, 10, 0, 100), (1, 12, 0, 101), (1, 11, 0, 102), (1, 12, 0, 103), (1, 9, 0, 104),
                   (1, 13, 0, 105))
    got = classify(trades, guards((1, 9, 0, 99)))
    assert got.tolist() == [NEW, NEW, OUT_OF_ORDER, DUPLICATE, DUPLICATE, NEW]


def test_offset_order_decides_not_row_order() -> None:
    trades = batch((1, 12, 0, 101), (1, 10, 0, 100))  # rows shuffled: offset 100 came first
    assert classify(trades, guards()).tolist() == [NEW, NEW]
    trades = batch((1, 10, 0, 101), (1, 12, 0, 100))
    assert classify(trades, guards()).tolist() == [OUT_OF_ORDER, NEW]


def test_a_replayed_batch_is_replays_not_dead_letters() -> None:
    """The state after a batch: guard 12 at offset 101. Running the same offsets again, and the
    topic again from a new checkpoint, finds replays; a new record past the offset with a low id does
    not pass for one."""
    stored = guards((1, 12, 0, 101))
    assert classify(batch((1, 10, 0, 100), (1, 12, 0, 101)), stored).tolist() == [REPLAY, REPLAY]
    assert classify(batch((1, 11, 0, 102), (1, 13, 0, 103)), stored).tolist() == [OUT_OF_ORDER, NEW]


def test_a_replay_keeps_its_refusals() -> None:
    """An out-of-order trade was dead-lettered, then the state written with its offset: the replay
    sees it as read, so the dead letter is not sent twice and nothing is applied."""
    first = classify(batch((1, 20, 0, 5), (1, 15, 0, 6)), guards((1, 10, 0, 4)))
    assert first.tolist() == [NEW, OUT_OF_ORDER]
    again = classify(batch((1, 20, 0, 5), (1, 15, 0, 6)), guards((1, 20, 0, 6)))
    assert again.tolist() == [REPLAY, REPLAY]


def test_a_recreated_topic_starts_offsets_again_but_new_ids_are_new() -> None:
    assert classify(batch((1, 30, 0, 0)), guards((1, 20, 0, 500))).tolist() == [NEW]


def test_state_stored_before_offsets_existed_keeps_the_old_replay_rule() -> None:
    stored = guards((1, 12, None, None))
    assert classify(batch((1, 11, 0, 100), (1, 13, 0, 101)), stored).tolist() == [REPLAY, NEW]


def test_another_partition_is_not_the_stored_one() -> None:
    assert classify(batch((1, 8, 3, 50)), guards((1, 12, 0, 100))).tolist() == [OUT_OF_ORDER]


def test_users_are_independent_and_dead_letters_do_not_raise_the_bar() -> None:
    trades = batch((1, 50, 0, 1), (2, 5, 1, 1), (1, 40, 0, 2), (1, 45, 0, 3), (2, 6, 1, 2), (1, 60, 0, 4))
    got = classify(trades, guards((2, 4, 1, 0)))
    assert got.tolist() == [NEW, NEW, OUT_OF_ORDER, OUT_OF_ORDER, NEW, NEW]


def test_the_same_id_on_two_users_is_two_trades() -> None:
    assert classify(batch((1, 7, 0, 1), (2, 7, 1, 1)), guards()).tolist() == [NEW, NEW]


def test_an_empty_batch() -> None:
    assert classify(batch(), guards()).tolist() == []
