"""Both dashboards in headless chromium against the real path: trades into Kafka, the streaming job
into Cassandra and portfolio-events, the web app, Socket.IO, the browser. Screenshots of both
dashboards land in var/artifacts/screenshots/."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser import webstack
from tests.browser.conftest import DEMO_USER_ID, OTHER_USER_ID, WebStack, screenshot

pytestmark = pytest.mark.integration
PRICES = {"AAPL": 200.0, "MSFT": 400.0, "NVDA": 150.0, "JPM": 250.0, "XOM": 110.0}
PIPELINE_S = 240   # the streaming job's Spark start-up and first batch: 60-100 s on a busy 2-core machine
LIVE_S = 60        # one trade through a micro-batch: 3-12 s measured at load average ~20


def log_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", webstack.PASSWORD)
    page.click("#login-submit")


def events_received(page, name: str) -> int:
    return int(page.evaluate(f"Number(document.body.dataset.events{name} || 0)"))


@pytest.fixture(scope="module")
def traded(web: WebStack) -> WebStack:
    """Opening trades for the demo user and another user; wait until the API shows them."""
    feed = web.feed
    feed.prices(PRICES)
    feed.trade(DEMO_USER_ID, "AAPL", "buy", 10, 200.0)
    feed.trade(DEMO_USER_ID, "MSFT", "buy", 5, 400.0)
    for i, symbol in enumerate(("AAPL", "JPM", "XOM", "AAPL")):
        feed.trade(OTHER_USER_ID, symbol, "buy" if i % 2 == 0 else "sell", 3 + i, PRICES[symbol])
    feed.flush()
    began = time.monotonic()
    session = webstack.login(web.url, "demo")

    def holdings() -> set[str] | None:
        r = session.get(f"{web.url}/api/v1/portfolio", timeout=10)
        found = {h["symbol"] for h in r.json().get("holdings", [])} if r.status_code == 200 else set()
        return found if {"AAPL", "MSFT"} <= found else None

    webstack.wait_for(holdings, "the demo user's opening holdings in the API", PIPELINE_S, web.procs)
    print(f"opening trades -> API: {time.monotonic() - began:.0f} s (includes the job's Spark start-up)")
    return web


def test_user_sees_holdings_and_a_trade_arrive_live(traded: WebStack, page) -> None:
    url = traded.url
    log_in(page, url, "demo")
    expect(page).to_have_url(f"{url}/me")
    expect(page.locator("#current-user")).to_have_text("demo")
    expect(page.locator('#holdings tbody tr[data-symbol="AAPL"]')).to_be_visible()
    expect(page.locator('#holdings tbody tr[data-symbol="MSFT"]')).to_be_visible()
    expect(page.locator("#live-badge")).to_have_attribute("data-state", "live", timeout=15_000)
    market_value = page.locator('[data-total="market_value"]')
    expect(market_value).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))
    before = market_value.inner_text()
    events_before = events_received(page, "Portfolio")

    trade = traded.feed.trade(DEMO_USER_ID, "NVDA", "buy", 3, 150.0)
    traded.feed.flush()
    produced = time.monotonic()
    new_row = page.locator(f'#trades tbody tr[data-trade-id="{trade.trade_id}"]')
    expect(new_row).to_be_visible(timeout=LIVE_S * 1000)
    expect(page.locator('#holdings tbody tr[data-symbol="NVDA"]')).to_be_visible()
    seen = time.monotonic() - produced
    # it came over the socket: a `portfolio` event arrived, and the API fallback only polls while
    # the badge is not "live"
    assert events_received(page, "Portfolio") > events_before
    expect(page.locator("#live-badge")).to_have_attribute("data-state", "live")
    expect(market_value).not_to_have_text(before)
    print(f"trade -> browser: {seen:.1f} s")

    # prices move: the holdings are re-marked live (the `prices` event), gains green, losses red
    prices_before = events_received(page, "Prices")
    traded.feed.prices({"AAPL": 210.0, "MSFT": 390.0})
    traded.feed.flush()
    pnl = {s: page.locator(f'#holdings tbody tr[data-symbol="{s}"] td').nth(7) for s in ("AAPL", "MSFT")}
    expect(pnl["AAPL"]).to_have_text("+$100.00", timeout=LIVE_S * 1000)
    expect(pnl["AAPL"]).to_have_class(re.compile(r"\bpos\b"))
    expect(pnl["MSFT"]).to_have_text("-$50.00")
    expect(pnl["MSFT"]).to_have_class(re.compile(r"\bneg\b"))
    assert events_received(page, "Prices") > prices_before

    page.click('#holdings th[data-key="symbol"]')
    expect(page.locator("#holdings tbody tr").first).to_have_attribute("data-symbol", "AAPL")
    page.click('#holdings th[data-key="symbol"]')
    expect(page.locator("#holdings tbody tr").first).to_have_attribute("data-symbol", "NVDA")
    assert page.js_errors == []
    screenshot(page, "user-dashboard")

    refused = page.goto(f"{url}/firm")
    assert refused is not None and refused.status == 403
    expect(page.locator("#error-status")).to_have_text("403")

    page.goto(f"{url}/me")
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"{url}/me")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fme$|/login\?next=/me$"))


def test_firm_analyst_sees_the_firm_dashboard(traded: WebStack, page) -> None:
    url = traded.url
    produced = traded.feed.sequence
    session = webstack.login(url, "analyst")

    def activity_total() -> int | None:
        minutes = session.get(f"{url}/api/v1/firm/activity", timeout=10).json()["minutes"]
        total = sum(m["trades"] for m in minutes)
        return total if total == produced else None

    webstack.wait_for(activity_total, f"all {produced} trades in the firm's activity per minute", LIVE_S,
                      traded.procs)
    log_in(page, url, "analyst")
    expect(page).to_have_url(f"{url}/firm")
    expect(page.locator("#live-badge")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator('#symbols tbody tr[data-symbol="AAPL"]')).to_be_visible(timeout=LIVE_S * 1000)
    expect(page.locator('#sectors tbody tr[data-sector="Information Technology"]')).to_be_visible()
    expect(page.locator("#activity-empty")).to_be_hidden()
    expect(page.locator("#batches tbody tr").first).to_be_visible()
    expect(page.locator("#nightly-status")).to_be_visible()   # the nightly batch has not run here
    expect(page.locator('[data-firm="trades"]')).to_have_text(str(produced))
    assert page.js_errors == []
    screenshot(page, "firm-dashboard")
