"""Reconciliation: the rebuilt state (`batch.holdings`) against `portfolio_by_user` in Cassandra.

A holding row mismatches when it is missing on either side or its quantity, cost basis, realized
P&L or last trade id differ; a user's cash mismatches when the cash or its guard differ. Rows the
stream has already moved past the day (last trade at or after the end of the day) cannot be judged
against an archive that stops at the day: they are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

HOLDING_FIELDS = ("quantity", "cost_basis_cents", "realized_pnl_cents", "last_trade_id")
CASH_FIELDS = ("cash_cents", "cash_last_trade_id")
STORED_COLUMNS = ["user_id", "symbol", *HOLDING_FIELDS, "last_trade_time", "last_price", *CASH_FIELDS]
SAMPLE = 20


@dataclass(frozen=True)
class Report:
    users_checked: int
    holdings_checked: int
    holding_mismatches: int
    cash_mismatches: int
    skipped: int
    sample: list[str] = field(default_factory=list)
    repaired: int = 0

    @property
    def mismatches(self) -> int:
        return self.holding_mismatches + self.cash_mismatches

    @property
    def status(self) -> str:
        state = "ok" if not self.mismatches else ("repaired" if self.repaired >= self.mismatches
                                                  else "mismatch")
        return (f"{state}: {self.holding_mismatches} holdings, {self.cash_mismatches} cash balances differ; "
                f"{self.skipped} rows traded after the day skipped")


def _differs(a: Column, b: Column) -> Column:
    return ~a.eqNullSafe(b)


def _values(prefix: str, fields: tuple[str, ...]) -> Column:
    """'stored quantity 3, cost_basis_cents 100' for one side of a row missing on the other."""
    label = "rebuilt" if prefix == "r_" else "stored"
    parts = [F.concat(F.lit(f"{c} "), F.coalesce(F.col(prefix + c).cast("string"), F.lit("null")))
             for c in fields]
    return F.concat(F.lit(f"{label} "), F.concat_ws(", ", *parts))


def _any_differs(fields: tuple[str, ...]) -> Column:
    """True when any of `fields` differs between the rebuilt (r_) and stored (s_) sides. A plain
    boolean, so the kind of a row costs no string building: the readable `detail` is computed only
    for the rows that are selected with it (the sample, the repair)."""
    out = F.lit(False)
    for c in fields:
        out = out | _differs(F.col(f"r_{c}"), F.col(f"s_{c}"))
    return out


def _with_detail(frame: DataFrame, fields: tuple[str, ...]) -> DataFrame:
    """`detail`: the rebuilt values of a row missing in Cassandra, the stored ones of a row not in the
    archive, else 'field stored X rebuilt Y' for each field that differs ('' when none)."""
    diffs = [F.when(_differs(F.col(f"r_{c}"), F.col(f"s_{c}")),
                    F.concat(F.lit(f"{c} stored "), F.coalesce(F.col(f"s_{c}").cast("string"), F.lit("null")),
                             F.lit(" rebuilt "), F.coalesce(F.col(f"r_{c}").cast("string"), F.lit("null"))))
             for c in fields]
    kind = F.col("kind")
    detail = (F.when(kind == "missing_in_cassandra", _values("r_", fields))
              .when(kind == "not_in_archive", _values("s_", fields)).otherwise(F.concat_ws("; ", *diffs)))
    return frame.withColumn("detail", detail)


def compare_holdings(rebuilt: DataFrame, stored: DataFrame, day_end: datetime) -> DataFrame:
    """Full outer join on (user_id, symbol): every row with `kind` in ('ok', 'missing_in_cassandra',
    'not_in_archive', 'differs', 'after_day'), `detail`, the rebuilt values (r_*) and the stored
    ones (s_*)."""
    r = rebuilt.select("user_id", "symbol", *[F.col(c).alias(f"r_{c}") for c in
                                             (*HOLDING_FIELDS, "last_trade_time")])
    s = stored.where(F.col("symbol").isNotNull()).select(
        "user_id", "symbol", *[F.col(c).alias(f"s_{c}") for c in (*HOLDING_FIELDS, "last_trade_time",
                                                                  "last_price")])
    joined = r.join(s, ["user_id", "symbol"], "full_outer")
    kind = (F.when(F.col("s_last_trade_time") >= F.lit(day_end), "after_day")
            .when(F.col("s_quantity").isNull() & F.col("s_last_trade_id").isNull(), "missing_in_cassandra")
            .when(F.col("r_quantity").isNull(), "not_in_archive")
            .when(_any_differs(HOLDING_FIELDS), "differs").otherwise("ok"))
    return _with_detail(joined.withColumn("kind", kind), HOLDING_FIELDS)


def compare_cash(rebuilt: DataFrame, stored: DataFrame, day_end: datetime) -> DataFrame:
    """Per user: `kind` ('ok', 'differs', 'after_day', 'missing_in_cassandra', 'not_in_archive') and
    `detail` for the cash balance and its guard."""
    r = rebuilt.groupBy("user_id").agg(*[F.first(c).alias(f"r_{c}") for c in CASH_FIELDS])
    s = stored.groupBy("user_id").agg(*[F.max(c).alias(f"s_{c}") for c in CASH_FIELDS],
                                      F.max("last_trade_time").alias("s_latest"))
    joined = r.join(s, "user_id", "full_outer")
    kind = (F.when(F.col("s_latest") >= F.lit(day_end), "after_day")
            .when(F.col("s_cash_last_trade_id").isNull() & F.col("s_latest").isNull(), "missing_in_cassandra")
            .when(F.col("r_cash_cents").isNull(), "not_in_archive")
            .when(_any_differs(CASH_FIELDS), "differs").otherwise("ok"))
    return _with_detail(joined.withColumn("kind", kind), CASH_FIELDS)


def describe(kind: Column, user: Column, symbol: Column | None, detail: Column) -> Column:
    """One readable line per mismatch, e.g. 'user 42 AAPL: differs: quantity stored 10 rebuilt 12'."""
    what = F.concat(F.lit("user "), user.cast("string"),
                    F.lit(" ") if symbol is not None else F.lit(" cash"),
                    symbol if symbol is not None else F.lit(""))
    return F.concat(what, F.lit(": "), kind, F.when(detail != "", F.concat(F.lit(": "), detail))
                    .otherwise(F.lit("")))


def summarise(holdings: DataFrame, cash: DataFrame) -> Report:
    """Counts per kind and the first `SAMPLE` mismatches (holdings first), sorted by user and symbol.
    The sample is found on the narrow keys (a top-k per partition), and only those rows are described."""
    h = {r["kind"]: r["n"] for r in holdings.groupBy("kind").agg(F.count("*").alias("n")).collect()}
    c = {r["kind"]: r["n"] for r in cash.groupBy("kind").agg(F.count("*").alias("n")).collect()}
    lines: list[str] = []
    if any(k not in ("ok", "after_day") for k in h):
        lines += _first(holdings, ["user_id", "symbol"], SAMPLE,
                        describe(F.col("kind"), F.col("user_id"), F.col("symbol"), F.col("detail")))
    if len(lines) < SAMPLE and any(k not in ("ok", "after_day") for k in c):
        lines += _first(cash, ["user_id"], SAMPLE - len(lines),
                        describe(F.col("kind"), F.col("user_id"), None, F.col("detail")))
    return Report(users_checked=sum(n for k, n in c.items() if k != "after_day"),
                  holdings_checked=sum(n for k, n in h.items() if k != "after_day"),
                  holding_mismatches=sum(n for k, n in h.items() if k not in ("ok", "after_day")),
                  cash_mismatches=sum(n for k, n in c.items() if k not in ("ok", "after_day")),
                  skipped=h.get("after_day", 0), sample=lines)


def _first(compared: DataFrame, key: list[str], n: int, line: Column) -> list[str]:
    """The readable lines of the first `n` mismatched rows of `compared` in `key` order."""
    bad = compared.where(~F.col("kind").isin("ok", "after_day"))
    keys = [tuple(r) for r in bad.select(*key).orderBy(*key).limit(n).collect()]
    if not keys:
        return []
    chosen = compared.sparkSession.createDataFrame(keys, bad.select(*key).schema)
    rows = bad.join(F.broadcast(chosen), key, "left_semi").select(*key, line.alias("line")).collect()
    return [r["line"] for r in sorted(rows, key=lambda r: tuple(r[k] for k in key))]
