"""A var folder's endpoint files with placeholder values, for the batch CLI's unit tests."""

from __future__ import annotations

from pathlib import Path

ENDPOINTS = {
    "cassandra": '{"contact_points": ["h"], "port": 1, "local_dc": "d"}',
    "kafka": '{"bootstrap_servers": "k"}',
    "hdfs": '{"url": "hdfs://n:1", "namenode_http": "x"}',
    "s3": '{"endpoint_url": "u", "region": "r", "access_key": "a", "secret_key": "s", '
          '"archive_bucket": "arch"}',
    "spark": '{"conf_dir": "c", "master": "local[2]"}',
}


def write_endpoints(var: Path) -> None:
    (var / "endpoints").mkdir(exist_ok=True)
    for name, body in ENDPOINTS.items():
        (var / "endpoints" / f"{name}.json").write_text(body)
