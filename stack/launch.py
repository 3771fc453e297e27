"""The launch spec a role renders for each process (see stack/LAUNCH.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.logrotate import Rotation
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
    # Set: the process runs under stack/supervise.py, restarted when it fails (keys as in LAUNCH.md).
    restart: dict[str, float] | None = None
    # How its `.out` log is kept bounded (stack/logrotate.py); optional `log_rotate` block in the JSON.
    log_rotate: Rotation = field(default_factory=Rotation)

    @classmethod
    def load(cls, path: Path) -> LaunchSpec:
        try:
            raw = json.loads(path.read_text())
            restart = raw.get("restart")
            return cls(
                name=raw["name"], argv=tuple(raw["argv"]), cwd=raw["cwd"], log=raw["log"],
                ports=tuple(int(p) for p in raw["ports"]), health=dict(raw["health"]),
                env={k: str(v) for k, v in raw.get("env", {}).items()},
                start_timeout_s=float(raw.get("start_timeout_s", 120)),
                stop_timeout_s=float(raw.get("stop_timeout_s", 60)),
                restart=None if restart is None else {k: float(v) for k, v in restart.items()},
                log_rotate=Rotation.of(raw.get("log_rotate")),
            )
        except FileNotFoundError:
            raise ConfigError(f"{path} is missing; provision first: bin/stockafolio run") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path} is not a valid launch spec: {exc!r}") from None

    def as_json(self) -> dict[str, Any]:
        """The spec as `load` reads it back (`restart` only when set)."""
        raw: dict[str, Any] = {
            "name": self.name, "argv": list(self.argv), "cwd": self.cwd, "log": self.log,
            "ports": list(self.ports), "health": self.health, "env": self.env,
            "start_timeout_s": self.start_timeout_s, "stop_timeout_s": self.stop_timeout_s}
        if self.log_rotate != Rotation():
            raw["log_rotate"] = self.log_rotate.as_json()
        return raw if self.restart is None else {**raw, "restart": self.restart}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
