"""The two dashboards (HTML shells filled by static JS from the JSON API and Socket.IO) and the
browser libraries installed by npm, served from this origin (the CSP allows 'self' only)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, send_from_directory
from flask.typing import ResponseReturnValue

from webapp.auth import firm_required, user_page

bp = Blueprint("pages", __name__)

ASSETS = Path(__file__).resolve().parent / "assets"
# The only files served from the npm folder: name in the URL -> path under node_modules.
VENDOR_FILES: dict[str, str] = {
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "socket.io.min.js": "socket.io-client/dist/socket.io.min.js",
}


def default_vendor_dir(cache: Path) -> Path:
    """Where stack.tools.npm_assets installs the libraries pinned by webapp/assets/package-lock.json
    (the same formula as stack.tools.npm_assets_dir; a unit test keeps the two equal)."""
    lock = (ASSETS / "package-lock.json").read_bytes()
    return cache / "npm" / hashlib.sha256(lock).hexdigest()[:12] / "node_modules"


@bp.get("/me")
@user_page  # a firm account has no portfolio: it is sent to /firm
def user_dashboard() -> ResponseReturnValue:
    return render_template("user.html")


@bp.get("/firm")
@firm_required
def firm_dashboard() -> ResponseReturnValue:
    return render_template("firm.html")


@bp.get("/vendor/<name>")
def vendor(name: str) -> ResponseReturnValue:
    relative = VENDOR_FILES.get(name)
    vendor_dir = _vendor_dir()
    if relative is None or vendor_dir is None or not (vendor_dir / relative).is_file():
        abort(404)
    return send_from_directory(vendor_dir, relative, max_age=3600)


def _vendor_dir() -> Path | None:
    found = current_app.config["STOCKAFOLIO"].vendor_dir
    return Path(found) if found else None
