"""The launch spec a role renders for each process (see stack/LAUNCH.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockafolio.errors import ConfigError


@dataclass(frozen=True)
class LaunchSpec:
    name: str
    argv: tuple[str, ...]
    cwd: str
    log: str
    ports: tuple[int, ...]
    health: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 120.0
    stop_timeout_s: float = 60.0

    @classmethod
    def load(cls, path: Path) -> LaunchSpec:
        try:
            raw = json.loads(path.read_text())
            return cls(
                name=raw["name"], argv=tuple(raw["argv"]), cwd=raw["cwd"], log=raw["log"],
                ports=tuple(int(p) for p in raw["ports"]), health=dict(raw["health"]),
                env={k: str(v) for k, v in raw.get("env", {}).items()},
                start_timeout_s=float(raw.get("start_timeout_s", 120)),
                stop_timeout_s=float(raw.get("stop_timeout_s", 60)),
            )
        except FileNotFoundError:
            raise ConfigError(f"{path} is missing; provision first: bin/stockafolio run") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path} is not a valid launch spec: {exc!r}") from None
