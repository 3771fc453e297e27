"""Stockafolio's web app: Flask pages + JSON API + Socket.IO pushes on top of Cassandra and Kafka.

`create_app(settings)` builds the app (the entry point `python -m webapp` builds the settings from
flags and the stack's endpoint files); `webapp.live.socketio` is the Socket.IO extension."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported inside create_app, so `import webapp` stays light
    from flask import Flask

    from webapp.settings import WebSettings
    from webapp.store import Store

LOG = logging.getLogger(__name__)


def create_app(settings: WebSettings | None = None, store: Store | None = None,
               clock: Callable[[], datetime] | None = None) -> Flask:
    """The app. `store` and `clock` are for tests (a fake store, a fixed time)."""
    from flask import Flask

    from webapp import api, auth, errors, live, security, sockets
    from webapp.settings import WebSettings
    from webapp.store import Store

    settings = settings or WebSettings()
    app = Flask(__name__)
    app.config["STOCKAFOLIO"] = settings
    app.config["TESTING"] = settings.testing
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["stockafolio.store"] = store or Store(
        settings.cassandra, settings.keyspace, settings.cassandra_timeout_s, settings.cassandra_retry_s,
        settings.prices_ttl_s, settings.shared_ttl_s, settings.user_cache_users, settings.user_cache_ttl_s,
        settings.session_check_ttl_s)
    app.extensions["stockafolio.clock"] = clock or (lambda: datetime.now(UTC))
    security.init_app(app, settings)
    errors.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    _register_pages(app)
    live.socketio.init_app(app, async_mode=settings.async_mode,
                           cors_allowed_origins=list(settings.allowed_origins), manage_session=False,
                           transports=["websocket"], ping_interval=25)
    sockets.guard_packets(live.socketio.server)
    # outermost first: the client address (trusted proxies), then the Socket.IO gate, then Socket.IO
    gate = sockets.SocketGate(app, app.wsgi_app, settings.sockets)
    app.extensions["stockafolio.sockets"] = gate.open
    app.wsgi_app = gate  # type: ignore[method-assign]
    security.trust_proxies(app, settings.trusted_proxies)
    if settings.live_tasks:
        live.start_tasks(app)
    return app


def _register_pages(app: Flask) -> None:
    """The pages blueprint (/me, /firm and the static assets), when the module imports."""
    try:
        from webapp import pages
    except ImportError as exc:
        if exc.name != "webapp.pages":
            raise
        LOG.info("webapp.pages is not installed: only the API, /login and /logout are served")
        return
    app.register_blueprint(pages.bp)
