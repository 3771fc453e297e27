"""The JSON API against a fake store: shapes, the authorization matrix, bad parameters, errors."""

from __future__ import annotations

import random
import string
from urllib.parse import quote

import pytest

from tests.unit.webapp.conftest import USER_A, USER_B, login

USER_ROUTES = ["/api/v1/portfolio", "/api/v1/portfolio/trades", "/api/v1/portfolio/equity",
               "/api/v1/portfolio/historical-risk"]
FIRM_ROUTES = ["/api/v1/firm/activity", "/api/v1/firm/symbols", "/api/v1/firm/sectors",
               "/api/v1/firm/symbol/AAPL", "/api/v1/firm/top-users", "/api/v1/firm/nightly",
               "/api/v1/firm/health"]
ANY_ROUTES = ["/api/v1/me", "/api/v1/prices", "/api/v1/reference/sectors"]


@pytest.mark.parametrize("path", USER_ROUTES + FIRM_ROUTES + ANY_ROUTES)
def test_anonymous_gets_401_json(client, path):
    r = client.get(path)
    assert r.status_code == 401
    assert r.get_json() == {"error": {"status": 401, "message": "log in first"}}


@pytest.mark.parametrize("path", FIRM_ROUTES)
def test_user_gets_403_on_firm_routes(as_alice, path):
    assert as_alice.get(path).status_code == 403


@pytest.mark.parametrize("path", USER_ROUTES)
def test_firm_gets_403_on_portfolio_routes(as_analyst, path):
    assert as_analyst.get(path).status_code == 403


@pytest.mark.parametrize("path", FIRM_ROUTES + ANY_ROUTES)
def test_firm_reads_firm_routes(as_analyst, path):
    assert as_analyst.get(path).status_code == 200


def test_user_a_never_reads_user_b(as_alice, store):
    """Whatever the parameters say, only alice's user id reaches the store."""
    tricks = [f"?user_id={USER_B}", f"?user={USER_B}", f"?user_id={USER_B}&user_id={USER_B}",
              f"?limit=5&user_id={USER_B}"]
    for path in USER_ROUTES:
        for trick in tricks:
            r = as_alice.get(path + trick)
            assert r.status_code == 200
            assert str(USER_B) not in r.get_data(as_text=True).replace(str(2**40), "")
    assert {c[1] for c in store.calls
            if c[0] in ("portfolio", "trades", "equity", "historical_risk")} == {USER_A}
    assert as_alice.get(f"/api/v1/portfolio/{USER_B}").status_code == 404
    assert as_alice.get("/api/v1/portfolio").get_json()["user_id"] == USER_A


def test_historical_risk_newest_night_first_in_dollars(as_alice):
    (night,) = as_alice.get("/api/v1/portfolio/historical-risk").get_json()["nights"]
    assert night["day"] == "2026-11-20" and night["var_95"] == 40.5 and night["market_value"] == 1600.0
    assert night["scenarios"] == 1258 and night["computed_at"].endswith("Z")
    days = [n["day"] for n in as_alice.get("/api/v1/portfolio/historical-risk?limit=3").get_json()["nights"]]
    assert days == ["2026-11-20", "2026-11-19", "2026-11-18"]
    assert as_alice.get("/api/v1/portfolio/historical-risk?limit=0").status_code == 400


def test_historical_risk_is_empty_before_the_first_night(client):
    assert login(client, "bob").status_code == 302
    assert client.get("/api/v1/portfolio/historical-risk").get_json() == {"nights": []}


