"""Lint tools that cannot share the project's virtualenv, installed into the cache on first use:
checkov (its pins clash with ours) in a virtualenv of its own, OpenTofu built from the Go module
proxy. Versions come from ansible/group_vars/all/versions.yml. Also the web app's browser libraries
(npm, pinned by webapp/assets/package-lock.json) and the chromium the browser tests drive."""

from __future__ import annotations

import hashlib
import os
import shutil
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


WEB_ASSETS = Path("webapp") / "assets"   # package.json + package-lock.json, relative to the clone
CHROMIUM = Path("/usr/bin/chromium")


def npm_assets_dir(cache: Path, repo: Path) -> Path:
    """Where `npm_assets` installs the web app's browser libraries: one folder per lock file, so a
    changed pin installs beside the old one and never under a running app. The web app computes
    the same path (webapp.pages.default_vendor_dir); a unit test keeps the two equal."""
    lock = (repo / WEB_ASSETS / "package-lock.json").read_bytes()
    return cache / "npm" / hashlib.sha256(lock).hexdigest()[:12] / "node_modules"


def npm_assets(cfg: StackConfig) -> Path:
    """`npm ci` the pinned browser libraries (chart.js, socket.io-client) into the cache, once;
    return the node_modules folder the web app serves its vendor files from."""
    modules = npm_assets_dir(cfg.cache, cfg.repo)
    home = modules.parent
    if (home / ".complete").exists():
        return modules
    if shutil.which("npm") is None:
        raise StockafolioError("npm is missing: install Node.js and npm (Debian: apt-get install -y npm), "
                               "then run again")
    print(f"installing the web app's browser libraries with npm ci into {home} (first run only)",
          flush=True)
    home.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(cfg.repo / WEB_ASSETS / name, home / name)
    _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
         "npm ci (web app libraries)", cwd=home, env={"npm_config_cache": str(cfg.cache / "npm" / "_cache")})
    (home / ".complete").touch()
    return modules


def chromium() -> Path:
    """The browser the browser tests drive: Debian's chromium, installed with apt when missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    print("installing chromium for the browser tests (apt-get, first run only, ~1 min)", flush=True)
    if os.geteuid() != 0:
        raise StockafolioError(f"{CHROMIUM} is missing; install it as root with: apt-get install -y "
                               "--no-install-recommends chromium chromium-driver")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update"], "apt-get update", env=env)
    _run(["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"],
         "apt-get install chromium", env=env)
    if not CHROMIUM.exists():
        raise StockafolioError(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def _run(argv: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, check=False)
    if done.returncode != 0:
        raise StockafolioError(f"{what} failed (exit {done.returncode}, output above); run again to retry")
