"""Fixtures shared by every test. Integration tests get the running local stack's endpoints and
a unique run id, so names (keyspaces, topics, buckets, paths) never collide between runs."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from stack.config import StackConfig
from stockafolio.settings import Endpoints


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    return StackConfig.from_env()


@pytest.fixture(scope="session")
def endpoints(stack_config: StackConfig) -> Endpoints:
    return Endpoints.load(stack_config.var)


@pytest.fixture(scope="session")
def run_id() -> str:
    """Lower-case, starts with a letter: valid as keyspace, topic, bucket and path component."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture()
def unique(run_id: str, request: pytest.FixtureRequest) -> str:
    """A name unique to this test in this run: lower-case letters, digits and inner underscores
    (replace them with '-' for a bucket name)."""
    test = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()[:20]).strip("_")
    return f"{run_id}_{test}"


@pytest.fixture(scope="session")
def repo() -> Path:
    return Path(__file__).resolve().parent.parent
