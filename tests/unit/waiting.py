"""Polling helpers shared by the unit tests that run real child processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(what: str, predicate: Callable[[], Any], timeout_s: float = 10) -> Any:
    """`predicate()`'s first truthy value, polled every 20 ms; AssertionError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
