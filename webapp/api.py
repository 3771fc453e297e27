"""The JSON API under /api/v1 (see WEB_CONTRACT.md and /api/v1/openapi.json). Every handler reads the
account from the session, never from a parameter: a user only ever sees their own portfolio."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request

from stockafolio.reference import load_sector_weights
from webapp import market as market_time
from webapp import openapi, valuation
from webapp.auth import current_account, firm_required, login_required, user_required
from webapp.store import Store
from webapp.valuation import dollars, iso

bp = Blueprint("api", __name__, url_prefix="/api/v1")

NIGHTLY_VIEWS = ("symbols", "sectors", "minutes", "portfolio_sizes", "holdings_count", "crowded_names",
                 "sector_exposure")
SYMBOL_SORTS = ("trades", "notional", "net_flow")
TOP_METRICS = ("trades", "notional")
# ASCII digits only: `\d` would also take other scripts' digits (full-width U+FF15), which int() reads
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT = re.compile(r"[0-9]{1,6}")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


class BadParameter(Exception):
    pass


@bp.errorhandler(BadParameter)
def _bad(exc: BadParameter):
    return jsonify(error={"status": 400, "message": str(exc)}), 400


def store() -> Store:
    return current_app.extensions["stockafolio.store"]


def now() -> datetime:
    """The wall clock (for ages of things written at wall time, and to tell a simulated market)."""
    return current_app.extensions["stockafolio.clock"]()


def market() -> market_time.MarketClock:
    """The market's clock: the latest price tick's event time (this process's 1 s prices snapshot)."""
    return market_time.market_clock(store().prices()[1], now())


def marked_document(st: Store, rows: list[dict[str, Any]], prices: dict[str, float], as_of: datetime | None,
                    user_id: int, wall: datetime) -> dict[str, Any]:
    """The /portfolio document: Q1 rows marked at `prices`, on the market's day of those prices, with
    the previous market day's closes read only for a user the stream has not written today."""
    today = market_time.market_clock(as_of, wall).day
    idle = valuation.idle_symbols(rows, today)
    closes = st.previous_closes(market_time.previous_market_day(today), idle) if idle else {}
    return valuation.mark(rows, prices, as_of, user_id, today, closes)


# ---------------------------------------------------------------- parameters


def day_param() -> date:
    text = request.args.get("day")
    if text is None or text == "":
        return market().day
    if not _DAY.fullmatch(text):
        raise BadParameter(f"day must be YYYY-MM-DD, got {text[:40]!r}")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadParameter(f"day {text!r} is not a calendar date") from None
    return day


def int_param(name: str, default: int, lo: int, hi: int) -> int:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not _INT.fullmatch(text):
        raise BadParameter(f"{name} must be a whole number from {lo} to {hi}, got {text[:40]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise BadParameter(f"{name} must be from {lo} to {hi}, got {value}")
    return value


def fresh_param(user_id: int) -> None:
    """`?fresh=1`: the client just got a `portfolio` event, whose rows this process may not have
    dropped yet (each process reads the events on its own): forget them, so this read sees them."""
    if choice_param("fresh", ("0", "1")) == "1":
        store().changed([user_id])


def choice_param(name: str, options: tuple[str, ...]) -> str:
    text = request.args.get(name)
    if text is None or text == "":
        return options[0]
    if text not in options:
        raise BadParameter(f"{name} must be one of {', '.join(options)}, got {text[:40]!r}")
    return text


# ---------------------------------------------------------------- everyone logged in


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document())


@bp.get("/me")
@login_required
def me():
    a = current_account()
    assert a is not None
    return jsonify(username=a.username, role=a.role, user_id=a.user_id)


@bp.get("/reference/sectors")
@login_required
def sectors():
    return jsonify(sectors=[{"sector": s.sector, "sp500_weight": s.weight} for s in load_sector_weights()])


@bp.get("/market/clock")
@login_required
def clock():
    """The market's time (from the latest price tick), its day, whether it is simulated and the last
    day whose session has ended."""
    return jsonify(market().document())


@bp.get("/prices")
@login_required
def prices():
    values, as_of = store().prices()
    return jsonify(as_of=iso(as_of), prices=values)


# ---------------------------------------------------------------- the user's own portfolio


def own_user_id() -> int:
    account = current_account()
    assert account is not None and account.user_id is not None  # user_required ran
    return account.user_id


@bp.get("/portfolio")
@user_required
def portfolio():
    user_id, wall, st = own_user_id(), now(), store()
    fresh_param(user_id)
    body = st.marked(user_id, lambda rows, values, as_of: current_app.json.dumps(
        marked_document(st, rows, values, as_of, user_id, wall)))
    return current_app.response_class(body + "\n", mimetype="application/json")


@bp.get("/portfolio/trades")
@user_required
def trades():
    limit = int_param("limit", 50, 1, 500)
    user_id, today = own_user_id(), market().day
    fresh_param(user_id)
    rows = store().trades(user_id, today, limit)
    if len(rows) < limit:
        rows += store().trades(user_id, market_time.previous_market_day(today), limit - len(rows))
    return jsonify(trades=[_trade(r) for r in rows])


def _trade(r: dict[str, Any]) -> dict[str, Any]:
    return {"trade_id": str(r["trade_id"]), "time": iso(r["event_time"]), "symbol": r["symbol"],
            "side": r["side"], "quantity": r["quantity"], "price": r["price"],
            "notional": round((r["quantity"] or 0) * (r["price"] or 0.0), 2)}


@bp.get("/portfolio/equity")
@user_required
def equity():
    day, user_id = day_param(), own_user_id()
    fresh_param(user_id)
    rows = store().equity(user_id, day)
    return jsonify(day=day.isoformat(), points=[
        {"minute": iso(r["minute"]), "equity": dollars(r["equity_cents"]),
         "day_pnl": dollars(r["day_pnl_cents"])}
        for r in rows])


@bp.get("/portfolio/historical-risk")
@user_required
def historical_risk():
    """The nightly batch's historical-simulation VaR/ES of my portfolio (1 day, over the S&P 500
    history), newest night first; empty until a night has run."""
    nights = int_param("limit", 1, 1, 400)
    rows = store().historical_risk(own_user_id(), nights)
    return jsonify(nights=[{
        "day": valuation.as_date(r["day"]).isoformat() if r["day"] is not None else None,
        "market_value": dollars(r["market_value_cents"]),
        "gross_exposure": dollars(r["gross_exposure_cents"]),
        **{k: r[k] for k in ("var_95", "var_99", "es_95", "es_99", "scenarios")},
        "computed_at": iso(r["computed_at"])} for r in rows])


# ---------------------------------------------------------------- the firm


@bp.get("/firm/activity")
@firm_required
def firm_activity():
    day = day_param()
    rows = sorted(store().firm_activity(day), key=lambda r: r["minute"])
    return jsonify(day=day.isoformat(), minutes=[activity_row(r) for r in rows])


def activity_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"minute": iso(r["minute"]), "trades": r.get("trades") or 0, "volume": r.get("volume") or 0,
            "notional": dollars(r.get("notional_cents")), "buy_trades": r.get("buy_trades") or 0,
            "sell_trades": r.get("sell_trades") or 0, "active_users": r.get("active_users") or 0}


