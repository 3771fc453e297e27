"""Load and latency of the running web app (it only measures; start the stack, the web app and, for
`--mode running`, the pipeline yourself with `bin/stockafolio run`).

1. Throughput: `--runs` headless locust runs of tests/load/locustfile.py (both personas) against
   --url; per endpoint the median over the runs of requests/s and p50/p95/p99 response times. The
   simulated users open one dashboard after another, each as the next of `--accounts` load-test
   accounts (default 10,000, on simulated users of every level of activity, plus `--firm-accounts`
   analysts), seeded first when they are not there yet (`webapp.accounts.seed_many`: cheap hashes for
   these accounts only, 32 writes at a time; passwords in <var>/secrets/bench-accounts.json, 0600).
   Every account logs in once, before the first run (the sessions are kept for the next runs);
   each run reports the accounts it visited and the hit ratio of the web app's per-user cache
   (the share of requests for a user's own rows that read nothing from Cassandra). `--accounts 0`
   uses the demo accounts of --accounts-file instead.
2. Trade-to-browser latency: a probe account on a simulated user outside the generator's range logs
   in over Socket.IO (python-socketio, websocket, like the browser); the bench produces one trade at
   a time for it into the pipeline's trades topic and times produce -> the `portfolio` event, then
   checks over the API that the event carried that very trade. p50/p95/p99 over --latency-trades.

Results: bench/results/webapp_load.json (both modes kept) and the table bench/results/webapp_load.md.

    python bench/webapp_load.py --mode idle      # pipeline stopped (run --no-pipeline)
    python bench/webapp_load.py --mode running   # while bin/stockafolio run drives the pipeline
    python bench/webapp_load.py --mode idle --no-think --latency-trades 0   # capacity
    python bench/webapp_load.py --mode idle --seed-only     # only seed the 10,000 accounts

The probe's trades are not in the generator's S3 archive: the nightly reconciliation reports the probe
user (id --probe-user-id) as not_in_archive. Use a stack you can reconcile without it, or ignore it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stockafolio.argtypes import positive_int as positive  # noqa: E402  (after the path insert)
from stockafolio.settings import default_var_dir  # noqa: E402

RESULTS = REPO / "bench" / "results"
LOCUSTFILE = REPO / "tests" / "load" / "locustfile.py"
PROBE_USER = "latency-probe"
MODES = {"idle": "pipeline idle", "running": "pipeline running"}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import requests

    try:
        requests.get(f"{args.url}/healthz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"webapp_load: {args.url} does not answer ({exc}); start it with bin/stockafolio run",
              file=sys.stderr)
        return 1
    accounts = load_accounts(args.accounts_file)
    seeding = ensure_bench_accounts(args) if args.accounts else None
    if args.seed_only:
        return 0
    result: dict = {"mode": MODES[args.mode] + (", capacity (no think time)" if args.no_think else ""),
                    "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "url": args.url, "pipeline": pipeline_state(args.url, accounts),
                    "load_average_1m": round(os.getloadavg()[0], 1)}
    if args.note:
        result["note"] = args.note
    if seeding is not None:
        result["accounts"] = seeding
    print(f"[{MODES[args.mode]}] pipeline: {result['pipeline']}", flush=True)
    if not args.skip_load:
        result["load"] = load_runs(args)
    if args.latency_trades:
        result["latency"] = latency(args)
    write_results(args.label or args.mode + ("-capacity" if args.no_think else ""), result, args.results)
    if args.screenshots:
        screenshots(args.url, accounts, args.screenshots)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/webapp_load.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--mode", choices=sorted(MODES), required=True,
                   help="label of this measurement: is the pipeline (generator + streaming job) running?")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the web app (default %(default)s)")
    p.add_argument("--accounts-file", type=Path, default=default_var_dir() / "secrets" / "demo-accounts.json",
                   help="demo accounts written by `python -m webapp accounts seed` (default %(default)s)")
    p.add_argument("--accounts", type=int, default=10_000,
                   help="load-test accounts the simulated users log in as, one dashboard visit after "
                        "another (0: the demo accounts of --accounts-file; default %(default)s)")
    p.add_argument("--firm-accounts", type=positive, default=10,
                   help="firm analysts among them (default %(default)s)")
    p.add_argument("--population", type=positive, default=10_000_000,
                   help="the generator's --users, whose activity ranks the accounts are spread over "
                        "(default %(default)s, as `bin/stockafolio run`)")
    p.add_argument("--population-seed", type=int, default=1, help="the generator's --seed (%(default)s)")
    p.add_argument("--reseed", action="store_true", help="write the load-test accounts even if they exist")
    p.add_argument("--seed-only", action="store_true", help="seed the load-test accounts and stop")
    p.add_argument("--rereads", type=int, default=4,
                   help="requests of a dashboard visit after the page has loaded (default %(default)s)")
    p.add_argument("--label", help="key of this result in the results (default: the mode, -capacity "
                                   "with --no-think); another key is kept as a one-off comparison")
    p.add_argument("--note", help="a sentence printed with this result in the results file")
    p.add_argument("--web-pidfile", type=Path, default=default_var_dir() / "run" / "webapp.pid",
                   help="pid of the web app (its supervisor or `python -m webapp`), for the cores it used "
                        "(default %(default)s)")
    p.add_argument("--runs", type=positive, default=3, help="locust runs (default %(default)s)")
    p.add_argument("--users", type=positive, default=30, help="simulated users per run (default %(default)s)")
    p.add_argument("--spawn-rate", type=positive, default=10, help="users started per second (%(default)s)")
    p.add_argument("--seconds", type=positive, default=30, help="length of one run (default %(default)s)")
    p.add_argument("--no-think", action="store_true",
                   help="capacity: locust users send their next request at once instead of every 1-3 s "
                        "(results kept apart from the paced ones)")
    p.add_argument("--skip-load", action="store_true", help="only the latency measurement")
    p.add_argument("--latency-trades", type=int, default=30,
                   help="probe trades for the latency measurement (0: skip it; default %(default)s)")
    p.add_argument("--trades-topic", default="trades", help="the pipeline's trades topic (%(default)s)")
    p.add_argument("--probe-user-id", type=positive, default=900_000_001,
                   help="simulated user of the probe account, outside the generator's users (%(default)s)")
    p.add_argument("--results", type=Path, default=RESULTS / "webapp_load.md", help="(default %(default)s)")
    p.add_argument("--screenshots", type=Path, metavar="DIR",
                   help="also save both dashboards, live for 10 s, as DIR/user-dashboard.png and "
                        "DIR/firm-dashboard.png (headless chromium), e.g. docs/screenshots")
    return p



def load_accounts(path: Path) -> list[dict]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"webapp_load: cannot read {path} ({exc}); seed the demo accounts with "
                         "`python -m webapp accounts seed`") from None
    if not any(a.get("role") == "firm" for a in found) or not any(a.get("role") == "user" for a in found):
        raise SystemExit(f"webapp_load: {path} needs a user and a firm account")
    return found


def bench_accounts_file() -> Path:
    return default_var_dir() / "secrets" / "bench-accounts.json"


def ensure_bench_accounts(args: argparse.Namespace) -> dict:
    """The load-test accounts in Cassandra and in bench_accounts_file(): written unless the file
    already holds these very accounts and a sample of them is in Cassandra (--reseed: always).
    Returns what the results say about them."""
    from stockafolio.settings import Endpoints, default_keyspace
    from webapp import accounts as web_accounts
    from webapp.store import Store

    path = bench_accounts_file()
    previous = web_accounts.read_demo_file(path)
    wanted = web_accounts.bench_accounts(args.population, args.population_seed, args.accounts,
                                         args.firm_accounts, {a["username"]: a["password"] for a in previous})
    store = Store(Endpoints.load(default_var_dir()).cassandra, default_keyspace(), timeout_s=10, retry_s=0)
    began = time.monotonic()
    try:
        same = [(a["username"], a.get("user_id")) for a in previous] == \
            [(a.username, a.user_id) for a in wanted]
        sample = wanted[:: max(1, len(wanted) // 20)] + wanted[-1:]
        if args.reseed or not same or any(store.account(a.username) is None for a in sample):
            print(f"seeding {len(wanted):,} load-test accounts ...", flush=True)
            web_accounts.seed_many(store, wanted)
            web_accounts.write_secrets_file(path, wanted)
            seeded_s: float | None = round(time.monotonic() - began, 1)
            print(f"  written in {seeded_s} s ({len(wanted) / seeded_s:,.0f} accounts/s): Cassandra and "
                  f"{path}", flush=True)
        else:
            seeded_s = None
            print(f"{len(wanted):,} load-test accounts already seeded ({path})", flush=True)
    finally:
        store.close()
    ranks = sorted(a.rank for a in wanted if a.rank is not None)
    return {"users": len(ranks), "firm": args.firm_accounts, "population": args.population,
            "population_seed": args.population_seed, "ranks": [ranks[0], ranks[len(ranks) // 2], ranks[-1]],
            "hash": web_accounts.BENCH_HASH_METHOD, "seeded_s": seeded_s,
            "file": "<var>/" + path.relative_to(default_var_dir()).as_posix()}  # no machine paths in results


def log_in(url: str, username: str, password: str):
    import requests

    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(f"{url}/login", timeout=10).text)
    if token is None:
        raise SystemExit(f"webapp_load: no CSRF token on {url}/login")
    form = {"username": username, "password": password, "csrf_token": token.group(1)}
    r = s.post(f"{url}/login", data=form, allow_redirects=False, timeout=10)
    if r.status_code not in (302, 303):
        raise SystemExit(f"webapp_load: login as {username} failed with HTTP {r.status_code}")
    return s


def pipeline_state(url: str, accounts: list[dict]) -> dict:
    """The streaming job's last batch, as the firm dashboard shows it (for the record)."""
    firm = next(a for a in accounts if a["role"] == "firm")
    health = log_in(url, firm["username"], firm["password"]).get(f"{url}/api/v1/firm/health", timeout=10)
    if health.status_code != 200:
        return {"error": f"HTTP {health.status_code}"}
    body = health.json()
    last = (body.get("batches") or [{}])[0]
    return {"last_batch_age_s": body.get("last_batch_age_seconds"),
            "input_rows_per_second": last.get("input_rows_per_second"), "kafka_lag": last.get("kafka_lag")}


