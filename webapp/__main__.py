"""python -m webapp: serve the web app (gunicorn, threaded workers), or manage accounts.

    python -m webapp [serve] [--host 127.0.0.1] [--port 8000] [--workers 2] [--threads 50]
    python -m webapp accounts create NAME --role user --user-id 42   (password read from stdin or prompted)
    python -m webapp accounts seed [--users 100000] [--seed 1] [--count 3]
    python -m webapp accounts delete NAME | logout NAME              (ends every session of NAME)

The environment (STOCKAFOLIO_VAR, STOCKAFOLIO_KEYSPACE, STOCKAFOLIO_CACHE) and the flags are read
here only, into a frozen `WebSettings`."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from stockafolio.argtypes import non_negative_int as _non_negative
from stockafolio.argtypes import positive_int as _positive
from stockafolio.errors import StockafolioError
from stockafolio.settings import Endpoints, default_keyspace, default_var_dir


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["accounts"]:
            return _accounts(_accounts_parser().parse_args(argv[1:]))
        if argv[:1] == ["serve"]:
            argv = argv[1:]
        return _serve(_serve_parser().parse_args(argv))
    except StockafolioError as exc:
        print(f"webapp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# ---------------------------------------------------------------- serve


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m webapp", description="Serve Stockafolio's web app (pages, JSON API, Socket.IO) with "
        "gunicorn threaded workers. Other commands: `python -m webapp accounts --help`.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=_port, default=8000, help="(default %(default)s)")
    p.add_argument("--workers", type=_positive, default=2, help="worker processes (default %(default)s: "
                   "one per core)")
    p.add_argument("--threads", type=_positive, default=50, help="threads per worker: requests in flight "
                   "plus open Socket.IO sockets (default %(default)s)")
    p.add_argument("--http-threads", type=_positive, default=10, help="threads per worker that sockets may "
                   "never take, kept for HTTP requests (default %(default)s; at least a fifth of --threads)")
    p.add_argument("--sockets-per-account", type=_positive, default=5,
                   help="open Socket.IO sockets of one account per worker (default %(default)s)")
    p.add_argument("--sockets-per-address", type=_positive, default=20,
                   help="open Socket.IO sockets of one client address per worker (default %(default)s)")
    p.add_argument("--trusted-proxies", type=_non_negative, default=0, metavar="HOPS",
                   help="reverse proxies in front of the app whose X-Forwarded-For gives the client "
                        "address (0: the TCP peer, default; 1 behind the cluster's nginx)")
    p.add_argument("--keyspace", default=None, help="Cassandra keyspace (default $STOCKAFOLIO_KEYSPACE or "
                   "stockafolio)")
    p.add_argument("--secure-cookies", action="store_true", help="mark the session cookie Secure (HTTPS)")
    p.add_argument("--allowed-origin", action="append", default=[],
                   help="an origin Socket.IO connections may come from (repeatable; default: the "
                        "listening address on http, and localhost)")
    p.add_argument("--events-topic", default=None, help="Kafka topic of the stream's portfolio events "
                   "(default portfolio-events)")
    p.add_argument("--user-cache", type=_non_negative, default=20_000, metavar="USERS",
                   help="users whose own rows each process keeps until their next portfolio event "
                        "(0: read Cassandra on every request; default %(default)s)")
    p.add_argument("--threading", action="store_true",
                   help="one process with Werkzeug's development server instead of gunicorn (debugging)")
    return p


def socket_limits(args: argparse.Namespace):
    """Sockets may take every thread but the HTTP reserve (at least one socket)."""
    from webapp.settings import SocketLimits

    reserve = max(args.http_threads, -(-args.threads // 5))
    return SocketLimits(per_account=args.sockets_per_account, per_address=args.sockets_per_address,
                        total=max(1, args.threads - reserve))


def build_settings(args: argparse.Namespace, env=os.environ):
    from webapp.settings import WebSettings

    var = default_var_dir(env)
    endpoints = Endpoints.load(var)
    origins = tuple(args.allowed_origin) or tuple(
        dict.fromkeys([f"http://{args.host}:{args.port}", f"http://localhost:{args.port}",
                       f"http://127.0.0.1:{args.port}"]))
    return WebSettings(
        keyspace=args.keyspace or default_keyspace(env), cassandra=endpoints.cassandra,
        kafka_bootstrap=endpoints.kafka.bootstrap_servers, kafka_auth=endpoints.kafka.auth,
        secret_key=secret_key(var / "secrets"),
        allowed_origins=origins, vendor_dir=_vendor_dir(env), secure_cookies=args.secure_cookies,
        async_mode="threading", user_cache_users=args.user_cache, trusted_proxies=args.trusted_proxies,
        sockets=socket_limits(args),
        **({"events_topic": args.events_topic} if args.events_topic else {}))


def secret_key(folder: Path) -> str:
    """The session-signing key, shared by every worker and kept across restarts (mode 0600)."""
    path = folder / "webapp-secret-key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip()


def _vendor_dir(env) -> Path | None:
    cache = Path(env.get("STOCKAFOLIO_CACHE") or Path.home() / ".cache" / "stockafolio")
    try:
        from webapp.pages import default_vendor_dir
    except ImportError:
        return None
    try:
        return default_vendor_dir(cache)
    except OSError:
        return None


def _serve(args: argparse.Namespace) -> int:
    settings = build_settings(args)
    if args.threading:
        from webapp import create_app
        from webapp.live import socketio

        print(f"webapp: http://{args.host}:{args.port}/ (threading, one process)", flush=True)
        socketio.run(create_app(settings), host=args.host, port=args.port, allow_unsafe_werkzeug=True)
        return 0
    from webapp.server import Server

    print(f"webapp: http://{args.host}:{args.port}/ ({args.workers} workers x {args.threads} threads)",
          flush=True)
    Server(settings, f"{args.host}:{args.port}", args.workers, args.threads).run()
    return 0


# ---------------------------------------------------------------- accounts


def _accounts_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m webapp accounts", description="Create dashboard accounts "
                                "(stored in Cassandra, passwords hashed with scrypt).")
    p.add_argument("--keyspace", default=None, help="(default $STOCKAFOLIO_KEYSPACE or stockafolio)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = sub.add_parser("create", help="one account; the password is read from stdin (or prompted)")
    c.add_argument("username")
    c.add_argument("--role", choices=("user", "firm"), required=True)
    c.add_argument("--user-id", type=_positive, help="the simulated user whose portfolio it sees (role user)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing account of that name")
    s = sub.add_parser("seed", help="demo accounts on the most active simulated users + one firm analyst; "
                       "passwords in <var>/secrets/demo-accounts.json (0600)")
    s.add_argument("--users", type=_positive, default=100_000, help="the generator's --users (%(default)s)")
    s.add_argument("--seed", type=int, default=1, help="the generator's --seed (%(default)s)")
    s.add_argument("--count", type=_positive, default=3, help="demo user accounts (%(default)s)")
    d = sub.add_parser("delete", help="delete an account; every session of it ends")
    d.add_argument("username")
    o = sub.add_parser("logout", help="end every session of an account (it can log in again)")
    o.add_argument("username")
    return p


def _accounts(args: argparse.Namespace) -> int:
    from webapp import accounts
    from webapp.store import Store

    var = default_var_dir(os.environ)
    store = Store(Endpoints.load(var).cassandra, args.keyspace or default_keyspace(os.environ),
                  timeout_s=10, retry_s=0)
    try:
        if args.action == "create":
            password = _read_password()
            account = accounts.create(store, args.username, password, args.role, args.user_id, args.overwrite)
            print(f"account {account.username} ({account.role}"
                  f"{f', user {account.user_id}' if account.user_id else ''}) written")
            return 0
        if args.action in ("delete", "logout"):
            (accounts.delete if args.action == "delete" else accounts.end_sessions)(store, args.username)
            print(f"account {args.username}: {'deleted' if args.action == 'delete' else 'logged out'}; "
                  "its sessions end within a second")
            return 0
        path = var / "secrets" / "demo-accounts.json"
        seeded = accounts.seed(store, path, args.users, args.seed, args.count)
        for a in seeded:
            who = f"user {a.user_id}" if a.user_id else "firm analyst"
            print(f"  {a.username:<8} {a.password}  ({who})")
        print(f"demo accounts written to Cassandra and {path} (mode 0600)")
        return 0
    finally:
        store.close()


def _read_password() -> str:
    if sys.stdin.isatty():
        first, second = getpass.getpass("password: "), getpass.getpass("again: ")
        if first != second:
            raise StockafolioError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")



def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
