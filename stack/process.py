"""Start, find and stop one service process. Each runs detached in its own session, so it outlives
the command that started it, and its pid is kept in `<var>/run/<name>.pid`. A spec with a `restart`
block runs under its supervisor (stack/supervise.py): the pid is the supervisor's, which restarts the
process when it fails and stops it (its whole process group) when it gets SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stack import logrotate, supervise
from stack.launch import LaunchSpec

REPO = Path(__file__).resolve().parent.parent
SUPERVISOR_GRACE_S = 15.0  # a supervisor's own stop, after its child's stop_timeout_s


def pidfile(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def keeper_pidfile(run_dir: Path, name: str) -> Path:
    """The pid of the keeper of `name`'s log (stack/logrotate.py); it ends with the process."""
    return run_dir / f"{name}.logrotate.pid"


def running_pid(run_dir: Path, name: str) -> int | None:
    """The pid recorded for `name` if that process is still alive (and not a zombie)."""
    path = pidfile(run_dir, name)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


# A shell starts the service in the background in a session of its own, prints its pid and exits:
# the service is then nobody's child here, so it outlives this command and leaves no zombie.
_LAUNCHER = 'log="$1"; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!'


def start(spec: LaunchSpec, run_dir: Path) -> int:
    """Spawn the process detached, stdout and stderr appended to its log, and the keeper that
    rotates that log (unless the spec turns rotation off); return the process's pid."""
    Path(spec.log).parent.mkdir(parents=True, exist_ok=True)
    Path(spec.cwd).mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(spec.log, "ab") as log:
        log.write(f"\n=== started by stockafolio at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
    argv, cwd, env = list(spec.argv), spec.cwd, {**os.environ, **spec.env}
    if spec.restart is not None:
        argv, cwd, env = _supervisor_argv(spec, run_dir), str(REPO), dict(os.environ)
    pid = _launch(spec.log, argv, cwd, env)
    pidfile(run_dir, spec.name).write_text(f"{pid}\n")
    if spec.log_rotate.max_bytes > 0:
        keeper = _launch(spec.log, logrotate.keeper_argv(spec.log, pid, spec.log_rotate), str(REPO),
                         dict(os.environ))
        keeper_pidfile(run_dir, spec.name).write_text(f"{keeper}\n")
    return pid


def _launch(log: str, argv: list[str], cwd: str, env: dict[str, str]) -> int:
    launched = subprocess.run(["/bin/sh", "-c", _LAUNCHER, "sh", log, *argv], cwd=cwd, env=env,
                              capture_output=True, text=True, check=True)
    return int(launched.stdout.strip())


def _supervisor_argv(spec: LaunchSpec, run_dir: Path) -> list[str]:
    """`python -m stack.supervise` on a copy of the spec (run from the clone, so `stack` imports);
    the previous run's state file goes, so that what `run` reads next is this supervisor's."""
    spec.write(supervise.spec_file(run_dir, spec.name))
    state = supervise.state_file(run_dir, spec.name)
    state.unlink(missing_ok=True)
    return [sys.executable, "-m", "stack.supervise", str(supervise.spec_file(run_dir, spec.name)),
            "--state", str(state)]


def supervisor_state(run_dir: Path, name: str, pid: int | None) -> dict | None:
    """The state of the supervisor running as `pid` (None: not supervised, or not started yet)."""
    state = supervise.read_state(run_dir, name)
    return state if state is not None and pid is not None and state.get("supervisor_pid") == pid else None


def stop(spec: LaunchSpec, run_dir: Path) -> str:
    """SIGTERM the process group, wait up to stop_timeout_s, then SIGKILL. Returns what happened.
    A supervisor ends its child's group itself (SIGKILL after stop_timeout_s), so it gets a little
    longer; if it has to be killed, so is the group of the child it was running."""
    pid = running_pid(run_dir, spec.name)
    if pid is None:
        pidfile(run_dir, spec.name).unlink(missing_ok=True)
        return "not running"
    supervised = spec.restart is not None or supervisor_state(run_dir, spec.name, pid) is not None
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + spec.stop_timeout_s + (SUPERVISOR_GRACE_S if supervised else 0)
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.2)
    outcome = "stopped"
    if alive(pid):
        state = supervisor_state(run_dir, spec.name, pid)
        _signal_group(pid, signal.SIGKILL)
        if state and state.get("child_pid"):
            _signal_group(int(state["child_pid"]), signal.SIGKILL)
        outcome = f"killed after {spec.stop_timeout_s:.0f}s"
        _wait_gone(pid)
    elif supervised:
        outcome = (supervise.read_state(run_dir, spec.name) or {}).get("stop") or outcome
    pidfile(run_dir, spec.name).unlink(missing_ok=True)
    return outcome


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants, in MiB."""
    total_kib = 0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                for child in (task / "children").read_text().split():
                    found += [int(child), *_descendants(int(child))]
    return found


def log_tail(spec: LaunchSpec, lines: int = 20) -> str:
    try:
        with open(spec.log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
    except FileNotFoundError:
        return f"(no log at {spec.log})"
