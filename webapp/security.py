"""CSRF protection, login rate limiting, cookie flags and response headers, wired in one place."""

from __future__ import annotations

from flask import Flask, Response, abort, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from webapp.settings import WebSettings

csrf = CSRFProtect()
# Per process (memory storage): with N web processes an attacker gets at most N times the limit.
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", default_limits=[],
                  headers_enabled=True)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def init_app(app: Flask, settings: WebSettings) -> None:
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="stockafolio_session",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        # The cookie is signed once, at login, and expires 12 h after it (not 12 h after the last
        # request): re-signing and re-sending it on every API call cost ~8 % of a portfolio request.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=settings.secure_cookies,
        RATELIMIT_ENABLED=True,
    )
    csrf.init_app(app)
    limiter.init_app(app)
    app.before_request(_refuse_oversized)
    app.after_request(_headers)


def _refuse_oversized() -> None:
    """413 before anything reads the body, on every route (GETs included)."""
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        abort(413)


def _headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/") or request.path in ("/login", "/me", "/firm"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
