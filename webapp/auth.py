"""Log in and out (session cookie), the `login_required` / `firm_required` decorators and
`current_account()` that pages, the API and the Socket.IO handlers share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    current_app,
    g,
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
from webapp.security import limiter

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
    """The logged-in account of this request (from the signed session cookie), or None."""
    if "account" not in g:
        data = session.get("account")
        g.account = None
        if isinstance(data, dict) and data.get("role") in accounts.ROLES:
            g.account = Account(data["username"], data["role"], data.get("user_id"))
    return g.account


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


def user_required(view: F) -> F:
    """A portfolio owner (role user) only; a firm account has no portfolio of its own."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        account = current_account()
        if account is None:
            return _unauthenticated()
        if account.role != "user" or account.user_id is None:
            return error_response(403, "firm accounts have no portfolio; use the firm views")
        return view(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


def _unauthenticated():
    if wants_json():
        return error_response(401, "log in first")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def home_of(account: Account) -> str:
    return "/firm" if account.role == "firm" else "/me"


def safe_next(target: str | None) -> str | None:
    """Only a local path: no scheme, no host, no protocol-relative `//x` or `/\\x`."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\n" in target:
        return None
    return target


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    return {"current_account": current_account()}


def _login_key() -> str:
    return f"{request.remote_addr}|{(request.form.get('username') or '').strip().lower()[:64]}"


@bp.get("/")
def index():
    account = current_account()
    return redirect(home_of(account) if account else url_for("auth.login"))


@bp.get("/login")
def login():
    account = current_account()
    if account is not None:
        return redirect(home_of(account))
    return _login_page(None, safe_next(request.args.get("next")))


@bp.post("/login")
@limiter.limit(lambda: current_app.config["STOCKAFOLIO"].rate_limits.login, key_func=_login_key,
               deduct_when=lambda response: response.status_code != 302)  # failed attempts count
@limiter.limit(lambda: current_app.config["STOCKAFOLIO"].rate_limits.login_ip,
               deduct_when=lambda response: response.status_code != 302)
def login_post():
    username = (request.form.get("username") or "").strip().lower()
    password = request.form.get("password") or ""
    target = safe_next(request.form.get("next"))
    account = accounts.authenticate(current_app.extensions["stockafolio.store"], username, password)
    if account is None:
        return _login_page("Wrong user name or password.", target, 401)
    session.clear()  # a fresh session (and CSRF token) on login: no session fixation
    session.permanent = True
    session["account"] = {"username": account.username, "role": account.role, "user_id": account.user_id}
    return redirect(target or home_of(account))


@bp.post("/logout")
def logout():
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
