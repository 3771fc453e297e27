"""`python -m stack.supervise SPEC --state FILE`: run one pipeline process and restart it when it fails.

The stack manager starts this supervisor (detached, its own session, pid in `<var>/run/<name>.pid`)
instead of the process itself for every launch spec with a `restart` block (the pipeline: streaming
job, generator, web app). The supervisor runs the process in a process group of its own, so the
process and everything it spawns (the streaming job's JVM) can be signalled as one, and then:

- a non-zero exit, or death by a signal that did not come from `stop`: restart after a back-off that
  doubles from `backoff_s` to `max_backoff_s`, back to `backoff_s` once a run lasted `stable_s`;
- exit 0: done, the supervisor exits too (the generator with --duration);
- SIGTERM (what `bin/stockafolio stop` sends): SIGTERM the process group, SIGKILL it after the spec's
  `stop_timeout_s`, exit once the whole group is gone; nothing is left behind;
- SIGUSR1: restart now if waiting to restart (`bin/stockafolio run` on a failing process).

It keeps `<var>/run/<name>.state.json` up to date (what `status` and `run` read): the restarts so
far, the last exit and the last failure (code or signal, time, run length and the last error line of
what the process wrote to its log in that run), and whether the process runs or waits to restart.
The process's output goes to the same log as the supervisor's own lines, which start with `=== `.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from stack.launch import LaunchSpec

LOG_MARK = "=== "  # lines the stack manager writes into a process's log start with this
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Policy:
    backoff_s: float = 1.0       # wait before the first restart
    max_backoff_s: float = 60.0  # the doubling stops here
    stable_s: float = 60.0       # a run at least this long resets the wait to backoff_s

    @classmethod
    def of(cls, spec: LaunchSpec) -> Policy:
        return cls(**(spec.restart or {}))

    def next_delay(self, delay: float | None, ran_s: float) -> float:
        """The wait before the next start: backoff_s after a first failure or a stable run, else
        twice the previous wait, at most max_backoff_s."""
        if delay is None or ran_s >= self.stable_s:
            return self.backoff_s
        return min(delay * 2, self.max_backoff_s)


def state_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.state.json"


def spec_file(run_dir: Path, name: str) -> Path:
    """The copy of the launch spec a supervisor runs (what it was started with, whatever `run`
    writes to <var>/launch later)."""
    return run_dir / f"{name}.spec.json"


def read_state(run_dir: Path, name: str) -> dict[str, Any] | None:
    """The supervisor's state of `name`, None if there is none (not supervised, or not started yet)."""
    try:
        return json.loads(state_file(run_dir, name).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def exit_description(code: int | None, sig: str | None) -> str:
    return f"killed by {sig}" if sig else f"exit code {code}"


# --- what status and run make of a state ------------------------------------------------------

def _epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


def clock(iso: str | None, today: datetime | None = None) -> str:
    """A state time as HH:MM:SS, with the date when it is not today."""
    if iso is None:
        return "?"
    at, today = datetime.fromisoformat(iso), today or datetime.now().astimezone()
    return at.strftime("%H:%M:%S" if at.date() == today.astimezone(at.tzinfo).date() else "%Y-%m-%d %H:%M:%S")


def describe_exit(ended: dict[str, Any]) -> str:
    return (f"{exit_description(ended.get('code'), ended.get('signal'))} at {clock(ended.get('at'))} "
            f"after {ended.get('ran_s', 0):g} s")


def problem(state: dict[str, Any] | None, supervisor_alive: bool) -> str | None:
    """The health column of `status` for a supervised process: None while its process runs."""
    if not supervisor_alive:
        if state is None or state.get("state") == "stopped":
            return "not running"
        ended = state.get("last_exit")
        if state.get("state") == "exited" and ended:
            return f"not running: ended on its own ({describe_exit(ended)})"
        return "not running: its supervisor is gone"
    if state is None or state.get("state") == "starting":
        return "starting"
    if state["state"] == "backoff":
        return (f"down, restart {state['restarts'] + 1} at {clock(state.get('next_start_at'))} "
                f"(back-off {state.get('backoff_s', 0):g} s)")
    return None if state["state"] == "running" else str(state["state"])


def history(state: dict[str, Any] | None) -> list[str]:
    """The lines `status` adds under a supervised process that restarted or is down: the restarts,
    the last failure and its last error line ([] when it never failed)."""
    failure = (state or {}).get("last_failure")
    if not failure:
        return []
    return [f"restarts {state['restarts']}, last failure: {describe_exit(failure)}",  # type: ignore[index]
            f"last error: {failure.get('error') or '(no output)'}"]


def failed_since(state: dict[str, Any] | None, since: float) -> dict[str, Any] | None:
    """The last exit of the supervised process if it happened at or after `since` (epoch seconds)."""
    ended = (state or {}).get("last_exit")
    at = _epoch(ended.get("at")) if ended else None
    return ended if at is not None and at >= since else None


# --- the last error line of a log ---------------------------------------------------------------

_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b(:.*)?$")
_ERROR_WORD = re.compile(r"\b(ERROR|FATAL|CRITICAL)\b|Exception|Error\b|\berror:")
_TRACEBACK = "Traceback (most recent call last):"
MAX_ERROR_CHARS = 300


def last_error_line(text: str) -> str | None:
    """The line of a process's output that best says why it ended: the exception line that ends the
    last Python traceback (nested ones too, as py4j prints them: `... Return Message: Traceback`),
    whatever the exception's name; else the last line like `SomeError: ...` / `SomeException: ...`;
    else the last line with ERROR or Exception; else the last non-empty line; None for no output.
    The traceback comes first because a JVM keeps writing its own exceptions after its Python driver
    died (`java.net.SocketException: Broken pipe`), which say nothing about why. Lines the stack
    manager wrote (`=== ...`) do not count."""
    lines = [ln.rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip() and not ln.startswith(LOG_MARK)]
    if not lines:
        return None
    ends = _traceback_ends(lines)
    exception_lines = [i for i, ln in enumerate(lines) if _EXCEPTION_LINE.match(ln)]
    if ends or exception_lines:
        return _clip(lines[max(ends) if ends else exception_lines[-1]])
    error_lines = [ln for ln in lines if _ERROR_WORD.search(ln)]
    return _clip((error_lines or lines)[-1])


def _traceback_ends(lines: list[str]) -> list[int]:
    """Indexes of the lines that end Python tracebacks: the first unindented line after a line that
    ends with `Traceback (most recent call last):`, which names the exception."""
    ends, inside = [], False
    for i, line in enumerate(lines):
        if line.endswith(_TRACEBACK):
            inside = True
        elif inside and not line[:1].isspace():
            ends.append(i)
            inside = False
    return ends


def _clip(line: str) -> str:
    line = line.strip()
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS - 3] + "..."


