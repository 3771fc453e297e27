"""The OpenAPI 3.1 document of /api/v1, written by hand next to the routes it describes (a unit test
checks that every registered /api route is in it, and schemathesis fuzzes the live server with it)."""

from __future__ import annotations

from functools import cache
from typing import Any

NUM = {"type": "number"}
INT = {"type": "integer"}
STR = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
DAY = {"type": "string", "format": "date"}


def _opt(schema: dict) -> dict:
    """The schema or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required}


def _arr(items: dict) -> dict:
    return {"type": "array", "items": items}


TOTALS = _obj({k: NUM for k in ("cash", "market_value", "equity", "unrealized_pnl", "realized_pnl",
                                 "day_pnl")})
RISK = _obj({**{k: NUM for k in ("var_95", "var_99", "es_95", "es_99", "beta", "volatility",
                                  "largest_position_weight")},
             "largest_position_symbol": _opt(STR),
             "sector_weights": {"type": "object", "additionalProperties": NUM}})
HOLDING = _obj({"symbol": STR, "name": STR, "sector": STR, "quantity": INT, "avg_cost": NUM, "price": NUM,
                "market_value": NUM, "unrealized_pnl": NUM, "realized_pnl": NUM, "weight": NUM,
                "last_trade_time": _opt(TIME)})
PORTFOLIO = _obj({"user_id": INT, "as_of": _opt(TIME), "live_prices": {"type": "boolean"}, "totals": TOTALS,
                  "risk": RISK, "holdings": _arr(HOLDING)})
TRADE = _obj({"trade_id": {"type": "string", "pattern": "^-?[0-9]+$"}, "time": _opt(TIME), "symbol": STR,
              "side": {"enum": ["buy", "sell"]}, "quantity": INT, "price": NUM, "notional": NUM})
FLOW = {"buy_volume": INT, "sell_volume": INT, "net_flow": INT,
        "imbalance": {"type": "number", "minimum": -1, "maximum": 1}}
ACTIVITY = _obj({"minute": TIME, **{k: INT for k in ("trades", "volume")}, "notional": NUM,
                 **{k: INT for k in ("buy_trades", "sell_trades", "active_users")}})
BATCH = _obj({"batch_id": INT, "finished_at": _opt(TIME), "input_rows": _opt(INT), "dead_letters": _opt(INT),
              "touched_users": _opt(INT), "input_rows_per_second": _opt(NUM),
              "processed_rows_per_second": _opt(NUM), "kafka_lag": _opt(INT)})
ERROR = _obj({"error": _obj({"status": INT, "message": STR})})

P_DAY = {"name": "day", "in": "query", "required": False,
         "description": "UTC day, default the market's today (the day of the latest price tick)",
         "schema": {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}}


P_FRESH = {"name": "fresh", "in": "query", "required": False,
           "description": "1: read through this process's cache (after a `portfolio` event, which says "
                          "the stream just wrote my rows); default 0",
           "schema": {"enum": ["0", "1"], "default": "0"}}


def _enum(name: str, values: list[str]) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": {"enum": values}}


def _limit(hi: int, default: int) -> dict:
    return {"name": "limit", "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": hi, "default": default}}


def _op(summary: str, schema: dict, params: list | None = None, auth: str | None = "any") -> dict:
    errors = {"400": "bad parameter", "401": "not logged in", "403": "wrong role", "404": "not found",
              "503": "data temporarily unavailable (Cassandra)"}
    codes = ["400", "503"] + (["401", "403"] if auth else []) + (["404"] if params and any(
        p["in"] == "path" for p in params) else [])
    op: dict[str, Any] = {
        "summary": summary, "parameters": params or [],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                      **{c: {"description": errors[c], "content": {"application/json": {"schema": ERROR}}}
                         for c in codes}}}
    if auth is None:
        op["security"] = []
    return {"get": op}


def _symbols() -> list[str]:
    from stockafolio.reference import load_universe

    return [s.symbol for s in load_universe()]


@cache
def document() -> dict[str, Any]:
    paths = {
        "/api/v1/openapi.json": _op("this document", {"type": "object"}, auth=None),
        "/api/v1/me": _op("the logged-in account", _obj({"username": STR, "role": {"enum": ["user", "firm"]},
                                                         "user_id": _opt(INT)})),
        "/api/v1/portfolio": _op("my portfolio marked to the latest prices (role user)", PORTFOLIO,
                                 [P_FRESH]),
        "/api/v1/portfolio/trades": _op("my recent trades, newest first (role user)",
                                        _obj({"trades": _arr(TRADE)}), [_limit(500, 50), P_FRESH]),
        "/api/v1/portfolio/equity": _op("my equity per minute over a day, oldest first (role user)",
                                        _obj({"day": DAY, "points": _arr(_obj({"minute": TIME, "equity": NUM,
                                                                                "day_pnl": NUM}))}),
                                        [P_DAY, P_FRESH]),
        "/api/v1/portfolio/historical-risk": _op(
            "my nightly historical-simulation VaR/ES, newest night first; empty before the first night "
            "(role user)",
            _obj({"nights": _arr(_obj({"day": DAY, "market_value": NUM, "gross_exposure": NUM,
                                       **{k: NUM for k in ("var_95", "var_99", "es_95", "es_99")},
                                       "scenarios": INT, "computed_at": _opt(TIME)}))}), [_limit(400, 1)]),
        "/api/v1/reference/sectors": _op("S&P 500 sector weights", _obj({"sectors": _arr(
            _obj({"sector": STR, "sp500_weight": NUM}))})),
        "/api/v1/market/clock": _op("the market's time: the latest price tick's event time", _obj({
            "now": TIME, "day": DAY, "source": {"enum": ["prices", "wall_clock"]},
            "simulated": {"type": "boolean"}, "wall_clock": TIME, "behind_wall_clock_seconds": INT,
            "day_complete": {"type": "boolean"}, "last_complete_day": DAY})),
        "/api/v1/prices": _op("latest price of every symbol", _obj({
            "as_of": _opt(TIME), "prices": {"type": "object", "additionalProperties": NUM}})),
        "/api/v1/firm/activity": _op("firm activity per minute, oldest first (role firm)",
                                     _obj({"day": DAY, "minutes": _arr(ACTIVITY)}), [P_DAY]),
        "/api/v1/firm/symbols": _op("top symbols of a day (role firm)", _obj({
            "day": DAY, "symbols": _arr(_obj({"symbol": STR, "name": STR, "sector": STR, "trades": INT,
                                              "volume": INT, "notional": NUM, **FLOW}))}),
            [P_DAY, _enum("sort", ["trades", "notional", "net_flow"]), _limit(600, 20)]),
        "/api/v1/firm/sectors": _op("sector flows of a day (role firm)", _obj({
            "day": DAY, "sectors": _arr(_obj({"sector": STR, "trades": INT, "notional": NUM, **FLOW}))}),
            [P_DAY]),
        "/api/v1/firm/symbol/{symbol}": _op(
            "one symbol per minute, oldest first (role firm)",
            _obj({"day": DAY, "symbol": STR, "minutes": _arr(_obj({
                "minute": TIME, "last_price": _opt(NUM), "vwap": _opt(NUM), "trades": INT, "volume": INT,
                "notional": NUM, "buy_trades": INT, "sell_trades": INT}))}),
            [{"name": "symbol", "in": "path", "required": True, "description": "an S&P 500 member",
              "schema": {"enum": _symbols()}}, P_DAY]),
        "/api/v1/firm/top-users": _op("most active users of a day (role firm; nightly)", _obj({
            "day": DAY, "metric": {"enum": ["trades", "notional"]},
            "status": {"enum": ["ok", "not_computed"]},
            "users": _arr(_obj({"rank": INT, "user_id": INT, "value": NUM}))}),
            [P_DAY, _enum("metric", ["trades", "notional"])]),
        "/api/v1/firm/nightly": _op("the nightly batch's views and reconciliation (role firm)", _obj({
            "day": DAY, "status": {"enum": ["ok", "not_computed"]}, "computed_at": _opt(TIME),
            "views": {"type": "object", "additionalProperties": _arr(_obj({
                "rank": INT, "label": STR, "metrics": {"type": "object", "additionalProperties": NUM}}))},
            "reconciliation": _opt(_obj({"run_at": TIME, "users_checked": INT, "holdings_checked": INT,
                                         "mismatches": INT, "repaired": INT, "status": _opt(STR),
                                         "sample": _arr(STR)}))}), [P_DAY]),
        "/api/v1/firm/health": _op("the streaming job's last micro-batches, newest first (role firm)", _obj({
            "job": STR, "last_batch_age_seconds": _opt(NUM), "batches": _arr(BATCH)})),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Stockafolio API", "version": "1.0.0",
                 "description": "Portfolios and firm views. Session-cookie auth: POST /login first. Money "
                                "in dollars; trade ids are strings; times are ISO 8601 UTC."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                                       "name": "stockafolio_session"}}},
        "security": [{"session": []}],
        "paths": paths,
    }
