"""The user's portfolio as the API shows it: Q1's holdings marked to the latest prices (Q4) at request
time, with the totals and the factor-model risk recomputed from those marks. Pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import numpy as np

from stockafolio.reference import Security, load_factor_model, load_universe, portfolio_risk, sector_weights


@cache
def securities() -> dict[str, Security]:
    return {s.symbol: s for s in load_universe()}


def dollars(cents: int | None) -> float:
    return round((cents or 0) / 100, 2)


def iso(moment: datetime | None) -> str | None:
    """Aware or driver-naive (UTC) datetime -> ISO 8601 with a Z, milliseconds."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def mark(rows: list[dict[str, Any]], prices: dict[str, float], prices_as_of: datetime | None,
         user_id: int, today: date, closes: dict[str, float] | None = None) -> dict[str, Any]:
    """The /api/v1/portfolio document of one user from the rows of their Q1 partition. `today` is the
    market's day; `closes` the previous market day's closing prices of the names held (`idle_symbols`
    says when they are needed: a user the stream has not seen today)."""
    statics = rows[0] if rows else {}
    holdings = [_holding(r, prices) for r in rows if r.get("symbol") and r.get("quantity")]
    market_value = sum(h["_mv_cents"] for h in holdings)
    cash = statics.get("cash_cents") or 0
    equity = cash + market_value
    gross = sum(abs(h["_mv_cents"]) for h in holdings)
    for h in holdings:
        h["weight"] = round(h["_mv_cents"] / gross, 6) if gross else 0.0
    totals = {"cash": dollars(cash), "market_value": dollars(market_value), "equity": dollars(equity),
              "unrealized_pnl": dollars(sum(h["_upnl_cents"] for h in holdings)),
              "realized_pnl": dollars(statics.get("realized_pnl_total_cents")),
              "day_pnl": dollars(equity - _day_open(statics, holdings, today, equity, closes or {}))}
    # the market's time (the prices' tick); the stream's write time only when no price was ever seen
    as_of = prices_as_of if prices_as_of is not None else statics.get("updated_at")
    return {"user_id": user_id, "as_of": iso(as_of), "live_prices": bool(prices),
            "totals": totals, "risk": risk(holdings),
            "holdings": [{k: v for k, v in h.items() if not k.startswith("_")}
                         for h in sorted(holdings, key=lambda h: -abs(h["_mv_cents"]))]}


def idle_symbols(rows: list[dict[str, Any]], today: date) -> list[str]:
    """The names whose previous close `mark` needs: those held by a user the stream has not written
    today (their day's open is the previous close, not a stored equity); none for the others."""
    statics = rows[0] if rows else {}
    if _stream_day_open(statics, today) is not None:
        return []
    return sorted({r["symbol"] for r in rows if r.get("symbol") and r.get("quantity")})


def _stream_day_open(statics: dict[str, Any], today: date) -> int | None:
    """The stream's open of today, when it has written the user today (or a later day: around a day
    boundary its trades may be a moment ahead of the latest price tick)."""
    day = statics.get("day")
    if day is not None and as_date(day) >= today:
        return statics.get("day_open_equity_cents")
    return None


def _day_open(statics: dict[str, Any], holdings: list[dict[str, Any]], today: date, equity: int,
              closes: dict[str, float]) -> int:
    """The equity the day's P&L counts from. Once the stream has written the user today, its open.
    Before (a user idle today, maybe for days): without trades since, the holdings and cash are the
    previous close's, so the open is the cash plus each holding at the previous market day's close; a
    name without a known close counts no move (it is marked at today's price). Never a stored equity
    of an older day: every move since the user's last trade would count as today's."""
    stream_open = _stream_day_open(statics, today)
    if stream_open is not None:
        return stream_open
    if not statics:
        return equity
    opened = statics.get("cash_cents") or 0
    for h in holdings:
        close = closes.get(h["symbol"])
        opened += round(h["quantity"] * close * 100) if close else h["_mv_cents"]
    return opened


def as_date(value: Any) -> date:
    """The driver returns `cassandra.util.Date` for date columns."""
    return value if isinstance(value, date) else value.date()


def _holding(row: dict[str, Any], prices: dict[str, float]) -> dict[str, Any]:
    symbol, quantity = row["symbol"], int(row["quantity"])
    # the latest price; else the stream's last mark; else (no price seen at all) the average cost
    price = prices.get(symbol) or row.get("last_price") or row.get("avg_cost") or 0.0
    mv_cents = round(quantity * price * 100)
    upnl_cents = mv_cents - (row.get("cost_basis_cents") or 0)
    security = securities().get(symbol)
    return {"symbol": symbol, "name": security.name if security else symbol,
            "sector": security.sector if security else "Unknown", "quantity": quantity,
            "avg_cost": round(row.get("avg_cost") or 0.0, 4), "price": round(price, 2),
            "market_value": dollars(mv_cents), "unrealized_pnl": dollars(upnl_cents),
            "realized_pnl": dollars(row.get("realized_pnl_cents")), "weight": 0.0,
            "last_trade_time": iso(row.get("last_trade_time")),
            "_mv_cents": mv_cents, "_upnl_cents": upnl_cents}


def risk(holdings: list[dict[str, Any]]) -> dict[str, Any]:
    """Factor-model risk (1-day, dollars) of the marked holdings; names outside the model are skipped."""
    model = load_factor_model()
    values = np.zeros((1, len(model.symbols)))
    for h in holdings:
        if h["symbol"] in model.positions:
            values[0, model.positions[h["symbol"]]] += h["_mv_cents"] / 100
    r = portfolio_risk(model, values)
    weights = sector_weights(model, values)[0]
    largest = max(holdings, key=lambda h: abs(h["_mv_cents"]), default=None)
    gross = sum(abs(h["_mv_cents"]) for h in holdings)
    return {"var_95": _num(r.var_95), "var_99": _num(r.var_99), "es_95": _num(r.es_95),
            "es_99": _num(r.es_99), "beta": round(float(r.beta[0]), 4), "volatility": _num(r.daily_vol),
            "largest_position_weight": round(abs(largest["_mv_cents"]) / gross, 6) if largest and gross
            else 0.0,
            "largest_position_symbol": largest["symbol"] if largest else None,
            "sector_weights": {s: round(float(w), 6) for s, w in zip(model.sectors, weights, strict=True)
                               if w}}


def _num(array: np.ndarray) -> float:
    return round(float(array[0]), 2)