def test_portfolio_marked_to_latest_prices(as_alice, store):
    doc = as_alice.get("/api/v1/portfolio").get_json()
    (h,) = doc["holdings"]
    assert h["symbol"] == "AAPL" and h["name"] == "Apple Inc." and h["price"] == 160.0
    assert h["market_value"] == 1600.0 and h["unrealized_pnl"] == 100.0 and h["weight"] == 1.0
    assert doc["totals"]["equity"] == 10000.0 + 1600.0 and doc["live_prices"] is True
    store.price_map["AAPL"] = 170.0
    assert as_alice.get("/api/v1/portfolio").get_json()["holdings"][0]["market_value"] == 1700.0
    assert set(doc["risk"]) == {"var_95", "var_99", "es_95", "es_99", "beta", "volatility",
                                "largest_position_weight", "largest_position_symbol", "sector_weights"}


def test_user_without_portfolio_gets_zeros(client, store):
    store.accounts["carol"] = {**store.accounts["alice"], "username": "carol", "user_id": 999}
    login(client, "carol")
    doc = client.get("/api/v1/portfolio").get_json()
    assert doc["holdings"] == [] and doc["totals"]["equity"] == 0 and doc["risk"]["var_99"] == 0


def test_trades_newest_first_with_string_ids(as_alice):
    trades = as_alice.get("/api/v1/portfolio/trades?limit=2").get_json()["trades"]
    assert [t["trade_id"] for t in trades] == [str(2**40 + 2), str(2**40 + 1)]
    assert trades[0]["notional"] == 620.0 and trades[0]["time"].endswith("Z")


def test_firm_views(as_analyst):
    symbols = as_analyst.get("/api/v1/firm/symbols?sort=net_flow").get_json()["symbols"]
    assert [s["symbol"] for s in symbols] == ["AAPL", "XOM"]
    assert symbols[0]["net_flow"] == 60 and symbols[0]["imbalance"] == 0.6 and symbols[1]["imbalance"] == -1
    by_trades = as_analyst.get("/api/v1/firm/symbols?sort=trades&limit=1").get_json()["symbols"]
    assert [s["symbol"] for s in by_trades] == ["XOM"]
    minutes = as_analyst.get("/api/v1/firm/activity").get_json()["minutes"]
    assert [m["minute"][14:16] for m in minutes] == ["29", "30"]  # oldest first
    sectors = {s["sector"] for s in as_analyst.get("/api/v1/firm/sectors").get_json()["sectors"]}
    assert sectors == {"Information Technology", "Energy"}
    assert as_analyst.get("/api/v1/firm/top-users").get_json()["status"] == "ok"
    assert as_analyst.get("/api/v1/firm/top-users?day=2026-01-01").get_json()["status"] == "not_computed"
    nightly = as_analyst.get("/api/v1/firm/nightly").get_json()
    assert nightly["status"] == "ok" and set(nightly["views"]) >= {"symbols", "crowded_names"}
    health = as_analyst.get("/api/v1/firm/health").get_json()
    assert health["last_batch_age_seconds"] == 0 and health["batches"][0]["batch_id"] == 7
    assert as_analyst.get("/api/v1/firm/symbol/NOPE").status_code == 404


@pytest.mark.parametrize("query", ["day=2026-13-01", "day=yesterday", "day=2026-1-1", "day=20261-01-01",
                                   "limit=0", "limit=501", "limit=abc", "limit=-1", "limit=1e3",
                                   # digits of other scripts: \\d and int() take them, the API must not
                                   "limit=%EF%BC%95", "limit=%D9%A5", "limit=1%E0%A5%A8", "limit=%20%205",
                                   "day=%EF%BC%92026-01-01", "day=2026-01-%D9%A1%D9%A1"])
def test_bad_user_parameters_are_400(as_alice, query):
    path = "/api/v1/portfolio/equity" if query.startswith("day") else "/api/v1/portfolio/trades"
    r = as_alice.get(f"{path}?{query}")
    assert r.status_code == 400
    assert r.get_json()["error"]["status"] == 400 and r.get_json()["error"]["message"]


