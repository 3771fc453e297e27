"""The stack manager's settings, read from the environment once, at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stockafolio.settings import REPO, default_keyspace, default_var_dir


@dataclass(frozen=True)
class StackConfig:
    repo: Path      # the clone
    cache: Path     # downloads and builds shared by every clone on this machine
    var: Path       # this stack's configs, data, logs, pids (survives stop/start)
    keyspace: str   # Cassandra keyspace the migrations go to

    @property
    def ansible_dir(self) -> Path:
        return self.repo / "ansible"

    @property
    def launch_dir(self) -> Path:
        return self.var / "launch"

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    @property
    def migrations_dir(self) -> Path:
        return self.repo / "cassandra" / "migrations"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> StackConfig:
        cache = Path(env.get("STOCKAFOLIO_CACHE") or Path.home() / ".cache" / "stockafolio")
        return cls(REPO, cache.resolve(), default_var_dir(env), default_keyspace(env))
