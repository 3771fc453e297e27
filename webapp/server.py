"""gunicorn, embedded: N gevent worker processes sharing one listening socket. Each worker builds its
own app after the fork (and after gevent patched it), so each has its own Cassandra session."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from webapp.settings import WebSettings


class Server(BaseApplication):
    def __init__(self, settings: WebSettings, bind: str, workers: int) -> None:
        self.settings, self.bind, self.workers = settings, bind, workers
        super().__init__()

    def load_config(self) -> None:
        for key, value in {"bind": self.bind, "workers": self.workers, "worker_class": "gevent",
                           "worker_connections": 2000, "timeout": 60, "graceful_timeout": 10,
                           "keepalive": 30, "accesslog": None, "errorlog": "-", "loglevel": "info",
                           "limit_request_line": 4094, "limit_request_fields": 100,
                           "proc_name": "stockafolio-webapp",
                           "control_socket_disable": True}.items():
            self.cfg.set(key, value)

    def load(self):
        from webapp import create_app

        return create_app(self.settings)