def _flow(buy: int | None, sell: int | None) -> dict[str, Any]:
    buy, sell = buy or 0, sell or 0
    total = buy + sell
    return {"buy_volume": buy, "sell_volume": sell, "net_flow": buy - sell,
            "imbalance": round((buy - sell) / total, 6) if total else 0.0}


@bp.get("/firm/symbols")
@firm_required
def firm_symbols():
    day, sort = day_param(), choice_param("sort", SYMBOL_SORTS)
    limit = int_param("limit", 20, 1, 600)
    names = valuation.securities()
    rows = []
    for r in store().symbol_totals(day):
        s = names.get(r["symbol"])
        rows.append({"symbol": r["symbol"], "name": s.name if s else r["symbol"],
                     "sector": s.sector if s else "Unknown", "trades": r.get("trades") or 0,
                     "volume": r.get("volume") or 0, "notional": dollars(r.get("notional_cents")),
                     **_flow(r.get("buy_volume"), r.get("sell_volume"))})
    key: Callable[[dict], Any] = (lambda x: abs(x["net_flow"])) if sort == "net_flow" else (lambda x: x[sort])
    rows.sort(key=lambda x: (-key(x), x["symbol"]))
    return jsonify(day=day.isoformat(), symbols=rows[:limit])


@bp.get("/firm/sectors")
@firm_required
def firm_sectors():
    day = day_param()
    names = valuation.securities()
    acc: dict[str, dict[str, int]] = {}
    for r in store().symbol_totals(day):
        s = names.get(r["symbol"])
        a = acc.setdefault(s.sector if s else "Unknown", {"trades": 0, "notional": 0, "buy": 0, "sell": 0})
        a["trades"] += r.get("trades") or 0
        a["notional"] += r.get("notional_cents") or 0
        a["buy"] += r.get("buy_volume") or 0
        a["sell"] += r.get("sell_volume") or 0
    out = [{"sector": k, "trades": a["trades"], "notional": dollars(a["notional"]),
            **_flow(a["buy"], a["sell"])}
           for k, a in acc.items()]
    out.sort(key=lambda x: (-x["notional"], x["sector"]))
    return jsonify(day=day.isoformat(), sectors=out)


