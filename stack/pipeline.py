"""The pipeline on top of the local stack: the streaming job, the generator and the web app, started
by `run` as managed processes (launch specs written here, so `stop` and `status` treat them like
services). They are Stockafolio's own code, so their command lines live with the code, not in a role.
Each runs under a supervisor (stack/supervise.py) that restarts it when it fails, with RESTART's
back-off: a job that died on a Kafka or Cassandra restart comes back by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from stack.config import StackConfig
from stack.launch import LaunchSpec
from stockafolio.errors import StockafolioError

# Start order: the consumer first, so it is waiting when trades arrive. Stop in reverse.
PIPELINE: tuple[str, ...] = ("streaming", "generator", "webapp")
# Restart after 1 s, then 2, 4, ... 60 s; back to 1 s once a run lasted a minute.
RESTART: dict[str, float] = {"backoff_s": 1, "max_backoff_s": 60, "stable_s": 60}


@dataclass(frozen=True)
class PipelineOptions:
    rate: int      # trades per second the generator produces
    users: int     # simulated users
    speed: float   # simulated seconds per wall second
    web_port: int = 8000  # the web app listens on 127.0.0.1:<web_port>


def launch_specs(cfg: StackConfig, opts: PipelineOptions) -> list[LaunchSpec]:
    env = {"PYTHONPATH": str(cfg.repo), "STOCKAFOLIO_VAR": str(cfg.var),
           "STOCKAFOLIO_KEYSPACE": cfg.keyspace}
    log_dir = cfg.var / "log" / "pipeline"
    python = sys.executable
    streaming = [python, "-m", "streaming.job", "--keyspace", cfg.keyspace]
    generator = [python, "-m", "generator", "live", "--rate", str(opts.rate), "--users", str(opts.users),
                 "--speed", str(opts.speed), "--var", str(cfg.var)]
    return [
        LaunchSpec("streaming", tuple(streaming), str(cfg.repo), str(log_dir / "streaming.out"), (),
                   {"kind": "process", "settle_s": 20}, env, 120, 60, RESTART),
        LaunchSpec("generator", tuple(generator), str(cfg.repo), str(log_dir / "generator.out"), (),
                   {"kind": "process", "settle_s": 10}, env, 60, 30, RESTART),
        _webapp(cfg, opts, env, python, log_dir),
    ]


def _webapp(cfg: StackConfig, opts: PipelineOptions, env: dict[str, str], python: str,
            log_dir: Path) -> LaunchSpec:
    """gunicorn with threaded (gthread) workers (see webapp/server.py); healthy once /healthz answers."""
    argv = [python, "-m", "webapp", "--host", "127.0.0.1", "--port", str(opts.web_port),
            "--keyspace", cfg.keyspace]
    health = {"kind": "http", "url": f"http://127.0.0.1:{opts.web_port}/healthz", "expect_status": 200}
    return LaunchSpec("webapp", tuple(argv), str(cfg.repo), str(log_dir / "webapp.out"), (opts.web_port,),
                      health, {**env, "STOCKAFOLIO_CACHE": str(cfg.cache)}, 60, 30, RESTART)


def seed_demo_accounts(cfg: StackConfig, opts: PipelineOptions) -> list[dict]:
    """Demo dashboard accounts on simulated users that trade often, plus a firm analyst; returns
    [{username, password, role, user_id}] as written to <var>/secrets/demo-accounts.json (0600)."""
    env = {"PYTHONPATH": str(cfg.repo), "STOCKAFOLIO_VAR": str(cfg.var), "STOCKAFOLIO_KEYSPACE": cfg.keyspace}
    argv = [sys.executable, "-m", "webapp", "accounts", "seed", "--users", str(opts.users)]
    done = subprocess.run(argv, cwd=cfg.repo, env={**os.environ, **env}, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise StockafolioError(f"seeding the demo accounts failed: {done.stderr.strip()[-500:]}")
    return json.loads((cfg.var / "secrets" / "demo-accounts.json").read_text())



def write_specs(cfg: StackConfig, specs: list[LaunchSpec]) -> None:
    for spec in specs:
        spec.write(cfg.launch_dir / f"{spec.name}.json")


def written_specs(cfg: StackConfig) -> list[LaunchSpec]:
    """The pipeline processes `run` has set up on this stack, in start order."""
    paths = [cfg.launch_dir / f"{name}.json" for name in PIPELINE]
    return [LaunchSpec.load(p) for p in paths if Path(p).exists()]
