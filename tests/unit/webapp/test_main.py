"""`python -m webapp`: --help everywhere, clear errors instead of tracebacks, the secret key file."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.__main__ import main, secret_key

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"], ["accounts", "--help"],
                                  ["accounts", "create", "--help"], ["accounts", "seed", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--workers", "0"], ["accounts", "create", "x"],
                                  ["accounts", "seed", "--users", "-1"]])
def test_bad_flags_exit_2_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_invalid_account_is_one_line_not_a_traceback(tmp_path: Path):
    (tmp_path / "endpoints").mkdir()
    for name, body in {"kafka": '{"bootstrap_servers": "127.0.0.1:1"}',
                       "cassandra": '{"contact_points": ["127.0.0.1"], "port": 1, "local_dc": "dc1"}',
                       "hdfs": '{"url": "hdfs://x", "namenode_http": "http://x"}',
                       "s3": '{"endpoint_url": "http://x", "region": "r", "access_key": "a", '
                             '"secret_key": "s", "archive_bucket": "b"}',
                       "spark": '{"conf_dir": "/x", "master": "local[1]"}'}.items():
        (tmp_path / "endpoints" / f"{name}.json").write_text(body)
    argv = [sys.executable, "-m", "webapp", "accounts", "create", "Bad Name", "--role", "firm"]
    done = subprocess.run(argv, input="long enough password\n", capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "STOCKAFOLIO_VAR": str(tmp_path)}, timeout=60,
                          check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("webapp: user name must match") and "Traceback" not in done.stderr


def test_secret_key_is_created_once_private(tmp_path: Path):
    key = secret_key(tmp_path / "secrets")
    assert len(key) == 64 and secret_key(tmp_path / "secrets") == key
    assert stat.S_IMODE((tmp_path / "secrets" / "webapp-secret-key").stat().st_mode) == 0o600
