"""Log in and out (session cookie), the `login_required` / `firm_required` / `user_required`
decorators and `current_account()` that pages, the API and the Socket.IO handlers share.

A session is the signed cookie plus the account's session epoch in Cassandra: the cookie names the
epoch it was issued with, and `current_account()` accepts it only while the account still has that
epoch, role and user id (each process trusts a read for `session_check_ttl_s`). Logging out, a new
password or role, or deleting the account therefore ends every session of it, in every process."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    render_template_string,
    request,
    session,
    url_for,
)
from jinja2 import TemplateNotFound

from webapp import accounts
from webapp.accounts import Account
from webapp.errors import error_response, wants_json
from webapp.login_limit import LoginLimit
from webapp.store import DataUnavailable

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])

_FALLBACK_LOGIN = """<!doctype html><title>Stockafolio: log in</title>
<form method="post" action="/login">{% if error %}<p role="alert">{{ error }}</p>{% endif %}
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
<input type="hidden" name="next" value="{{ next or '' }}">
<label>User name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Log in</button></form>"""


def current_account() -> Account | None:
    """The logged-in account of this request, or None: the signed session cookie, while its account
    still has the cookie's session epoch, role and user id. Raises DataUnavailable when Cassandra
    cannot say (a 503: neither a login page nor a page of a session that may have ended)."""
    cached = request.environ.get(_VERIFIED, _UNSET)  # per request (an app context, `g`, may be shared)
    if cached is _UNSET:
        cached = request.environ[_VERIFIED] = _verified(session.get("account"))
    return cached  # type: ignore[return-value]


_VERIFIED, _UNSET = "stockafolio.verified_account", object()


def _verified(data: Any) -> Account | None:
    if not isinstance(data, dict) or data.get("role") not in accounts.ROLES:
        return None
    username, user_id, epoch = data.get("username"), data.get("user_id"), data.get("epoch")
    if not isinstance(username, str) or type(epoch) is not int:  # a cookie from before epochs: log in again
        return None
    state = current_app.extensions["stockafolio.store"].session_state(username)
    if state != (data["role"], user_id, epoch):
        return None
    return Account(username, data["role"], user_id, epoch)


def account_or_none() -> Account | None:
    """current_account(), None when Cassandra cannot say (for rendering an error page)."""
    try:
        return current_account()
    except DataUnavailable:
        return None


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_account() is None:
            return _unauthenticated()
        return view(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


def firm_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        account = current_account()
        if account is None:
            return _unauthenticated()
        if account.role != "firm":
            return error_response(403, "firm role required: this is for the firm's analysts only")
        return view(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


def user_page(view: F) -> F:
    """A page of portfolio owners: a firm account is sent to its own dashboard instead."""
    return _owners_only(view, lambda account: redirect(home_of(account)))


def user_required(view: F) -> F:
    """A portfolio owner (role user) only; a firm account has no portfolio of its own."""
    return _owners_only(view, lambda account: error_response(
        403, "firm accounts have no portfolio; use the firm views"))


def _owners_only(view: F, otherwise: Callable[[Any], Any]) -> F:
    """`view` for a logged-in portfolio owner; `otherwise(account)` for any other account."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        account = current_account()
        if account is None:
            return _unauthenticated()
        if account.role != "user" or account.user_id is None:
            return otherwise(account)
        return view(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


def _unauthenticated():
    if wants_json():
        return error_response(401, "log in first")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def home_of(account: Account) -> str:
    return "/firm" if account.role == "firm" else "/me"


# A path of this origin as a browser sends it: printable ASCII without spaces or backslashes (a
# browser drops tabs and newlines from a URL and reads a backslash as `/`, so `/<tab>/evil` or
# `/<backslash>evil` would become `//evil`, another host). Anything else is refused, not repaired.
_LOCAL_PATH = re.compile(r"/[!-\[\]-~]{0,2000}")


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this origin (parsed: no scheme, no host, not `//x`), else None."""
    if not target or not _LOCAL_PATH.fullmatch(target) or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return target


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    return {"current_account": account_or_none()}


def _login_limit() -> LoginLimit:
    return LoginLimit(current_app.extensions["stockafolio.store"],
                      current_app.config["STOCKAFOLIO"].rate_limits)


@bp.get("/")
def index():
    account = account_or_none()
    return redirect(home_of(account) if account else url_for("auth.login"))


@bp.get("/login")
def login():
    account = account_or_none()
    if account is not None:
        return redirect(home_of(account))
    return _login_page(None, safe_next(request.args.get("next")))


@bp.post("/login")
def login_post():
    username = (request.form.get("username") or "").strip().lower()
    password = request.form.get("password") or ""
    target = safe_next(request.form.get("next"))
    limit, address = _login_limit(), request.remote_addr or "unknown"
    wait = limit.blocked(address, username)
    if wait is not None:  # no password check: a refused attempt costs no hash
        response = error_response(429, f"too many failed logins; try again in {wait} s")
        return response[0], 429, {"Retry-After": str(wait)}
    account = accounts.authenticate(current_app.extensions["stockafolio.store"], username, password)
    if account is None:
        limit.failed(address, username)
        return _login_page("Wrong user name or password.", target, 401)
    session.clear()  # a fresh session (and CSRF token) on login: no session fixation
    session.permanent = True
    session["account"] = {"username": account.username, "role": account.role, "user_id": account.user_id,
                          "epoch": account.epoch}
    return redirect(target or home_of(account))


@bp.post("/logout")
def logout():
    """Ends every session of the account, in every process (a new session epoch), not only this one."""
    account = current_account()
    if account is not None:
        accounts.end_sessions(current_app.extensions["stockafolio.store"], account.username)
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/healthz")
def healthz():
    """For the stack manager's health check: the process answers (Cassandra is not consulted)."""
    return jsonify(status="ok")


def _login_page(error: str | None, target: str | None, status: int = 200):
    try:
        return render_template("login.html", error=error, next=target), status
    except TemplateNotFound:  # the pages' templates are not installed
        return render_template_string(_FALLBACK_LOGIN, error=error, next=target), status