# ---------------------------------------------------------------- throughput


def load_runs(args: argparse.Namespace) -> dict:
    runs, reports, loads, cpu = [], [], [], []
    sign_in = None
    with tempfile.TemporaryDirectory(prefix="webapp_load_") as tmp:  # 0700: the sessions file is secret
        sessions = Path(tmp) / "sessions.json"
        if args.accounts:
            sign_in = sign_in_step(args, Path(tmp) / "sign-in", sessions)
        for i in range(args.runs):
            loads.append(round(os.getloadavg()[0], 2))
            print(f"locust run {i + 1}/{args.runs}: {args.users} users, {args.seconds} s "
                  f"(load average {loads[-1]})", flush=True)
            before = CpuSample.take(args.web_pidfile)
            stats, report = one_run(args, Path(tmp) / f"run{i}", sessions)
            cpu.append(before.cores_until(CpuSample.take(args.web_pidfile)))
            runs.append(stats)
            reports.append(report)
            agg = stats["Aggregated"]
            cache = (report.get("user_cache") or {}).get("hit_ratio")
            print(f"  {agg['rps']:.1f} requests/s, p99 {agg['p99']:.0f} ms, {agg['failures']} failures, "
                  f"{report.get('accounts_visited', '?')} accounts visited, per-user cache hit ratio "
                  f"{cache}, cores used {cpu[-1]}", flush=True)
    names = list(dict.fromkeys(n for r in runs for n in r))  # an endpoint may be missing from a short run
    table = {n: {k: statistics.median(r[n][k] for r in runs if n in r)
                 for k in ("rps", "p50", "p95", "p99")} for n in names}
    for n in names:
        table[n]["requests"] = sum(r[n]["requests"] for r in runs if n in r)
        table[n]["failures"] = sum(r[n]["failures"] for r in runs if n in r)
    each = [{**per_run(r, rep), "cores": c} for r, rep, c in zip(runs, reports, cpu, strict=True)]
    return {"runs": args.runs, "users": args.users, "seconds": args.seconds, "rereads": args.rereads,
            "load_average_before_each": loads, "per_run": each, "endpoints": table, **summarize(reports),
            "sign_in": sign_in}


