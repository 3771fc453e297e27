"""Cassandra through the Spark connector: read the touched users' partitions and the latest prices,
upsert pandas frames (one connector write per table per micro-batch)."""

from __future__ import annotations

import re

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

CASSANDRA = "org.apache.spark.sql.cassandra"
MARKET = "us"


def table(spark: SparkSession, keyspace: str, name: str) -> DataFrame:
    return spark.read.format(CASSANDRA).options(keyspace=keyspace, table=name).load()


def portfolios_of(spark: SparkSession, keyspace: str, users: list[int]) -> pd.DataFrame:
    """Every `portfolio_by_user` row of `users`, by a direct join on the partition key (one read per
    user, never a table scan)."""
    keys = spark.createDataFrame(pd.DataFrame({"user_id": users}, dtype="int64"))
    stored = (spark.read.format(CASSANDRA).options(keyspace=keyspace, table="portfolio_by_user")
              .option("directJoinSetting", "on").load())
    return keys.join(stored, "user_id").toPandas()


def latest_prices(spark: SparkSession, keyspace: str) -> dict[str, float]:
    rows = table(spark, keyspace, "latest_price_by_market").where(F.col("market") == MARKET)
    return {r.symbol: r.price for r in rows.select("symbol", "price").collect()}


def upsert(spark: SparkSession, frame: pd.DataFrame, schema: str, keyspace: str, name: str) -> None:
    """Write `frame` (columns named as in `schema`, a Spark DDL string) into table `name`."""
    if frame.empty:
        return
    columns = re.findall(r"(?:^|,)\s*(\w+)\s", schema)
    (spark.createDataFrame(frame[columns], schema).write.format(CASSANDRA).mode("append")
     .options(keyspace=keyspace, table=name).save())
