"""`bin/stockafolio run` starts the web app as a managed pipeline process (stack/pipeline.py)."""

from __future__ import annotations

from pathlib import Path

from stack import pipeline
from stack.config import StackConfig


def test_webapp_launch_spec(tmp_path: Path):
    cfg = StackConfig(repo=Path("/repo"), cache=tmp_path / "cache", var=tmp_path / "var", keyspace="ks1")
    specs = pipeline.launch_specs(cfg, pipeline.PipelineOptions(rate=10, users=500, speed=1.0, web_port=8123))
    assert [s.name for s in specs] == list(pipeline.PIPELINE)
    web = specs[-1]
    assert web.name == "webapp" and web.ports == (8123,)
    assert web.argv[1:] == ("-m", "webapp", "--host", "127.0.0.1", "--port", "8123", "--keyspace", "ks1")
    assert web.health == {"kind": "http", "url": "http://127.0.0.1:8123/healthz", "expect_status": 200}
    assert web.env["STOCKAFOLIO_KEYSPACE"] == "ks1" and web.env["STOCKAFOLIO_CACHE"] == str(cfg.cache)
    assert web.stop_timeout_s > 10  # gunicorn's graceful timeout
    pipeline.write_specs(cfg, specs)
    assert [s.name for s in pipeline.written_specs(cfg)] == ["streaming", "generator", "webapp"]