def sign_in_step(args: argparse.Namespace, prefix: Path, sessions: Path) -> dict | None:
    """Log every load-test account in (a one-second locust run with --sign-in first), so that the
    measured runs reuse the sessions and measure only the dashboards."""
    print(f"logging in the {args.accounts + args.firm_accounts:,} load-test accounts ...", flush=True)
    one = argparse.Namespace(**{**vars(args), "users": 1, "spawn_rate": 1, "seconds": 1})
    _stats, report = one_run(one, prefix, sessions)
    took = report.get("sign_in")
    if took:
        print(f"  {took['signed_in']:,} in {took['seconds']} s ({took['logins_per_s']} logins/s)", flush=True)
    return took


class CpuSample:
    """CPU seconds used so far by the web app (its supervisor and everything under it), Cassandra and
    this script's children (locust), from /proc; for the cores each used during a run."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, at: float, web: float, cassandra: float, children: float) -> None:
        self.at, self.web, self.cassandra, self.children = at, web, cassandra, children

    @classmethod
    def take(cls, web_pidfile: Path) -> CpuSample:
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cassandra_pidfile = default_var_dir() / "run" / "cassandra.pid"
        return cls(time.monotonic(), cls.tree_seconds(web_pidfile), cls.tree_seconds(cassandra_pidfile),
                   usage.ru_utime + usage.ru_stime)

    @classmethod
    def tree_seconds(cls, pidfile: Path) -> float:
        """utime + stime of the process in `pidfile` and its live descendants."""
        try:
            root = int(pidfile.read_text())
        except (OSError, ValueError):
            return 0.0
        stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / cls.TICK)
        tree, total = {root}, 0.0
        for pid in sorted(stats):  # parents have lower pids, except after a pid wrap (rare; then missed)
            if pid in tree or stats[pid][0] in tree:
                tree.add(pid)
                total += stats[pid][1]
        return total

    def cores_until(self, later: CpuSample) -> dict[str, float]:
        wall = later.at - self.at
        return {"web": round((later.web - self.web) / wall, 2),
                "cassandra": round((later.cassandra - self.cassandra) / wall, 2),
                "locust": round((later.children - self.children) / wall, 2)}


def per_run(stats: dict, report: dict) -> dict:
    agg = stats["Aggregated"]
    return {"rps": agg["rps"], "p99": agg["p99"], "accounts_visited": report.get("accounts_visited"),
            "hit_ratio": (report.get("user_cache") or {}).get("hit_ratio"),
            "cassandra_reads_per_request": report.get("cassandra_reads_per_request")}


def summarize(reports: list[dict]) -> dict:
    """What the locustfile reported (--report): accounts, sign-ins and the per-user cache, over the runs."""
    def median(values: list) -> float | None:
        found = [v for v in values if v is not None]
        return statistics.median(found) if found else None

    return {"accounts_visited": median([r.get("accounts_visited") for r in reports]),
            "hit_ratio": median([(r.get("user_cache") or {}).get("hit_ratio") for r in reports]),
            "cassandra_reads_per_request": median([r.get("cassandra_reads_per_request") for r in reports])}


def one_run(args: argparse.Namespace, prefix: Path, sessions: Path) -> tuple[dict, dict]:
    """One locust run: its statistics per endpoint and the locustfile's report."""
    accounts = (["--accounts-file", str(bench_accounts_file()), "--sign-in", "first", "--sessions-file",
                 str(sessions)] if args.accounts else ["--accounts-file", str(args.accounts_file)])
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-H", args.url,
            "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.seconds}s",
            *accounts, "--rereads", str(args.rereads), "--report", f"{prefix}_report.json",
            "--csv", str(prefix), "--only-summary",
            "--stop-timeout", "5", "--loglevel", "WARNING", "--reset-stats",
            *(["--no-think"] if args.no_think else [])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.seconds + 600, check=False)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        print("  (locust exited non-zero: failures above its guard; figures kept and marked)", flush=True)
    out = {}
    with open(f"{prefix}_stats.csv", newline="") as f:
        for r in csv.DictReader(f):
            if int(r["Request Count"]) == 0:  # e.g. the logins, before the statistics were reset
                continue
            name = "Aggregated" if r["Name"] == "Aggregated" else f"{r['Type']} {r['Name']}"
            out[name] = {"rps": float(r["Requests/s"]), "p50": float(r["50%"]), "p95": float(r["95%"]),
                         "p99": float(r["99%"]), "requests": int(r["Request Count"]),
                         "failures": int(r["Failure Count"])}
    try:
        report = json.loads(Path(f"{prefix}_report.json").read_text())
    except (OSError, ValueError):
        report = {}
    return out, report


