"""One real web stack per browser-test module: keyspace, topics, accounts, the streaming job, the web
app, and a headless chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from stockafolio.settings import Endpoints, default_var_dir
from tests.browser import webstack

ARTIFACTS = default_var_dir() / "artifacts" / "screenshots"   # var/ is git-ignored; docs/ has copies
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEMO_USER_ID = 7
OTHER_USER_ID = 8


@dataclass
class WebStack:
    url: str
    feed: webstack.TradeFeed
    procs: dict
    keyspace: str


@pytest.fixture(scope="module")
def web(endpoints: Endpoints, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    tmp = tmp_path_factory.mktemp("web")
    name = f"{run_id}_web"
    with ExitStack() as stack:
        ks = stack.enter_context(webstack.keyspace(endpoints, f"{name}_ks"))
        topics = stack.enter_context(webstack.kafka_topics(endpoints, name))
        webstack.seed_accounts(endpoints, ks, {"demo": DEMO_USER_ID, "other": OTHER_USER_ID}, "analyst")
        feed = webstack.TradeFeed(endpoints, topics)
        job_log = tmp / "streaming.log"
        job = stack.enter_context(webstack.streaming_job(ks, topics, tmp / "checkpoint", job_log))
        server = stack.enter_context(webstack.webapp(ks, topics, tmp / "webapp.log"))
        procs = {"streaming job": (job, job_log)}
        yield WebStack(server.url, feed, procs, ks)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(webstack.chromium_path()), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.js_errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
