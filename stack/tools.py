"""Lint tools that cannot share the project's virtualenv, installed into the cache on first use:
checkov (its pins clash with ours) in a virtualenv of its own, OpenTofu built from the Go module
proxy. Versions come from ansible/group_vars/all/versions.yml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from stack.config import StackConfig
from stockafolio.errors import StockafolioError


def tool_versions(cfg: StackConfig) -> dict[str, str]:
    text = (cfg.ansible_dir / "group_vars" / "all" / "versions.yml").read_text()
    return yaml.safe_load(text)["stockafolio_tools"]


def checkov(cfg: StackConfig) -> Path:
    version = tool_versions(cfg)["checkov"]
    venv = cfg.cache / "tools" / f"checkov-{version}"
    if not (venv / ".complete").exists():
        print(f"installing checkov {version} into {venv} (first run only, ~1 min)", flush=True)
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], "checkov virtualenv")
        _run([str(venv / "bin" / "pip"), "install", "-q", "--progress-bar", "off", f"checkov=={version}"],
             "pip install checkov", env={"PIP_CACHE_DIR": str(cfg.cache / "pip")})
        (venv / ".complete").touch()
    return venv / "bin" / "checkov"


def tofu(cfg: StackConfig) -> Path:
    versions = tool_versions(cfg)
    home = cfg.cache / "tofu" / versions["opentofu"]
    binary = home / "bin" / "tofu"
    if not binary.exists():
        print(f"building OpenTofu {versions['opentofu']} from the Go module proxy into {binary} "
              "(first run only, ~6 min)", flush=True)
        _build_tofu(cfg, home, versions["opentofu"], versions["opentofu_hcl"])
    return binary


def _build_tofu(cfg: StackConfig, home: Path, version: str, hcl: str) -> None:
    build = home / "build"
    build.mkdir(parents=True, exist_ok=True)
    (build / "go.mod").write_text(
        "module stockafolio.local/tofubuild\n\ngo 1.26\n\n"
        f"require github.com/opentofu/opentofu {version}\n\n"
        f"replace github.com/hashicorp/hcl/v2 => {hcl}\n")
    env = {"GOMODCACHE": str(cfg.cache / "go" / "mod"), "GOCACHE": str(cfg.cache / "go" / "build"),
           "GOFLAGS": "-mod=mod -modcacherw", "GOTOOLCHAIN": "local"}
    pkg = "github.com/opentofu/opentofu/cmd/tofu"
    _run(["go", "get", f"{pkg}@{version}"], "go get opentofu", cwd=build, env=env)
    flags = "-s -w -X github.com/opentofu/opentofu/version.dev=no"
    _run(["go", "build", "-trimpath", "-ldflags", flags, "-o", str(home / "bin" / "tofu"), pkg],
         "go build opentofu", cwd=build, env=env)


def _run(argv: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, check=False)
    if done.returncode != 0:
        raise StockafolioError(f"{what} failed (exit {done.returncode}, output above); run again to retry")
