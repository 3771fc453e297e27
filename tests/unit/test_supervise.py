"""The pipeline's supervisor (stack/supervise.py) against tiny child scripts, with short back-offs:
restarts and their back-off, the state file, stop, and the start-up check of `bin/stockafolio run`."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stack import process, services, supervise
from stack.config import StackConfig
from stack.launch import LaunchSpec
from tests.unit.waiting import wait_for

FAST = {"backoff_s": 0.1, "max_backoff_s": 0.4, "stable_s": 30}


def _child(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


def _spec(tmp_path: Path, argv: list[str], restart: dict[str, float] | None = None,
          stop_timeout_s: float = 5, settle_s: float = 0) -> LaunchSpec:
    return LaunchSpec(name="toy", argv=tuple(argv), cwd=str(tmp_path), log=str(tmp_path / "log" / "toy.out"),
                      ports=(), health={"kind": "process", "settle_s": settle_s}, start_timeout_s=10,
                      stop_timeout_s=stop_timeout_s, restart=FAST if restart is None else restart)


def _wait_for(what: str, predicate: Callable[[], Any], timeout_s: float = 10) -> Any:
    return wait_for(what, predicate, timeout_s)


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path):
    """A failed test must not leave a supervisor restarting its child forever."""
    yield
    process.stop(_spec(tmp_path, ["true"], stop_timeout_s=1), tmp_path / "run")


def _state(run_dir: Path) -> dict[str, Any]:
    return supervise.read_state(run_dir, "toy") or {}


FAILS_TWICE = """
    import pathlib, sys, time
    count = pathlib.Path("count")
    n = int(count.read_text()) if count.exists() else 0
    count.write_text(str(n + 1))
    print(f"run {n}", flush=True)
    if n < 2:
        raise ValueError(f"boom {n}")
    time.sleep(60)
