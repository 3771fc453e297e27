"""The local stack as a whole: provision with Ansible, start in order, stop in reverse, report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stack import health, process, supervise
from stack.config import StackConfig
from stack.launch import LaunchSpec
from stockafolio.errors import StockafolioError

# Start order: cheap and independent first, Cassandra (slowest, biggest) last.
ORDER: tuple[str, ...] = ("minio", "hdfs-namenode", "hdfs-datanode", "kafka", "cassandra")

Say = Callable[[str], None]


class StackError(StockafolioError):
    """A service could not be provisioned or started; the message says which and what to do."""


@dataclass(frozen=True)
class Status:
    name: str
    ports: tuple[int, ...]
    pid: int | None
    problem: str | None  # None when healthy
    rss_mib: float
    supervisor: dict | None = None  # a supervised process's state (stack/supervise.py)

    @property
    def healthy(self) -> bool:
        return self.pid is not None and self.problem is None


def say(msg: str) -> None:
    print(msg, flush=True)


def provision(cfg: StackConfig, tags: str | None = None, var: Path | None = None,
              echo: bool = True) -> subprocess.CompletedProcess[str]:
    """Apply ansible/local.yml to this machine: install what is missing, render configs."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(cfg.ansible_dir / "ansible.cfg"),
           "STOCKAFOLIO_VAR": str(var or cfg.var), "STOCKAFOLIO_CACHE": str(cfg.cache),
           "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false", "ANSIBLE_DISPLAY_OK_HOSTS": "false",
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_FORCE_COLOR": "false"}
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "local.yml"]
    if tags:
        argv += ["--tags", tags]
    out = None if echo else subprocess.PIPE
    done = subprocess.run(argv, cwd=cfg.ansible_dir, env=env, text=True, stdout=out,
                          stderr=subprocess.STDOUT if not echo else None, check=False)
    if done.returncode != 0:
        raise StackError("provisioning failed (ansible/local.yml, output above); fix the failing "
                         "task and run again: finished steps are skipped")
    return done


def specs(cfg: StackConfig) -> list[LaunchSpec]:
    return [LaunchSpec.load(cfg.launch_dir / f"{name}.json") for name in ORDER]


def start_all(cfg: StackConfig, out: Say = say, all_specs: list[LaunchSpec] | None = None) -> list[str]:
    """Start every service not already healthy, one after another; return the names started.
    On any failure (or Ctrl-C) the services this call started are stopped again."""
    started: list[str] = []
    all_specs = specs(cfg) if all_specs is None else all_specs
    watched: dict[str, float] = {}  # supervised process -> since when it must not have failed
    try:
        for spec in all_specs:
            since = time.time()
            if _start_one(cfg, spec, out):
                started.append(spec.name)
            if spec.restart is not None:
                watched[spec.name] = since
        _check_still_up(cfg, [s for s in all_specs if s.name in watched], watched)
    except (StackError, KeyboardInterrupt):
        stop_named(cfg, all_specs, started, out)
        raise
    return started


def stop_named(cfg: StackConfig, all_specs: list[LaunchSpec], names: list[str], out: Say = say) -> None:
    """Stop the processes among `all_specs` named in `names`, in reverse start order."""
    for spec in reversed([s for s in all_specs if s.name in names]):
        out(f"  {spec.name:<14} {process.stop(spec, cfg.run_dir)}")


def _start_one(cfg: StackConfig, spec: LaunchSpec, out: Say) -> bool:
    pid = process.running_pid(cfg.run_dir, spec.name)
    if pid is not None:
        state = process.supervisor_state(cfg.run_dir, spec.name, pid)
        if state is not None and state.get("state") == "backoff":
            out(f"  {spec.name:<14} down after {supervise.describe_exit(state['last_exit'])}: "
                "restarting it now")
            os.kill(pid, signal.SIGUSR1)  # the supervisor skips the rest of its back-off
        _wait_healthy(cfg, spec, pid, out, began=time.monotonic(), supervised=state is not None)
        out(f"  {spec.name:<14} already running (pid {pid})")
        return False
    busy = [p for p in spec.ports if process.port_taken(_host(spec), p)]
    if busy:
        raise StackError(f"{spec.name} cannot start: port {busy[0]} is already in use by another "
                         f"process (find it with: ss -ltnp 'sport = :{busy[0]}'); stop that process "
                         "or change the port in the role defaults")
    began = time.monotonic()
    out(f"  {spec.name:<14} starting (log {spec.log})")
    pid = process.start(spec, cfg.run_dir)
    try:
        _wait_healthy(cfg, spec, pid, out, began, supervised=spec.restart is not None)
    except (StackError, KeyboardInterrupt):
        out(f"  {spec.name:<14} {process.stop(spec, cfg.run_dir)}")
        raise
    out(f"  {spec.name:<14} healthy in {time.monotonic() - began:.1f} s "
        f"(pid {pid}, {process.rss_mib(pid):.0f} MiB)")
    return True


