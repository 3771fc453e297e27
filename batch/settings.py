"""Everything a batch stage needs, built once at the entry point from flags and the endpoint files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from stockafolio.errors import StockafolioError
from stockafolio.settings import Endpoints


class BatchError(StockafolioError):
    """A stage cannot run or finish: no data for the day, a corrupt file, a bad flag."""


@dataclass(frozen=True)
class BatchSettings:
    endpoints: Endpoints
    day: date
    keyspace: str
    bucket: str
    prefix: str = "trades"
    root: str = "/stockafolio"  # folder on HDFS that holds every batch dataset
    sp500: Path | None = None  # raw S&P 500 folder for the historical returns (risk stage)
    opening_cash_cents: int | None = None  # the stream's --opening-cash in cents; None: the generator's
    seed: int = 1  # the generator's --seed, from which each user's starting cash derives
    repair: bool = False
    groups: int = 0  # reconciliation groups (0: about one per million trades)
    driver_memory: str = "6g"  # heap of the Spark JVM (local[2]: driver and executors in one process)

    @property
    def hdfs(self) -> str:
        return f"{self.endpoints.hdfs.url.rstrip('/')}/{self.root.strip('/')}"

    @property
    def source(self) -> str:
        return f"s3a://{self.bucket}/{self.prefix.strip('/')}/date={self.day.isoformat()}"

    def dataset(self, name: str, day: date | None = None) -> str:
        """hdfs://.../<root>/<name>/date=YYYY-MM-DD (the day's partition of a dataset)."""
        return f"{self.hdfs}/{name}/date={(day or self.day).isoformat()}"

    @property
    def day_end(self) -> datetime:
        """First instant after the day (UTC): trades at or after it belong to later days."""
        return datetime.combine(self.day + timedelta(days=1), time(0), tzinfo=UTC)


CURATED = "curated/trades"
REJECTS = "rejects/trades"
HOLDINGS = "snapshots/holdings"
HIST_VAR = "risk/hist_var"
MODELS = "models/factor"
STAGING = "_staging"
