"""Log rotation of the processes the stack starts (stack/logrotate.py): copy-truncate of a log that a
process keeps appending to, the backups kept, and the keeper started beside a real process, plain
and supervised."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stack import logrotate, process, supervise
from stack.launch import LaunchSpec
from stack.logrotate import Rotation
from tests.unit.waiting import wait_for

SMALL = Rotation(max_bytes=20_000, backups=2, interval_s=0.05)

# Numbered lines as fast as it can, through the stdout the stack manager gives it (append mode).
WRITER = """
    import itertools, sys, time
    for n in itertools.count():
        sys.stdout.write(f"line {n:09d} " + "x" * 80 + "\\n")
        if n % 10 == 0:
            sys.stdout.flush()
            time.sleep(0.001)
"""


def _wait_for(what: str, predicate: Callable[[], Any], timeout_s: float = 15) -> Any:
    return wait_for(what, predicate, timeout_s)


def _spec(tmp_path: Path, rotation: Rotation = SMALL, restart: dict[str, float] | None = None) -> LaunchSpec:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))
    return LaunchSpec(name="toy", argv=(sys.executable, str(script)), cwd=str(tmp_path),
                      log=str(tmp_path / "log" / "toy.out"), ports=(),
                      health={"kind": "process", "settle_s": 0}, start_timeout_s=10, stop_timeout_s=5,
                      restart=restart, log_rotate=rotation)


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path):
    yield
    process.stop(_spec(tmp_path), tmp_path / "run")


def _numbers(path: Path) -> list[int]:
    return [int(line.split()[1]) for line in path.read_text().splitlines() if line.startswith("line ")]


def test_rotate_copies_truncates_and_shifts_the_backups(tmp_path: Path) -> None:
    log = tmp_path / "p.out"
    for generation in ("first", "second", "third"):
        log.write_text(f"{generation}\n")
        assert logrotate.rotate(log, backups=2) == len(generation) + 1
    assert log.read_text() == ""
    assert logrotate.backup(log, 1).read_text() == "third\n"
    assert logrotate.backup(log, 2).read_text() == "second\n"
    assert not logrotate.backup(log, 3).exists()  # the oldest went


def test_an_append_mode_writer_continues_at_the_start_after_truncation(tmp_path: Path) -> None:
    log = tmp_path / "p.out"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # what `>>` gives the process
    try:
        os.write(fd, b"a" * 30_000)
        assert logrotate.rotate_if_big(log, SMALL)
        os.write(fd, b"after\n")
    finally:
        os.close(fd)
    text = log.read_bytes()
    assert b"\0" not in text and text.endswith(b"after\n") and len(text) < 200  # no hole of 30,000 NULs
    assert logrotate.backup(log, 1).read_bytes() == b"a" * 30_000


def test_small_logs_and_rotation_off_are_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "p.out"
    log.write_bytes(b"x" * 30_000)
    assert not logrotate.rotate_if_big(log, Rotation(max_bytes=40_000))
    assert not logrotate.rotate_if_big(log, Rotation(max_bytes=0))
    assert not logrotate.rotate_if_big(tmp_path / "missing.out", SMALL)
    assert log.stat().st_size == 30_000 and not logrotate.backup(log, 1).exists()


def test_rotation_settings_default_to_50_mib_x_5_and_round_trip_in_the_spec(tmp_path: Path) -> None:
    assert (Rotation().max_bytes, Rotation().backups) == (50 * 1024 * 1024, 5)
    plain = _spec(tmp_path, Rotation())
    assert "log_rotate" not in plain.as_json()  # the roles' specs need no block for the defaults
    for spec in (plain, _spec(tmp_path)):
        spec.write(tmp_path / "spec.json")
        assert LaunchSpec.load(tmp_path / "spec.json") == spec
    with pytest.raises(ValueError, match="backups >= 1"):
        Rotation.of({"backups": 0})


def test_the_keeper_bounds_a_running_processes_log_and_ends_with_it(tmp_path: Path) -> None:
    spec, run_dir = _spec(tmp_path), tmp_path / "run"
    log = Path(spec.log)
    process.start(spec, run_dir)
    keeper = int(process.keeper_pidfile(run_dir, "toy").read_text())
    _wait_for("two rotations", lambda: logrotate.backup(log, 2).exists())
    for _ in range(50):
        # bounded, give or take what the process writes between two checks (~1 MB/s here)
        assert log.stat().st_size < 20 * SMALL.max_bytes
        time.sleep(0.01)
    assert not logrotate.backup(log, 3).exists()
    # what the process wrote continues from one part to the next, newest in the log itself
    newest, older = _numbers(logrotate.backup(log, 1)), _numbers(logrotate.backup(log, 2))
    assert newest == list(range(newest[0], newest[0] + len(newest)))
    assert older[-1] < newest[0]
    assert "log rotated" in log.read_text() or "log rotated" in logrotate.backup(log, 1).read_text()
    assert b"\0" not in log.read_bytes()
    assert process.stop(spec, run_dir) == "stopped"
    _wait_for("the keeper to end with its process", lambda: not process.alive(keeper), timeout_s=5)


def test_a_supervised_process_log_is_rotated_and_its_last_error_still_found(tmp_path: Path) -> None:
    spec, run_dir = _spec(tmp_path, restart={"backoff_s": 0.1, "max_backoff_s": 0.4, "stable_s": 30}), \
        tmp_path / "run"
    pid = process.start(spec, run_dir)
    keeper = int(process.keeper_pidfile(run_dir, "toy").read_text())
    _wait_for("a rotation", lambda: logrotate.backup(Path(spec.log), 1).exists())
    assert process.alive(pid) and process.alive(keeper)
    assert process.stop(spec, run_dir) == "stopped"
    _wait_for("the keeper to end with the supervisor", lambda: not process.alive(keeper), timeout_s=5)


def test_last_error_is_read_from_the_start_of_a_log_rotated_during_the_run(tmp_path: Path) -> None:
    log = tmp_path / "p.out"
    log.write_text("ValueError: fixed long ago\n" + "x" * 5_000 + "\n")
    since = supervise.log_size(str(log))
    logrotate.rotate(log, backups=1)
    with open(log, "a") as out:
        out.write("RuntimeError: the reason of this run\n")
    assert supervise.error_in_log(str(log), since) == "RuntimeError: the reason of this run"


def test_the_keeper_stops_when_its_pid_is_reused_by_another_process(tmp_path: Path) -> None:
    log = tmp_path / "p.out"
    log.write_bytes(b"x" * 30_000)
    sleeps: list[float] = []
    started = logrotate.start_time(os.getpid())
    assert started is not None
    logrotate.keep(log, os.getpid(), SMALL, started=started + 1, sleep=sleeps.append)  # not "ours"
    assert sleeps == [] and log.stat().st_size == 30_000


def test_no_keeper_when_rotation_is_off(tmp_path: Path) -> None:
    spec, run_dir = _spec(tmp_path, Rotation(max_bytes=0)), tmp_path / "run"
    process.start(spec, run_dir)
    _wait_for("the process's output", lambda: "line 000000010" in Path(spec.log).read_text())
    assert not process.keeper_pidfile(run_dir, "toy").exists()
    assert process.stop(spec, run_dir) == "stopped"