@pytest.mark.parametrize("query", ["sort=price", "metric=volume", "limit=601", "day=2026-02-30"])
def test_bad_firm_parameters_are_400(as_analyst, query):
    path = "/api/v1/firm/top-users" if query.startswith("metric") else "/api/v1/firm/symbols"
    assert as_analyst.get(f"{path}?{query}").status_code == 400


def test_unknown_api_route_is_404_json_and_wrong_method_405_json(as_alice):
    r = as_alice.get("/api/v1/nothing/here")
    assert r.status_code == 404 and r.get_json()["error"]["status"] == 404
    assert as_alice.get("/api/v2/portfolio").get_json()["error"]["status"] == 404
    r = as_alice.delete("/api/v1/portfolio")
    assert r.status_code == 405 and r.get_json()["error"]["status"] == 405
    assert "GET" in r.headers["Allow"]


def test_api_post_is_still_csrf_protected(app, client):
    """There is no API POST today; one added later must bring the CSRF token like the forms."""
    app.add_url_rule("/api/v1/example-post", "example_post", lambda: {"ok": True}, methods=["POST"])
    login(client, "alice")
    r = client.post("/api/v1/example-post", json={})
    assert r.status_code == 400 and "CSRF" in r.get_json()["error"]["message"]
    assert client.post("/api/v1/portfolio").status_code == 405


def test_oversized_body_is_413_even_on_get(as_alice):
    r = as_alice.get("/api/v1/portfolio", data=b"x" * (64 * 1024 + 1))
    assert r.status_code == 413 and r.get_json()["error"]["status"] == 413


def test_cassandra_down_is_503_and_recovers(as_alice, store):
    store.down = True
    r = as_alice.get("/api/v1/portfolio")
    assert r.status_code == 503
    assert r.get_json()["error"]["message"].startswith("data temporarily unavailable")
    assert r.headers["Retry-After"] == "5"
    store.down = False
    assert as_alice.get("/api/v1/portfolio").status_code == 200


def test_openapi_describes_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    routes = {r.rule.replace("<", "{").replace(">", "}") for r in app.url_map.iter_rules()
              if r.rule.startswith("/api/")}
    assert routes == set(doc["paths"])


def test_fuzzed_parameters_never_give_500(client):
    rng = random.Random(7)
    alphabet = string.printable + "é€\x00"
    for who, paths in (("alice", USER_ROUTES + ANY_ROUTES), ("analyst", FIRM_ROUTES + ANY_ROUTES)):
        client.delete_cookie("stockafolio_session")
        assert login(client, who).status_code == 302
        for _ in range(300):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            name = rng.choice(["day", "limit", "sort", "metric", "user_id", value or "x"])
            path = rng.choice(paths)
            r = client.get(path, query_string={name: value})
            assert r.status_code < 500, (path, name, value, r.get_data(as_text=True))
        for _ in range(100):
            symbol = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
            r = client.get("/api/v1/firm/symbol/" + quote(symbol, safe=""))
            assert r.status_code < 500, symbol


def test_catch_all_handler_answers_clean_json_500(app, as_alice, store):
    def boom(user_id):
        raise RuntimeError("secret detail")

    store.portfolio = boom
    r = as_alice.get("/api/v1/portfolio")
    assert r.status_code == 500
    assert r.get_json() == {"error": {"status": 500, "message": "internal error; it has been logged"}}
    assert "secret detail" not in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/portfolio", "/api/v1/portfolio/trades",
                                  "/api/v1/portfolio/equity"])
def test_fresh_reads_past_the_cache_of_my_own_rows_only(as_alice, store, path):
    assert as_alice.get(path + "?fresh=0").status_code == 200
    assert getattr(store, "changed_users", []) == []
    assert as_alice.get(f"{path}?fresh=1&user_id={USER_B}").status_code == 200
    assert store.changed_users == [USER_A]  # the session's user, whatever the query says
    r = as_alice.get(path + "?fresh=yes")
    assert r.status_code == 400 and "fresh must be one of 0, 1" in r.get_json()["error"]["message"]
