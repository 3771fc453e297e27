"""The pipeline on top of the local stack: the streaming job and the generator, started by `run`
as managed processes (launch specs written here, so `stop` and `status` treat them like services).
They are Stockafolio's own code, so their command lines live with the code, not in a role."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from stack.config import StackConfig
from stack.launch import LaunchSpec

# Start order: the consumer first, so it is waiting when trades arrive. Stop in reverse.
PIPELINE: tuple[str, ...] = ("streaming", "generator")


@dataclass(frozen=True)
class PipelineOptions:
    rate: int      # trades per second the generator produces
    users: int     # simulated users
    speed: float   # simulated seconds per wall second


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
                   {"kind": "process", "settle_s": 20}, env, 120, 60),
        LaunchSpec("generator", tuple(generator), str(cfg.repo), str(log_dir / "generator.out"), (),
                   {"kind": "process", "settle_s": 10}, env, 60, 30),
    ]


def write_specs(cfg: StackConfig, specs: list[LaunchSpec]) -> None:
    cfg.launch_dir.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        (cfg.launch_dir / f"{spec.name}.json").write_text(json.dumps(_as_json(spec), indent=2) + "\n")


def _as_json(spec: LaunchSpec) -> dict:
    return {"name": spec.name, "argv": list(spec.argv), "cwd": spec.cwd, "log": spec.log,
            "ports": list(spec.ports), "health": spec.health, "env": spec.env,
            "start_timeout_s": spec.start_timeout_s, "stop_timeout_s": spec.stop_timeout_s}


def written_specs(cfg: StackConfig) -> list[LaunchSpec]:
    """The pipeline processes `run` has set up on this stack, in start order."""
    paths = [cfg.launch_dir / f"{name}.json" for name in PIPELINE]
    return [LaunchSpec.load(p) for p in paths if Path(p).exists()]