def _host(spec: LaunchSpec) -> str:
    return str(spec.health.get("host", "127.0.0.1"))


def _wait_healthy(cfg: StackConfig, spec: LaunchSpec, pid: int, out: Say, began: float,
                  supervised: bool = False) -> None:
    """Until healthy and `settle_s` after `began` (monotonic); raises when the process exits, or, for
    a supervised one, when its process exited in that time (the supervisor would restart it)."""
    problem: str | None = "not checked yet"
    since = time.time() - (time.monotonic() - began)
    settle_until = began + float(spec.health.get("settle_s", 0))
    while time.monotonic() - began < spec.start_timeout_s:
        if not process.alive(pid):
            raise StackError(_failure(spec, f"{spec.name} exited during start-up"))
        if supervised:
            state = process.supervisor_state(cfg.run_dir, spec.name, pid)
            _raise_if_failed(spec, state, since)
            problem = supervise.problem(state, supervisor_alive=True)
        if problem is None or not supervised:
            problem = health.check(spec.health)
        if problem is None and time.monotonic() >= settle_until:
            return
        time.sleep(1.0)
    raise StackError(_failure(spec, f"{spec.name} not healthy after {spec.start_timeout_s:.0f} s "
                                    f"({problem})"))


def _raise_if_failed(spec: LaunchSpec, state: dict | None, since: float) -> None:
    ended = supervise.failed_since(state, since)
    if ended is None:
        return
    raise StackError(
        f"{spec.name} failed during start-up ({supervise.describe_exit(ended)}), so the stack is not "
        f"up.\n  last error: {ended.get('error') or '(no output)'}\n"
        f"  log: {spec.log}; its last lines:\n{process.log_tail(spec)}\n"
        f"Fix the cause above, then run again: bin/stockafolio run")


def _check_still_up(cfg: StackConfig, watched: list[LaunchSpec], since: dict[str, float]) -> None:
    """After the last start: no supervised process failed while the ones after it were starting."""
    for spec in watched:
        pid = process.running_pid(cfg.run_dir, spec.name)
        state = process.supervisor_state(cfg.run_dir, spec.name, pid)
        if pid is None:
            raise StackError(_failure(spec, f"{spec.name} exited during start-up"))
        _raise_if_failed(spec, state, since[spec.name])


def _failure(spec: LaunchSpec, what: str) -> str:
    return (f"{what}. Last lines of {spec.log}:\n{process.log_tail(spec)}\n"
            f"Fix the cause above, then run again: bin/stockafolio run")


def stop_all(cfg: StackConfig, out: Say = say) -> None:
    from stack import pipeline

    for spec in reversed(pipeline.written_specs(cfg)):
        out(f"  {spec.name:<14} {process.stop(spec, cfg.run_dir)}")
    for name in reversed(ORDER):
        path = cfg.launch_dir / f"{name}.json"
        if path.exists():
            out(f"  {name:<14} {process.stop(LaunchSpec.load(path), cfg.run_dir)}")


def status(cfg: StackConfig, with_pipeline: bool = True) -> list[Status]:
    from stack import pipeline

    rows = []
    for spec in specs(cfg) + (pipeline.written_specs(cfg) if with_pipeline else []):
        pid = process.running_pid(cfg.run_dir, spec.name)
        problem = "not running" if pid is None else health.check(spec.health)
        state = _supervisor(cfg, spec, pid)
        if state is not None:
            problem = supervise.problem(state, supervisor_alive=pid is not None) or problem
        rows.append(Status(spec.name, spec.ports, pid, problem,
                           process.rss_mib(pid) if pid else 0.0, state))
    return rows


def _supervisor(cfg: StackConfig, spec: LaunchSpec, pid: int | None) -> dict | None:
    """The supervisor state of a process: of the running supervisor, or, when none runs, what the
    last one left (why it ended). None for a process that runs unsupervised."""
    if pid is not None:
        return process.supervisor_state(cfg.run_dir, spec.name, pid)
    return supervise.read_state(cfg.run_dir, spec.name) if spec.restart is not None else None


def all_healthy(cfg: StackConfig) -> bool:
    try:
        return all(s.healthy for s in status(cfg, with_pipeline=False))
    except StockafolioError:
        return False
