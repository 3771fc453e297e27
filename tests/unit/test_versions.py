"""Versions are pinned once, in ansible/group_vars/all/versions.yml; Python pins must agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _versions() -> dict[str, str]:
    text = (REPO / "ansible" / "group_vars" / "all" / "versions.yml").read_text()
    return yaml.safe_load(text)["stockafolio_versions"]


def _python_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert all("==" in p for p in pins), f"every Python dependency is pinned exactly: {pins}"
    return dict(p.split("==") for p in pins)


def test_pyspark_matches_the_spark_jars() -> None:
    assert _python_pins()["pyspark"] == _versions()["spark"]


def test_every_service_version_is_pinned() -> None:
    versions = _versions()
    for name in ("kafka", "cassandra", "hadoop", "spark", "spark_cassandra_connector", "minio"):
        assert versions[name] and "latest" not in versions[name], name
    assert versions["kafka"].startswith("4.") and versions["cassandra"].startswith("5.0.")