# ---------------------------------------------------------------- latency


def latency(args: argparse.Namespace) -> dict:
    import numpy as np
    import socketio
    from confluent_kafka import Producer

    from stockafolio.records import RUN_EPOCH, Trade, encode, trade_id
    from stockafolio.settings import Endpoints, default_var_dir

    password = ensure_probe_account(args.probe_user_id)
    session = log_in(args.url, PROBE_USER, password)
    arrived = threading.Event()
    stamp: list[float] = []
    sio = socketio.Client(reconnection=True)
    sio.on("portfolio", lambda _ev: (stamp.append(time.time()), arrived.set()))
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    sio.connect(args.url, headers={"Cookie": cookie}, transports=["websocket"],
                wait_timeout=10)
    producer = Producer({"bootstrap.servers": Endpoints.load(default_var_dir()).kafka.bootstrap_servers,
                         "enable.idempotence": True, "linger.ms": 0})
    run = int((datetime.now(UTC) - RUN_EPOCH).total_seconds())
    held = probe_quantity(args.url, session)
    price = session.get(f"{args.url}/api/v1/prices", timeout=10).json()["prices"].get("AAPL", 200.0)
    samples, misses = [], 0
    try:
        for i in range(args.latency_trades):
            side = "sell" if held > 0 else "buy"
            trade = Trade(trade_id(run, i + 1), args.probe_user_id, "AAPL", side, 1, round(price, 2),
                          datetime.now(UTC))
            arrived.clear()
            stamp.clear()
            sent = time.time()
            producer.produce(args.trades_topic, key=str(trade.user_id), value=encode(trade))
            producer.flush(10)
            got = wait_for_trade(args.url, session, arrived, stamp, trade.trade_id)
            if got is None:
                misses += 1
                print(f"  trade {i + 1}: no portfolio event within 30 s", flush=True)
                if not samples and misses >= 2:
                    print("  giving up: is the streaming job running on this trades topic?", flush=True)
                    break
            else:
                samples.append((got - sent) * 1000)
                held += 1 if side == "buy" else -1
            time.sleep(1.2)   # the server coalesces a user's events to one per second
            if (i + 1) % 10 == 0:
                print(f"  {i + 1}/{args.latency_trades} trades, median so far {np.median(samples):.0f} ms",
                      flush=True)
    finally:
        sio.disconnect()
    if not samples:
        return {"trades": args.latency_trades, "missed": misses}
    p50, p95, p99 = (float(np.percentile(samples, q)) for q in (50, 95, 99))
    print(f"trade -> portfolio event: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms "
          f"({len(samples)} trades, {misses} missed)", flush=True)
    return {"trades": args.latency_trades, "missed": misses, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "max_ms": max(samples)}


