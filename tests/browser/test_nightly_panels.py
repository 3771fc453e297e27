"""The firm dashboard on a simulated market: the clock is said to be simulated, "today" is the market's
day (not the browser's or the server's), and the nightly panels show the last complete market day's
views, rankings and reconciliation, as the nightly batch writes them (its own Cassandra writers),
formatted (money, percentages) in tables that fit their boxes. No streaming job: the market's clock
is one price tick in Q4, five days and some hours behind the wall clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect

from stockafolio import cql
from stockafolio.settings import Endpoints
from tests.browser import webstack
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.integration
MARKET_NOW = datetime(2026, 12, 2, 15, 4, 5, tzinfo=UTC)  # Wednesday, 10:04 in New York: in progress
LAST_COMPLETE = date(2026, 12, 1)                         # so the nightly's day is Tuesday
VIEWS = {
    "symbols": [("NVDA", {"trades": 1204.0, "notional": 82_201_946.73, "imbalance": 0.1234}),
                ("AAPL", {"trades": 998.0, "notional": 41_000_000.5, "imbalance": -0.05})],
    "sectors": [("Information Technology",
                 {"trades": 2202.0, "notional": 123_201_947.23, "imbalance": 0.04})],
    "minutes": [(f"2026-12-01T14:{m:02d}Z", {"trades": float(m), "notional": 1000.0 * m, "active_users": 3.0})
                for m in range(30, 60)],
    "portfolio_sizes": [("0-1000", {"users": 10.0, "share": 0.1}),
                        ("1000000+", {"users": 90.0, "share": 0.9})],
    "holdings_count": [("1", {"users": 60.0, "share": 0.6}), ("10+", {"users": 40.0, "share": 0.4})],
    "crowded_names": [("NVDA", {"holders": 5000.0, "share": 0.42, "long_holders": 4990.0,
                                "short_holders": 10.0})],
    "sector_exposure": [("Information Technology",
                         {"long": 9_876_543.21, "short": -12_345.0, "net": 9_864_198.21,
                          "gross": 9_888_888.21, "share": 0.61})],
}


@pytest.fixture(scope="module")
def simulated(endpoints: Endpoints, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from batch import store as batch_store
    from batch.reconcile import Report

    tmp: Path = tmp_path_factory.mktemp("nightly-web")
    with webstack.keyspace(endpoints, f"{run_id}_nightly_ks") as ks:
        webstack.seed_accounts(endpoints, ks, {}, "analyst")
        cluster, session = cql.connect(endpoints.cassandra)
        try:
            session.execute(f"INSERT INTO {ks}.latest_price_by_market (market, symbol, price, event_time) "  # noqa: S608
                            "VALUES ('us', 'NVDA', 150.0, %s)", (MARKET_NOW,))
            written = datetime.now(UTC)
            for view, rows in VIEWS.items():
                frame = pd.DataFrame([{"rank": i + 1, "label": label, "metrics": metrics}
                                      for i, (label, metrics) in enumerate(rows)])
                batch_store.write_view(session, ks, LAST_COMPLETE, view, frame, written)
            for metric, value in (("trades", 321.0), ("notional", 4_567_890.12)):
                frame = pd.DataFrame([{"rank": 1, "user_id": 42, "value": value}])
                batch_store.write_top_users(session, ks, LAST_COMPLETE, metric, frame, written)
            report = Report(users_checked=1_234, holdings_checked=5_678, holding_mismatches=0,
                            cash_mismatches=0, skipped=12)
            batch_store.write_report(session, ks, LAST_COMPLETE, report, written)
        finally:
            cluster.shutdown()
        with webstack.webapp(ks, None, tmp / "webapp.log") as server:
            yield server.url


def test_a_simulated_clock_is_said_and_the_nightly_panels_read_well(simulated: str, page) -> None:
    url = simulated
    page.goto(f"{url}/login")
    page.fill("#username", "analyst")
    page.fill("#password", webstack.PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(f"{url}/firm")
    expect(page.locator("#day")).to_have_text("2026-12-02")
    expect(page.locator("#as-of")).to_have_text("15:04:05 UTC")
    clock = page.locator("#market-clock")
    expect(clock).to_be_visible()
    expect(clock).to_contain_text("Simulated market clock: market time 2026-12-02 15:04:05 UTC")
    expect(clock).to_contain_text("behind the wall clock")

    for day_label in ("#nightly-day", "#top-users-day", "#recon-day"):
        expect(page.locator(day_label)).to_have_text("of 2026-12-01")
    expect(page.locator("#nightly-status")).to_be_hidden()
    views = page.locator("#nightly-views [data-view]")
    expect(views).to_have_count(len(VIEWS))
    nvda = page.locator('[data-view="symbols"] tbody tr').first
    expect(nvda.locator("td").nth(0)).to_have_text("NVDA")
    expect(nvda.locator("td").nth(2)).to_have_text(re.compile(r"^\$82\.20?M$"))  # trailing 0: per ICU
    expect(nvda.locator("td").nth(3)).to_have_text("+12.3%")
    expect(page.locator('[data-view="portfolio_sizes"] tbody tr td').first).to_have_text("$0-$1K")
    expect(page.locator('[data-view="sector_exposure"] tbody td').nth(4)).to_have_text("61.0%")
    busiest = page.locator('[data-view="minutes"] tbody tr')
    expect(busiest).to_have_count(10)
    expect(busiest.first.locator("td").first).to_have_text("14:59")
    # no raw numbers: every money cell has a currency sign, every share a percent sign
    cells = page.locator("#nightly-views td.num").all_inner_texts()
    assert cells and all(re.fullmatch(r"[+-]?\$[\d.,]+[KMB]?|[+-]?[\d.]+%|[\d,]+", c) for c in cells), cells
    # every table fits its box: nothing to scroll sideways
    overflowing = page.evaluate("""[...document.querySelectorAll('#nightly-views .table-wrap')]
        .filter((w) => w.scrollWidth > w.clientWidth + 1).map((w) => w.parentElement.dataset.view)""")
    assert overflowing == []

    top = page.locator("#top-users tbody tr").first.locator("td")
    expect(top.nth(1)).to_have_text("42")
    expect(top.nth(4)).to_have_text("$4.57M")
    expect(page.locator("#reconciliation")).to_contain_text("Users checked1,234")
    assert page.js_errors == []
    screenshot(page, "firm-dashboard-nightly")