"""


def test_restarts_with_doubling_back_off_until_the_child_runs_then_stops_it(tmp_path: Path) -> None:
    run_dir, spec = tmp_path / "run", _spec(tmp_path, _child(tmp_path, FAILS_TWICE))
    pid = process.start(spec, run_dir)
    state = _wait_for("the third run", lambda: (s := _state(run_dir)).get("restarts") == 2
                      and s.get("state") == "running" and s)
    assert state["supervisor_pid"] == pid and state["backoff_s"] == 0.2  # 0.1 then 0.2
    failure = state["last_failure"]
    assert (failure["code"], failure["signal"], failure["error"]) == (1, None, "ValueError: boom 1")
    child = state["child_pid"]
    assert process.alive(child) and os.getpgid(child) == child != os.getpgid(pid)  # a group of its own

    assert process.stop(spec, run_dir) == "stopped"
    assert not process.alive(pid) and not process.alive(child)
    assert _state(run_dir)["state"] == "stopped" and process.running_pid(run_dir, "toy") is None
    log = Path(spec.log).read_text()
    assert "restarting toy in 0.1 s" in log and "restarting toy in 0.2 s" in log


def test_kill_9_of_the_child_is_restarted(tmp_path: Path) -> None:
    run_dir, spec = tmp_path / "run", _spec(tmp_path, _child(tmp_path, "import time; time.sleep(60)"))
    process.start(spec, run_dir)
    first = _wait_for("the child", lambda: _state(run_dir).get("child_pid"))
    os.kill(first, signal.SIGKILL)
    state = _wait_for("the restart", lambda: (s := _state(run_dir)).get("restarts") == 1
                      and s.get("child_pid") and s)
    assert state["child_pid"] != first and state["last_failure"]["signal"] == "SIGKILL"
    assert process.stop(spec, run_dir) == "stopped"


def test_a_clean_exit_is_not_restarted(tmp_path: Path) -> None:
    run_dir, spec = tmp_path / "run", _spec(tmp_path, _child(tmp_path, "print('done')"))
    pid = process.start(spec, run_dir)
    _wait_for("the supervisor to end", lambda: not process.alive(pid))
    state = _state(run_dir)
    assert state["state"] == "exited" and state["restarts"] == 0 and state["last_failure"] is None
    assert supervise.problem(state, supervisor_alive=False).startswith("not running: ended on its own")
    assert supervise.history(state) == []


def test_stop_kills_the_childs_whole_group_when_it_ignores_sigterm(tmp_path: Path) -> None:
    body = """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild (like a JVM)
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(f"grandchild {grandchild.pid}", flush=True)
        time.sleep(60)
    """
    run_dir, spec = tmp_path / "run", _spec(tmp_path, _child(tmp_path, body), stop_timeout_s=1)
    pid = process.start(spec, run_dir)
    child = _wait_for("the child", lambda: _state(run_dir).get("child_pid"))
    line = _wait_for("the grandchild", lambda: [ln for ln in Path(spec.log).read_text().splitlines()
                                                if ln.startswith("grandchild ")])
    grandchild = int(line[0].split()[1])
    assert process.stop(spec, run_dir) == "killed after 1s"
    assert not any(process.alive(p) for p in (pid, child, grandchild))
    assert supervise.group_members(child) == []


def test_sigusr1_skips_the_back_off(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    spec = _spec(tmp_path, _child(tmp_path, "raise SystemExit(3)"),
                 restart={"backoff_s": 30, "max_backoff_s": 30, "stable_s": 30})
    pid = process.start(spec, run_dir)
    _wait_for("the back-off", lambda: _state(run_dir).get("state") == "backoff")
    os.kill(pid, signal.SIGUSR1)
    state = _wait_for("the restart's failure", lambda: (s := _state(run_dir)).get("restarts") == 1
                      and s["state"] == "backoff" and s)
    assert state["last_failure"]["code"] == 3
    assert supervise.problem(state, supervisor_alive=True).startswith("down, restart 2 at ")
    assert process.stop(spec, run_dir) == "stopped"  # also while waiting to restart


def test_back_off_doubles_to_the_cap_and_resets_after_a_stable_run() -> None:
    policy = supervise.Policy(backoff_s=1, max_backoff_s=60, stable_s=120)
    delays, delay = [], None
    for _ in range(8):
        delay = policy.next_delay(delay, ran_s=5)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.next_delay(60, ran_s=120) == 1


def _cfg(tmp_path: Path) -> StackConfig:
    return StackConfig(repo=tmp_path, cache=tmp_path, var=tmp_path, keyspace="ks")


def test_run_fails_when_a_supervised_process_fails_while_settling_and_stops_it(tmp_path: Path) -> None:
    code = "import sys, time; time.sleep(0.3); print('connecting'); sys.exit('ConnectionError: kafka down')"
    spec = _spec(tmp_path, [sys.executable, "-c", code], settle_s=5)
    with pytest.raises(services.StackError) as failed:
        services._start_one(_cfg(tmp_path), spec, out=lambda _: None)
    message = str(failed.value)
    assert message.startswith("toy failed during start-up (exit code 1 at ")
    assert "last error: ConnectionError: kafka down" in message
    assert f"log: {spec.log}" in message and message.endswith("run again: bin/stockafolio run")
    assert process.running_pid(tmp_path / "run", "toy") is None  # what it started, it stopped


def test_status_shows_restarts_and_the_last_error(tmp_path: Path, monkeypatch) -> None:
    spec = _spec(tmp_path, _child(tmp_path, FAILS_TWICE))
    monkeypatch.setattr(services, "specs", lambda cfg: [spec])
    process.start(spec, tmp_path / "run")
    try:
        _wait_for("the third run", lambda: _state(tmp_path / "run").get("child_pid")
                  and _state(tmp_path / "run").get("restarts") == 2)
        [row] = services.status(_cfg(tmp_path), with_pipeline=False)
        assert row.healthy and row.supervisor is not None
        assert supervise.history(row.supervisor)[0].startswith("restarts 2, last failure: exit code 1 at ")
        assert supervise.history(row.supervisor)[1] == "last error: ValueError: boom 1"
    finally:
        process.stop(spec, tmp_path / "run")
    [row] = services.status(_cfg(tmp_path), with_pipeline=False)
    assert row.problem == "not running" and supervise.history(row.supervisor)  # the history stays


TRACEBACK = """\
=== started by stockafolio at 2026-01-01T00:00:00+0000
INFO starting
WARN retrying: Exception in thread
Traceback (most recent call last):
  File "x.py", line 1, in <module>
    connect()
stockafolio.errors.ServiceUnavailable: Kafka is not reachable: 127.0.0.1:9092
INFO shutdown hook called
INFO deleting spark-1

=== supervisor 2026-01-01T00:00:01+0000: toy ended after 1.0 s: exit code 1
"""


# As the streaming job died when Cassandra went away: the query's exception carries the foreachBatch
# writer's traceback (py4j), the interpreter then aborts and the orphaned JVM adds its own exceptions.
SPARK = """\
Traceback (most recent call last):
  File "streaming/job.py", line 366, in main
    spark.streams.awaitAnyTermination()
pyspark.errors.exceptions.captured.StreamingQueryException: [STREAM_FAILED] Query terminated with \
exception: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "streaming/market.py", line 114, in write_prices
    execute_concurrent_with_args(self.session, self.q4, args)
cassandra.cluster.NoHostAvailable: ('Unable to complete the operation against any hosts', {})

