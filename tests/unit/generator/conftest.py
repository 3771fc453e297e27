"""Shared fixtures of the generator's unit tests: the calibrated market and small generators."""

from __future__ import annotations

from datetime import date

import pytest

from generator.clock import SessionClock
from generator.market import Market
from generator.trades import TradeGenerator
from stockafolio.reference import load_factor_model, load_universe

DAY = date(2026, 11, 20)  # a Friday, New York on standard time (09:30 = 14:30 UTC)


@pytest.fixture(scope="session")
def market() -> Market:
    return Market.from_model(load_factor_model(), load_universe())


def make_generator(market: Market, users: int = 1_000, seed: int = 7, run_id: int = 1234,
                   short_selling: bool = False, slots: int = 6) -> TradeGenerator:
    return TradeGenerator.create(market, users, seed, run_id, SessionClock(DAY), slots=slots,
                                 short_selling=short_selling)
