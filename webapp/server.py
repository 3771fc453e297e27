"""gunicorn, embedded: N worker processes sharing one listening socket, each with a pool of threads
(gthread) and its own app, built after the fork, so each has its own Cassandra session.

Why threads rather than gevent: measured on this machine, a portfolio request cost 2.95 ms of worker
CPU with gthread against 3.8-5.6 ms with gevent (the driver's gevent reactor is pure Python; its
default libev reactor is C), and served 2-4x more requests per second (webapp/README.md). A Socket.IO
socket holds one thread (simple-websocket), so `threads` bounds sockets + requests in flight per
worker."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from webapp.settings import WebSettings


class Server(BaseApplication):
    def __init__(self, settings: WebSettings, bind: str, workers: int, threads: int) -> None:
        self.settings, self.bind, self.workers, self.threads = settings, bind, workers, threads
        super().__init__()

    def load_config(self) -> None:
        for key, value in {"bind": self.bind, "workers": self.workers, "worker_class": "gthread",
                           "threads": self.threads, "timeout": 60, "graceful_timeout": 10,
                           "keepalive": 30, "accesslog": None, "errorlog": "-", "loglevel": "info",
                           "limit_request_line": 4094, "limit_request_fields": 100,
                           "proc_name": "stockafolio-webapp", "control_socket_disable": True}.items():
            self.cfg.set(key, value)

    def load(self):
        from webapp import create_app

        return create_app(self.settings)
