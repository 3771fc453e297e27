"""A short locust run (both personas) against the real web app on a keyspace of its own: every
request answered as expected, and the failure guard in the locustfile really fails a run."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockafolio.settings import Endpoints
from tests.browser import webstack

pytestmark = pytest.mark.integration
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@pytest.fixture(scope="module")
def server(endpoints: Endpoints, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("locust")
    with webstack.keyspace(endpoints, f"{run_id}_load_ks") as ks:
        webstack.seed_accounts(endpoints, ks, {"loaduser": 5}, "loadfirm")
        with webstack.webapp(ks, None, tmp / "webapp.log") as web:
            yield web.url


def accounts_file(path: Path, password: str = webstack.PASSWORD) -> Path:
    path.write_text(json.dumps([{"username": "loaduser", "password": password, "role": "user", "user_id": 5},
                                {"username": "loadfirm", "password": password, "role": "firm",
                                 "user_id": None}]))
    return path


def locust(url: str, accounts: Path, csv_prefix: Path, seconds: int) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-H", url, "-u", "6",
            "-r", "6", "-t", f"{seconds}s", "--accounts-file", str(accounts), "--csv", str(csv_prefix),
            "--only-summary", "--stop-timeout", "5"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)


def totals(csv_prefix: Path) -> dict[str, dict[str, str]]:
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        return {f"{r['Type']} {r['Name']}": r for r in csv.DictReader(f)}


def test_both_personas_get_only_good_answers(server: str, tmp_path: Path) -> None:
    done = locust(server, accounts_file(tmp_path / "accounts.json"), tmp_path / "run", seconds=12)
    stats = totals(tmp_path / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    agg = stats[" Aggregated"]
    assert int(agg["Request Count"]) > 0
    assert int(agg["Failure Count"]) == 0
    assert "GET /api/v1/portfolio" in stats and "POST /login" in stats


def test_a_failing_run_exits_non_zero(server: str, tmp_path: Path) -> None:
    """A wrong password: every login fails, so the failure guard must fail the run."""
    done = locust(server, accounts_file(tmp_path / "accounts.json", "wrong-password!"), tmp_path / "bad",
                  seconds=3)
    assert done.returncode != 0
    assert int(totals(tmp_path / "bad")[" Aggregated"]["Failure Count"]) > 0
