"""The stack manager against a real (tiny) service: a Python HTTP server started from a launch spec."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest

from stack import process, services
from stack.config import StackConfig
from stack.launch import LaunchSpec
from stockafolio.errors import ConfigError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spec(tmp_path: Path, argv: list[str], port: int, timeout: float = 20) -> LaunchSpec:
    return LaunchSpec(
        name="toy", argv=tuple(argv), cwd=str(tmp_path), log=str(tmp_path / "log" / "toy.out"),
        ports=(port,), health={"kind": "http", "url": f"http://127.0.0.1:{port}/"},
        start_timeout_s=timeout, stop_timeout_s=5,
    )


def _http_server(tmp_path: Path, port: int) -> LaunchSpec:
    return _spec(tmp_path, [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                 port)


def test_start_wait_healthy_and_stop(tmp_path: Path) -> None:
    spec = _http_server(tmp_path, _free_port())
    run_dir = tmp_path / "run"
    services._start_one(_cfg(tmp_path), spec, out=lambda _: None)
    pid = process.running_pid(run_dir, "toy")
    assert pid is not None and process.rss_mib(pid) > 1
    assert services.health.check(spec.health) is None
    assert process.stop(spec, run_dir) == "stopped"
    assert process.running_pid(run_dir, "toy") is None
    assert services.health.check(spec.health) is not None


def test_port_taken_names_service_and_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(services.StackError, match=rf"toy cannot start: port {port}"):
            services._start_one(_cfg(tmp_path), _http_server(tmp_path, port), out=lambda _: None)


def test_dying_service_reports_its_log(tmp_path: Path) -> None:
    code = "import sys; print('boom: config broken'); sys.exit(3)"
    spec = _spec(tmp_path, [sys.executable, "-c", code], _free_port())
    with pytest.raises(services.StackError, match=r"(?s)toy exited during start-up.*boom: config"):
        services._start_one(_cfg(tmp_path), spec, out=lambda _: None)


def test_unhealthy_service_times_out_and_is_named(tmp_path: Path) -> None:
    spec = _spec(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"], _free_port(), 2)
    with pytest.raises(services.StackError, match=r"toy not healthy after 2 s"):
        services._start_one(_cfg(tmp_path), spec, out=lambda _: None)
    process.stop(spec, tmp_path / "run")


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ignoring SIGTERM', flush=True); time.sleep(60)")
    spec = _spec(tmp_path, [sys.executable, "-c", code], _free_port())
    spec = LaunchSpec(**{**spec.__dict__, "stop_timeout_s": 1})
    process.start(spec, tmp_path / "run")
    deadline = time.monotonic() + 10
    while "ignoring SIGTERM" not in process.log_tail(spec) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.stop(spec, tmp_path / "run") == "killed after 1s"


def test_launch_spec_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ConfigError, match="bad.json is not a valid launch spec"):
        LaunchSpec.load(bad)
    with pytest.raises(ConfigError, match="missing.json is missing"):
        LaunchSpec.load(tmp_path / "missing.json")


def test_unknown_health_kind_is_reported() -> None:
    assert services.health.check({"kind": "smoke"}) == "unknown health check kind 'smoke'"


def _cfg(tmp_path: Path) -> StackConfig:
    return StackConfig(repo=tmp_path, cache=tmp_path, var=tmp_path, keyspace="ks")


def test_ctrl_c_during_start_stops_what_was_started(tmp_path: Path, monkeypatch) -> None:
    """Interrupt while the second service is starting: the first, already healthy, is stopped."""
    first, second = _http_server(tmp_path / "a", _free_port()), _http_server(tmp_path / "b", _free_port())
    first = LaunchSpec(**{**first.__dict__, "name": "first"})
    second = LaunchSpec(**{**second.__dict__, "name": "second",
                           "health": {"kind": "interrupt"}})
    monkeypatch.setitem(services.health.CHECKS, "interrupt", _raise_keyboard_interrupt)
    monkeypatch.setattr(services, "specs", lambda cfg: [first, second])
    with pytest.raises(KeyboardInterrupt):
        services.start_all(_cfg(tmp_path), out=lambda _: None)
    assert process.running_pid(tmp_path / "run", "first") is None
    assert process.running_pid(tmp_path / "run", "second") is None
    assert services.health.check(first.health) is not None  # really down, not just forgotten


def _raise_keyboard_interrupt(_: dict) -> None:
    raise KeyboardInterrupt