def wait_for_trade(url: str, session, arrived: threading.Event, stamp: list[float],
                   wanted: int) -> float | None:
    """The arrival time of the first `portfolio` event after which the API shows trade `wanted`."""
    deadline = time.time() + 30
    while time.time() < deadline:
        if not arrived.wait(max(0.0, deadline - time.time())):
            return None
        first = stamp[0]
        trades = session.get(f"{url}/api/v1/portfolio/trades?limit=1&fresh=1", timeout=10  # as the browser
                             ).json().get("trades") or []
        if trades and int(trades[0]["trade_id"]) == wanted:
            return first
        arrived.clear()
        stamp.clear()
    return None


def probe_quantity(url: str, session) -> int:
    holdings = session.get(f"{url}/api/v1/portfolio", timeout=10).json().get("holdings") or []
    return sum(h["quantity"] for h in holdings if h["symbol"] == "AAPL")


def ensure_probe_account(user_id: int) -> str:
    """(Re)create the probe account through the web app's own CLI; its password lives in <var>/secrets."""
    path = default_var_dir() / "secrets" / "latency-probe.txt"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(16))
    password = path.read_text().strip()
    argv = [sys.executable, "-m", "webapp", "accounts", "create", PROBE_USER, "--role", "user",
            "--user-id", str(user_id), "--overwrite"]
    done = subprocess.run(argv, input=password + "\n", capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"webapp_load: creating the probe account failed: {done.stderr.strip()}")
    return password