def log_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def error_in_log(path: str, since: int, window: int = 64 * 1024) -> str | None:
    """`last_error_line` of what was appended to the log at `path` after byte `since` (its last
    `window` bytes at most); all of it when the log is now shorter than `since` (it was rotated
    meanwhile, stack/logrotate.py)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            f.seek(max(since if since <= end else 0, end - window))
            return last_error_line(f.read().decode(errors="replace"))
    except OSError:
        return None


# --- processes ---------------------------------------------------------------------------------

def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_supervisor() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, however (even by SIGKILL), so a
    killed supervisor does not leave an unsupervised process that a new `run` would start twice."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# --- the supervisor ----------------------------------------------------------------------------

class Supervisor:
    """Runs `spec` until stopped or until it exits 0; see the module docstring."""

    def __init__(self, spec: LaunchSpec, state_path: Path, policy: Policy, poll_s: float = 0.1):
        self.spec, self.state_path, self.policy, self.poll_s = spec, state_path, policy, poll_s
        self.stopping = False  # set by SIGTERM (stop): end the child, do not restart it
        self.kicked = False    # set by SIGUSR1: skip the rest of the back-off
        self.state: dict[str, Any] = {
            "name": spec.name, "supervisor_pid": os.getpid(), "state": "starting", "log": spec.log,
            "started_at": now_iso(), "restarts": 0, "child_pid": None, "child_started_at": None,
            "next_start_at": None, "last_exit": None, "last_failure": None, "stop": None}

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGUSR1, self._on_kick)
        delay: float | None = None
        while not self.stopping:
            since, began = log_size(self.spec.log), time.monotonic()
            child = self._run_child()
            code, ran_s = child.returncode, time.monotonic() - began
            if self.stopping:
                break
            self._clear_group(child.pid)
            self._record_exit(code, ran_s, since)
            if code == 0:
                self._update(state="exited", child_pid=None)
                self._say(f"not restarting {self.spec.name}: it ended on its own with exit code 0")
                return 0
            delay = self.policy.next_delay(delay, ran_s)
            self._wait_to_restart(delay)
        self._update(state="stopped", child_pid=None, next_start_at=None)
        return 0

    def _on_stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _on_kick(self, signum: int, _frame: object) -> None:
        self.kicked = True

    def _run_child(self) -> subprocess.Popen[bytes]:
        """Start the child in a process group of its own and wait for it to end; on stop, end the
        group. The child is returned ended (`returncode` set)."""
        self._say(f"starting {self.spec.name}" + (f" (restart {self.state['restarts']})"
                                                   if self.state["restarts"] else ""))
        child = subprocess.Popen(
            self.spec.argv, cwd=self.spec.cwd, env={**os.environ, **self.spec.env},
            stdin=subprocess.DEVNULL, process_group=0, preexec_fn=_die_with_supervisor)
        self._update(state="running", child_pid=child.pid, child_started_at=now_iso(), next_start_at=None)
        while child.poll() is None:
            if self.stopping:
                self._terminate(child)
                break
            time.sleep(self.poll_s)
        return child

    def _terminate(self, child: subprocess.Popen[bytes]) -> None:
        """SIGTERM the child's group, wait up to stop_timeout_s until all of it is gone, then SIGKILL."""
        self._update(state="stopping")
        timeout = self.spec.stop_timeout_s
        killpg(child.pid, signal.SIGTERM)
        if self._group_gone(child, timeout):
            self._update(stop="stopped")
            return
        killpg(child.pid, signal.SIGKILL)
        self._group_gone(child, 10.0)
        self._update(stop=f"killed after {timeout:.0f}s")
        self._say(f"{self.spec.name} ignored SIGTERM for {timeout:.0f} s: killed")

    def _group_gone(self, child: subprocess.Popen[bytes], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while child.poll() is None or group_members(child.pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_s)
        return True

    def _clear_group(self, pgid: int) -> None:
        """What the child left running in its group (a JVM whose driver died): SIGTERM, then SIGKILL
        after a few seconds, so a restart does not run beside it."""
        left = group_members(pgid)
        if not left:
            return
        self._say(f"stopping {len(left)} process(es) {self.spec.name} left behind: {left}")
        killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + min(10.0, self.spec.stop_timeout_s)
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(self.poll_s)
        killpg(pgid, signal.SIGKILL)

    def _record_exit(self, code: int, ran_s: float, since: int) -> None:
        sig = signal.Signals(-code).name if code < 0 else None
        error = error_in_log(self.spec.log, since)
        last = {"code": None if sig else code, "signal": sig, "at": now_iso(), "ran_s": round(ran_s, 1),
                "error": error}
        self._update(last_exit=last, child_pid=None, **({"last_failure": last} if code else {}))
        self._say(f"{self.spec.name} ended after {ran_s:.1f} s: {exit_description(code, sig)}"
                  + (f"; last error: {error}" if error and code else ""))

    def _wait_to_restart(self, delay: float) -> None:
        """The back-off: sleep `delay` unless stopped or kicked; count the restart."""
        restart_at = time.time() + delay
        self.kicked = False  # before the state says "backoff": a kick sent on reading it must count
        self._update(state="backoff", backoff_s=delay,
                     next_start_at=datetime.fromtimestamp(restart_at).astimezone().isoformat(
                         timespec="milliseconds"))
        self._say(f"restarting {self.spec.name} in {delay:g} s")
        while time.time() < restart_at and not (self.stopping or self.kicked):
            time.sleep(self.poll_s)
        if not self.stopping:
            self.state["restarts"] += 1

    def _update(self, **changes: Any) -> None:
        self.state.update(changes)
        _write_json(self.state_path, self.state)

    def _say(self, what: str) -> None:
        print(f"{LOG_MARK}supervisor {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {what}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = LaunchSpec.load(args.spec)
    return Supervisor(spec, args.state, Policy.of(spec)).run()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m stack.supervise",
        description="Run the process of a launch spec and restart it when it fails (non-zero exit, or "
                    "killed by a signal not sent by stop), with a doubling back-off (the spec's "
                    "`restart` block). SIGTERM stops the process's whole process group and this "
                    "supervisor. `bin/stockafolio run` starts it for each pipeline process; "
                    "`bin/stockafolio status` shows its restarts and the last error.")
    p.add_argument("spec", type=Path, help="launch spec JSON (stack/LAUNCH.md)")
    p.add_argument("--state", type=Path, required=True,
                   help="state file to keep up to date (JSON: restarts, last exit, last error line)")
    return p


if __name__ == "__main__":
    sys.exit(main())