@bp.get("/firm/symbol/<symbol>")
@firm_required
def firm_symbol(symbol: str):
    day = day_param()
    if not _SYMBOL.match(symbol) or symbol not in valuation.securities():
        abort(404, description=f"unknown symbol {symbol[:20]!r}")
    rows = sorted(store().symbol_stats(day, symbol), key=lambda r: r["minute"])
    return jsonify(day=day.isoformat(), symbol=symbol, minutes=[
        {"minute": iso(r["minute"]), "last_price": r.get("last_price"), "vwap": r.get("vwap"),
         "trades": r.get("trades") or 0, "volume": r.get("volume") or 0,
         "notional": dollars(r.get("notional_cents")), "buy_trades": r.get("buy_trades") or 0,
         "sell_trades": r.get("sell_trades") or 0} for r in rows])


@bp.get("/firm/top-users")
@firm_required
def firm_top_users():
    day, metric = day_param(), choice_param("metric", TOP_METRICS)
    rows = sorted(store().top_users(day, metric), key=lambda r: r["rank"])
    return jsonify(day=day.isoformat(), metric=metric, status="ok" if rows else "not_computed",
                   users=[{"rank": r["rank"], "user_id": r["user_id"], "value": r["value"]} for r in rows])


@bp.get("/firm/nightly")
@firm_required
def firm_nightly():
    day = day_param()
    views, computed = {}, []
    for view in NIGHTLY_VIEWS:
        rows = sorted(store().nightly_view(day, view), key=lambda r: r["rank"])
        computed += [r["computed_at"] for r in rows if r.get("computed_at")]
        views[view] = [{"rank": r["rank"], "label": r["label"], "metrics": dict(r.get("metrics") or {})}
                       for r in rows]
    rec = store().reconciliation(day)
    return jsonify(day=day.isoformat(), status="ok" if computed or any(views.values()) else "not_computed",
                   computed_at=iso(max(computed)) if computed else None, views=views,
                   reconciliation=_reconciliation(rec) if rec else None)


def _reconciliation(r: dict[str, Any]) -> dict[str, Any]:
    return {"run_at": iso(r["run_at"]), "users_checked": r.get("users_checked") or 0,
            "holdings_checked": r.get("holdings_checked") or 0, "mismatches": r.get("mismatches") or 0,
            "repaired": r.get("repaired") or 0, "status": r.get("status"),
            "sample": list(r.get("sample") or [])}


@bp.get("/firm/health")
@firm_required
def firm_health():
    rows = store().batches(60)
    finished = rows[0].get("finished_at") if rows else None
    age = None
    if finished is not None:
        finished = finished.replace(tzinfo=UTC) if finished.tzinfo is None else finished
        age = round((now() - finished).total_seconds(), 1)
    return jsonify(job="portfolio", last_batch_age_seconds=age, batches=[batch_row(r) for r in rows])


def batch_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"batch_id": r["batch_id"], "finished_at": iso(r.get("finished_at")),
            "input_rows": r.get("input_rows"), "dead_letters": r.get("dead_letters"),
            "touched_users": r.get("touched_users"), "input_rows_per_second": r.get("input_rows_per_second"),
            "processed_rows_per_second": r.get("processed_rows_per_second"), "kafka_lag": r.get("kafka_lag")}
