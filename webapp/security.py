"""CSRF protection, the client address behind trusted proxies, cookie flags and response headers,
wired in one place (the login limit is webapp.login_limit)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.settings import WebSettings

csrf = CSRFProtect()

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src {connect}; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = {
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
    )
    app.config["STOCKAFOLIO_CSP"] = csp(settings.allowed_origins)
    csrf.init_app(app)
    app.before_request(_refuse_oversized)
    app.after_request(_headers)


def csp(allowed_origins: tuple[str, ...]) -> str:
    """The policy: `connect-src 'self'` plus the WebSocket form of the origins the dashboards are
    served from (the socket's own origin; 'self' covers it in current browsers, older Safari needs
    it spelled out). Never `ws:`/`wss:` alone, which would allow a socket to any host."""
    sockets = []
    for origin in allowed_origins:
        parts = urlsplit(origin)
        if parts.scheme in ("http", "https") and parts.netloc:
            sockets.append(f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}")
    return CSP.format(connect=" ".join(["'self'", *dict.fromkeys(sockets)]))


def trust_proxies(app: Flask, hops: int) -> None:
    """Take the client address from X-Forwarded-For through `hops` trusted proxies (0: the TCP peer;
    1 behind the cluster's nginx, which sets the header from the load balancer's). Must wrap every
    other middleware: the Socket.IO gate counts sockets per client address too."""
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # type: ignore[method-assign]


def _refuse_oversized() -> None:
    """413 before anything reads the body, on every route (GETs included)."""
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        abort(413)


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", current_app.config["STOCKAFOLIO_CSP"])
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/") or request.path in ("/login", "/me", "/firm"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