Fatal Python error: PyGILState_Release: thread state must be current when releasing
26/12/07 21:15:48 ERROR MicroBatchExecution: Query portfolio terminated with error
py4j.Py4JException: Error while sending a command.
\tat java.base/sun.nio.ch.NioSocketImpl.implWrite(NioSocketImpl.java:425)
java.net.SocketException: Broken pipe
"""


@pytest.mark.parametrize(("text", "line"), [
    (TRACEBACK, "stockafolio.errors.ServiceUnavailable: Kafka is not reachable: 127.0.0.1:9092"),
    (SPARK, "cassandra.cluster.NoHostAvailable: ('Unable to complete the operation against any hosts', {})"),
    ("a\nValueError: one\nb\nKeyError: 'two'\nc\n", "KeyError: 'two'"),
    ("INFO a\n2026 ERROR Executor: task failed\nINFO b\n", "2026 ERROR Executor: task failed"),
    ("INFO a\nCaused by: java.io.IOException: gone\nINFO b\n", "Caused by: java.io.IOException: gone"),
    ("INFO a\nstreaming.job: endpoints missing\n\n  \n", "streaming.job: endpoints missing"),
    ("=== supervisor: only ours\n\n", None),
    ("", None),
])
def test_last_error_line(text: str, line: str | None) -> None:
    assert supervise.last_error_line(text) == line


def test_last_error_line_is_clipped_and_read_from_where_the_run_began(tmp_path: Path) -> None:
    assert len(supervise.last_error_line("RuntimeError: " + "x" * 1000) or "") == supervise.MAX_ERROR_CHARS
    log = tmp_path / "toy.out"
    log.write_text("OldError: previous run\n")
    since = log.stat().st_size
    with log.open("a") as f:
        f.write("just this run\n")
    assert supervise.error_in_log(str(log), since) == "just this run"
    assert supervise.error_in_log(str(tmp_path / "missing.out"), 0) is None


def test_run_again_restarts_a_process_waiting_to_restart_and_reports_it_failing(tmp_path: Path) -> None:
    """The issue's case: the job keeps failing and `run` is run again. It must not say "up"; it
    skips the back-off so the process is tried now, and leaves it to its supervisor (not started here)."""
    run_dir = tmp_path / "run"
    spec = _spec(tmp_path, [sys.executable, "-c", "raise SystemExit('RuntimeError: still broken')"],
                 restart={"backoff_s": 30, "max_backoff_s": 30, "stable_s": 30}, settle_s=5)
    pid = process.start(spec, run_dir)
    _wait_for("the back-off", lambda: _state(run_dir).get("state") == "backoff")
    said: list[str] = []
    with pytest.raises(services.StackError, match=r"(?s)toy failed during start-up.*RuntimeError: still"):
        services.start_all(_cfg(tmp_path), out=said.append, all_specs=[spec])
    assert len(said) == 1 and said[0].startswith("  toy            down after exit code 1 at ")
    assert said[0].endswith(": restarting it now")
    assert _state(run_dir)["restarts"] == 1 and process.running_pid(run_dir, "toy") == pid
    assert process.stop(spec, run_dir) == "stopped"


def test_status_prints_the_history_under_the_row(tmp_path: Path, monkeypatch, capsys) -> None:
    from argparse import Namespace

    from stack import cli, pipeline

    spec = _spec(tmp_path, ["true"])
    state = {"state": "backoff", "restarts": 3, "next_start_at": supervise.now_iso(), "backoff_s": 8,
             "last_failure": {"code": 1, "signal": None, "at": supervise.now_iso(), "ran_s": 2.5,
                              "error": "ValueError: bad config"}}
    row = services.Status("toy", (), None, supervise.problem(state, supervisor_alive=False), 0.0, state)
    monkeypatch.setattr(services, "status", lambda cfg: [row])
    monkeypatch.setattr(services, "specs", lambda cfg: [spec])
    monkeypatch.setattr(pipeline, "written_specs", lambda cfg: [])
    assert cli.cmd_status(_cfg(tmp_path), Namespace(json=False)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:4] == ["toy", "-", "0", "not"]
    assert out[2].strip().startswith("restarts 3, last failure: exit code 1 at ")
    assert out[3].strip() == "last error: ValueError: bad config"
    assert out[-1] == f"--- toy: log {spec.log}; start it again with: bin/stockafolio run"


def test_every_pipeline_process_is_supervised_and_its_spec_round_trips(tmp_path: Path) -> None:
    from stack import pipeline

    cfg = StackConfig(repo=Path("/repo"), cache=tmp_path, var=tmp_path / "var", keyspace="ks")
    specs = pipeline.launch_specs(cfg, pipeline.PipelineOptions(rate=10, users=500, speed=1.0))
    assert [s.restart for s in specs] == [pipeline.RESTART] * len(pipeline.PIPELINE)
    pipeline.write_specs(cfg, specs)
    assert pipeline.written_specs(cfg) == specs
    assert supervise.Policy.of(specs[0]) == supervise.Policy(backoff_s=1, max_backoff_s=60, stable_s=60)