# ---------------------------------------------------------------- screenshots


def screenshots(url: str, accounts: list[dict], folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    from stack import tools

    folder.mkdir(parents=True, exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(tools.chromium()), args=args)
        for role, name in (("user", "user-dashboard"), ("firm", "firm-dashboard")):
            account = next(a for a in accounts if a["role"] == role)
            page = browser.new_context(viewport={"width": 1360, "height": 1000}).new_page()
            page.goto(f"{url}/login")
            page.fill("#username", account["username"])
            page.fill("#password", account["password"])
            page.click("#login-submit")
            page.wait_for_selector('#live-badge[data-state="live"]', timeout=20_000)
            page.wait_for_timeout(10_000)
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            print(f"screenshot: {folder / f'{name}.png'}")
        browser.close()


# ---------------------------------------------------------------- results


def write_results(mode: str, result: dict, md_path: Path) -> None:
    json_path = md_path.with_suffix(".json")
    kept = json.loads(json_path.read_text()) if json_path.exists() else {}
    kept[mode] = result
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(kept, indent=2) + "\n")
    md_path.write_text(render(kept))
    print(f"results: {md_path} and {json_path}")


def render(kept: dict) -> str:
    lines = ["# Web app under load", "",
             "Written by `bench/webapp_load.py` (locust, tests/load/locustfile.py: 9 portfolio users to 1",
             "firm analyst, each waiting 1-3 s between requests, or not at all in the capacity runs;",
             "locust runs on the same 2-core machine as the web app and the stack). Statistics are reset",
             "once every user has started (steady state). Response times in ms; requests/s and",
             "percentiles are medians over the runs.", "",
             "Since 2026-12-08 the simulated users open one dashboard after another, each time as the next",
             "of 10,000 load-test accounts on simulated users of every level of activity (the page and",
             "what the browser asks for when it loads, then a few re-reads), all logged in before the",
             "runs; the *hit ratio* is the share of requests for a user's own rows (portfolio, trades,",
             "value curve) that the web app's per-user cache answered without a Cassandra read (counted by",
             "Cassandra's own read counters; a missed trades request reads two days and counts once).",
             "Results without an accounts line were measured with the 3 demo accounts (every portfolio",
             "read a cache hit after the first).", ""]
    known = ("idle", "idle-capacity", "running", "running-capacity")
    for mode in (*known, *(k for k in kept if k not in known)):  # extra keys: one-off comparisons
        r = kept.get(mode)
        if r is None:
            continue
        extra = "" if mode in known else f", one-off comparison `{mode}`"
        lines += [f"## {r['mode']} ({r['measured_at']}{extra})", "",
                  f"At the start: pipeline `{r['pipeline']}`, 1-minute load average "
                  f"{r.get('load_average_1m', '?')} (2 cores).", ""]
        if r.get("note"):
            lines += [r["note"], ""]
        if "load" in r:
            load = r["load"]
            lines += [f"{load['runs']} runs x {load['seconds']} s, {load['users']} simulated users.", ""]
            lines += accounts_lines(r.get("accounts"), load)
            lines += ["| endpoint | requests/s | p50 | p95 | p99 | requests | failures |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            rows = sorted(load["endpoints"].items(), key=lambda kv: (kv[0] == "Aggregated", kv[0]))
            for name, e in rows:
                lines.append(f"| {name} | {e['rps']:.1f} | {e['p50']:.0f} | {e['p95']:.0f} | "
                             f"{e['p99']:.0f} | {e['requests']} | {e['failures']} |")
            lines.append("")
        lat = r.get("latency")
        if lat and "p50_ms" in lat:
            lines += ["Trade produced into Kafka -> `portfolio` event at a Socket.IO client (the full path: "
                      "streaming job, Cassandra, portfolio-events, web app):",
                      f"p50 **{lat['p50_ms']:.0f} ms**, p95 {lat['p95_ms']:.0f} ms, "
                      f"p99 {lat['p99_ms']:.0f} ms, "
                      f"max {lat['max_ms']:.0f} ms over {lat['trades'] - lat['missed']} trades "
                      f"({lat['missed']} missed).", ""]
        elif lat:
            lines += [f"Latency: no event arrived for any of {lat['trades']} trades.", ""]
    return "\n".join(lines)


def _cores(cores: dict | None) -> str:
    return "?" if not cores else f"{cores['web']} / {cores['cassandra']} / {cores['locust']}"


def accounts_lines(accounts: dict | None, load: dict) -> list[str]:
    """What a 10,000-account result says about the accounts, the sign-ins and the per-user cache."""
    if not accounts:
        return []
    lines = [f"Accounts: {accounts['users']:,} users (activity ranks {accounts['ranks'][0]:,} / "
             f"{accounts['ranks'][1]:,} / {accounts['ranks'][2]:,} of {accounts['population']:,}: min / "
             f"median / max) and {accounts['firm']} analysts, hash `{accounts['hash']}`"
             + (f", seeded in {accounts['seeded_s']} s" if accounts.get("seeded_s") else "") + "."]
    sign_in = load.get("sign_in")
    if sign_in:
        lines.append(f"Logged in before the first run: {sign_in['signed_in']:,} accounts in "
                     f"{sign_in['seconds']} s ({sign_in['logins_per_s']} logins/s; GET + POST /login "
                     f"p50 {sign_in['request_p50_ms']} ms, p99 {sign_in['request_p99_ms']} ms).")
    runs = load.get("per_run") or []
    lines.append(f"Each dashboard visit: the page load, then {load.get('rereads', '?')} re-reads. Per run "
                 "(requests/s, p99 ms, distinct accounts visited, per-user cache hit ratio, Cassandra reads "
                 "per request, cores used by the web app / Cassandra / locust): " + "; ".join(
                     f"{p['rps']:.0f}, {p['p99']:.0f}, {p['accounts_visited']}, {p['hit_ratio']}, "
                     f"{p['cassandra_reads_per_request']}, {_cores(p.get('cores'))}" for p in runs) + ".")
    lines.append(f"Medians of the runs: per-user cache hit ratio **{load.get('hit_ratio')}**, distinct "
                 f"accounts visited {load.get('accounts_visited')}, Cassandra reads per request "
                 f"{load.get('cassandra_reads_per_request')}.")
    loads = ", ".join(str(x) for x in load.get("load_average_before_each", []))
    lines.append(f"Load average before each run: {loads}.")
    return [*lines, ""]


if __name__ == "__main__":
    sys.exit(main())
