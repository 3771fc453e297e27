"""The I/O edge: reachability checks that name the service, the Spark session, Hadoop file-system
operations (the all-or-nothing swap of a day's dataset) and the Cassandra session."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from datetime import UTC, datetime
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from batch.settings import STAGING, BatchError, BatchSettings
from stockafolio import cql
from stockafolio import s3 as s3lib
from stockafolio.errors import ServiceUnavailable
from stockafolio.settings import Endpoints

HINT = "start the stack with: bin/stockafolio run"


def check_port(service: str, url: str, default_port: int) -> None:
    """Raise `ServiceUnavailable` naming `service` unless something accepts TCP at `url`."""
    parsed = urlparse(url if "://" in url else f"tcp://{url}")
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        raise ServiceUnavailable(service, f"nothing answers at {host}:{port} ({exc.strerror or exc})",
                                 HINT) from None


def check_hdfs(endpoints: Endpoints) -> None:
    check_port("HDFS (NameNode)", endpoints.hdfs.url, 8020)


def check_s3(endpoints: Endpoints) -> None:
    check_port("S3 (MinIO)", endpoints.s3.endpoint_url, 9000)


def check_cassandra(endpoints: Endpoints) -> None:
    cass = endpoints.cassandra
    check_port("Cassandra", f"{cass.contact_points[0]}:{cass.port}", 9042)


def list_day(settings: BatchSettings) -> list[tuple[str, int]]:
    """(key, bytes) of every Parquet object of the day in the archive; a clear error when none."""
    client = s3lib.client(settings.endpoints.s3)
    prefix = f"{settings.prefix.strip('/')}/date={settings.day.isoformat()}/"
    found: list[tuple[str, int]] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=prefix):
            found += [(o["Key"], o["Size"]) for o in page.get("Contents", [])
                      if o["Key"].endswith(".parquet")]
    except client.exceptions.NoSuchBucket:
        raise BatchError(f"the archive bucket {settings.bucket!r} does not exist (--bucket)") from None
    except Exception as exc:  # botocore's connection errors have no common public base
        if "Could not connect" in str(exc) or "Connect" in type(exc).__name__:
            where = settings.endpoints.s3.endpoint_url
            raise ServiceUnavailable("S3 (MinIO)", f"{where}: {exc}", HINT) from None
        raise
    if not found:
        raise BatchError(f"no trades archived for {settings.day} in s3://{settings.bucket}/{prefix} "
                         f"(write a day with: python -m generator batch --date {settings.day})")
    return found


def archive_days(endpoints: Endpoints, bucket: str, prefix: str) -> list[str]:
    """The `<prefix>/date=YYYY-MM-DD/` folders of the archive (one delimited listing: a name per day)."""
    client = s3lib.client(endpoints.s3)
    root = f"{prefix.strip('/')}/"
    found: list[str] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root, Delimiter="/")
        for page in pages:
            found += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    except client.exceptions.NoSuchBucket:
        raise BatchError(f"the archive bucket {bucket!r} does not exist (--bucket)") from None
    except Exception as exc:  # botocore's connection errors have no common public base
        if "Could not connect" in str(exc) or "Connect" in type(exc).__name__:
            raise ServiceUnavailable("S3 (MinIO)", f"{endpoints.s3.endpoint_url}: {exc}", HINT) from None
        raise
    return found


MARKET = "us"  # the one partition of Q4 (the streaming job writes it)


def market_now(endpoints: Endpoints, keyspace: str) -> datetime | None:
    """The market's clock: the latest price tick's event time in Q4 (aware UTC), None without ticks."""
    cluster, session = cassandra(endpoints)
    try:
        table = f"{cql.check_identifier(keyspace)}.latest_price_by_market"
        rows = session.execute(f"SELECT event_time FROM {table} WHERE market = %s", (MARKET,))  # noqa: S608
        times = [r.event_time for r in rows if r.event_time is not None]
    finally:
        cluster.shutdown()
    latest = max(times, default=None)
    return None if latest is None else latest.replace(tzinfo=UTC) if latest.tzinfo is None else latest


def spark_session(endpoints: Endpoints, app: str = "nightly", log_level: str = "FATAL",
                  memory: str | None = None) -> SparkSession:
    """The local[2] session, configured by the spark role's spark-defaults.conf (jars, s3a, Cassandra);
    `memory` overrides its spark.driver.memory (it sizes the JVM this call starts)."""
    os.environ["SPARK_CONF_DIR"] = endpoints.spark.conf_dir
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # pandas UDF workers: this venv's Python
    spark = (SparkSession.builder.master(endpoints.spark.master).appName(app)
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config(map=endpoints.cassandra.spark_conf())  # the cluster's login, if any
             .config(map={"spark.driver.memory": memory} if memory else {})
             .getOrCreate())
    spark.sparkContext.setLogLevel(log_level)  # the stages print their own progress and errors
    return spark


class Files:
    """Hadoop FileSystem operations on hdfs:// (and s3a://) paths through the session's JVM."""

    def __init__(self, spark: SparkSession) -> None:
        self.jvm, self.conf = spark._jvm, spark._jsc.hadoopConfiguration()

    def _fs(self, path: str):
        jpath = self.jvm.org.apache.hadoop.fs.Path(path)
        return jpath.getFileSystem(self.conf), jpath

    def exists(self, path: str) -> bool:
        fs, jpath = self._fs(path)
        return bool(fs.exists(jpath))

    def size(self, path: str) -> int:
        """Bytes under `path` (0 when it does not exist)."""
        fs, jpath = self._fs(path)
        return int(fs.getContentSummary(jpath).getLength()) if fs.exists(jpath) else 0

    def delete(self, path: str) -> None:
        fs, jpath = self._fs(path)
        fs.delete(jpath, True)

    def write_bytes(self, path: str, data: bytes) -> None:
        fs, jpath = self._fs(path)
        out = fs.create(jpath, True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()

    def read_text(self, path: str) -> str:
        fs, jpath = self._fs(path)
        stream = fs.open(jpath)
        try:
            return self.jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def staging(self, settings: BatchSettings, name: str) -> str:
        return f"{settings.hdfs}/{STAGING}/{name.replace('/', '_')}-{uuid.uuid4().hex[:12]}"

    def swap(self, staged: str, final: str) -> None:
        """Move a fully written `staged` folder to `final`, replacing what was there: the old copy is
        renamed aside first and deleted only after the new one is in place, so a reader sees either
        the old day or the new one, never half of one."""
        fs, src = self._fs(staged)
        _, dst = self._fs(final)
        fs.mkdirs(dst.getParent())
        aside = None
        if fs.exists(dst):
            aside = self.jvm.org.apache.hadoop.fs.Path(f"{final}.replaced-{uuid.uuid4().hex[:8]}")
            if not fs.rename(dst, aside):
                raise BatchError(f"could not move the previous {final} aside")
        if not fs.rename(src, dst):
            if aside is not None:
                fs.rename(aside, dst)
            raise BatchError(f"could not rename {staged} to {final}")
        if aside is not None:
            fs.delete(aside, True)


def cassandra(endpoints: Endpoints):
    """(cluster, session): one driver session per process; the caller shuts the cluster down."""
    return cql.connect(endpoints.cassandra)
