"""bin/stockafolio: run, stop, status, test (and the steps of run, one at a time); dead-letters, nightly."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from stack import services
from stack.config import StackConfig
from stockafolio.argtypes import positive_int
from stockafolio.errors import StockafolioError

LOCAL_REPLICATION = {"class": "SimpleStrategy", "replication_factor": 1}
PARTITIONS = 6  # per pipeline topic: room for up to 6 Spark tasks / consumers in parallel


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("dead-letters", "nightly"):  # their flags are python -m streaming / batch's
        args.extra = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    cfg = StackConfig.from_env()
    try:
        return int(args.func(cfg, args) or 0)
    except StockafolioError as exc:
        print(f"stockafolio: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stockafolio: interrupted; what this command started was stopped", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bin/stockafolio",
        description="Stockafolio's local stack: Kafka, Cassandra, HDFS, MinIO (S3) and Spark on "
                    "this machine, installed and configured by the Ansible roles in ansible/.",
        epilog="Environment: STOCKAFOLIO_CACHE (downloads, default ~/.cache/stockafolio), "
               "STOCKAFOLIO_VAR (configs, data, logs; default <repo>/var).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmd = sub.add_parser(
        "run", help="install what is missing, start the stack and the pipeline",
        description="Provision and start Kafka, Cassandra, HDFS and MinIO, apply the schema, then "
                    "start the streaming job, the generator and the web app (the pipeline), each under "
                    "a supervisor that restarts it when it fails. Fails, naming the process and its "
                    "last error, if one of them exits while it settles.")
    cmd.add_argument("--rate", type=positive_int, default=500,
                     help="generator trades per second (default 500: with 10 million users the whole "
                          "pipeline then takes about half of one of this machine's 2 cores, leaving "
                          "the rest to the web app and the nightly batch; the job sustains ~3,300/s "
                          "on 2 cores with nothing else; bench/results/streaming_cost.md)")
    cmd.add_argument("--users", type=positive_int, default=10_000_000,
                     help="simulated users (default 10000000)")
    cmd.add_argument("--speed", type=float, default=1.0,
                     help="simulated seconds per wall second (default 1)")
    cmd.add_argument("--web-port", type=positive_int, default=8000,
                     help="port of the web app on 127.0.0.1 (default 8000)")
    cmd.add_argument("--no-pipeline", action="store_true",
                     help="start only the services, not the streaming job, generator and web app")
    cmd.set_defaults(func=cmd_run)
    cmd = sub.add_parser("stop", help="stop every service, in reverse order; data is kept")
    cmd.set_defaults(func=cmd_stop)
    cmd = sub.add_parser(
        "status", help="each service: ports, pid, health, memory",
        description="Each service and pipeline process: ports, pid, resident memory, health, and the "
                    "tail of the log of an unhealthy one. For a pipeline process that has restarted or "
                    "is down also its restarts, its last failure and the last error line of its log. "
                    "Exit status 1 unless all are healthy.")
    cmd.add_argument("--json", action="store_true",
                     help="print the rows as JSON (with each pipeline process's supervisor state)")
    cmd.set_defaults(func=cmd_status)
    cmd = sub.add_parser("provision", help="only apply the Ansible roles (install + configure)")
    cmd.add_argument("--tags", help="only these roles, e.g. kafka,cassandra")
    cmd.set_defaults(func=cmd_provision)
    cmd = sub.add_parser("migrate", help="apply the Cassandra schema migrations not yet applied")
    cmd.add_argument("--keyspace", help="target keyspace (default: $STOCKAFOLIO_KEYSPACE or "
                                        "stockafolio)")
    cmd.set_defaults(func=cmd_migrate)
    cmd = sub.add_parser(
        "dead-letters", add_help=False,
        help="what the streaming job refused: counts per reason, the latest letters (same as python -m "
             "streaming dead-letters [--latest N] [--since-minutes M]; see its --help)")
    cmd.set_defaults(func=cmd_dead_letters)
    cmd = sub.add_parser(
        "nightly", add_help=False,
        help="the nightly batch for the last complete market day in the archive (by the market's clock, "
             "the latest price tick): S3 -> HDFS, the firm's views, reconciliation, historical VaR (same "
             "as python -m batch nightly [--date D] [--repair]; see its --help)")
    cmd.set_defaults(func=cmd_nightly)
    cmd = sub.add_parser(
        "test", help="lint, start the stack if needed, run the whole test suite",
        description="Runs ruff, yamllint and ansible-lint, then pytest. Starts the local stack if "
                    "it is not already running (and stops it afterwards). Extra arguments after "
                    "-- go to pytest.")
    cmd.add_argument("--unit", action="store_true", help="lint and unit tests only, no services")
    cmd.add_argument("--keep", action="store_true", help="leave a stack this started running")
    cmd.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest after --")
    cmd.set_defaults(func=cmd_test)
    return p


def cmd_provision(cfg: StackConfig, args: argparse.Namespace) -> int:
    services.provision(cfg, tags=args.tags)
    return 0



def cmd_run(cfg: StackConfig, args: argparse.Namespace) -> int:
    from stack import pipeline

    began = time.monotonic()
    _up(cfg)
    from stack import tools

    tools.npm_assets(cfg)  # the web app serves chart.js and the socket.io client from the cache
    if not args.no_pipeline:
        print("[pipeline] starting the pipeline (streaming job, generator, web app)", flush=True)
        opts = pipeline.PipelineOptions(rate=args.rate, users=args.users, speed=args.speed,
                                        web_port=args.web_port)
        demo = pipeline.seed_demo_accounts(cfg, opts)
        specs = pipeline.launch_specs(cfg, opts)
        pipeline.write_specs(cfg, specs)
        services.start_all(cfg, all_specs=specs)
    print(f"\nStockafolio local stack is up ({time.monotonic() - began:.0f} s):")
    _print_endpoints(cfg)
    if not args.no_pipeline:
        print(f"  Pipeline    generator at {args.rate} trades/s for {args.users} users -> Kafka "
              f"'trades' -> streaming job -> Cassandra; logs in {cfg.var}/log/pipeline/")
        print(f"  Dashboard   http://127.0.0.1:{args.web_port}/  log in as (passwords also in "
              f"{cfg.var}/secrets/demo-accounts.json):")
        for a in demo:
            who = f"user {a['user_id']}'s portfolio" if a.get("user_id") else "the firm's dashboard"
            print(f"      {a['username']:<8} {a['password']}   ({who})")
    print("Stop it with: bin/stockafolio stop    Check it with: bin/stockafolio status")
    return 0


def _up(cfg: StackConfig) -> list[str]:
    print("[provision] provisioning with Ansible (ansible/local.yml)", flush=True)
    services.provision(cfg)
    print("[services] starting services", flush=True)
    started = services.start_all(cfg)
    print("[schema] Cassandra migrations, S3 archive bucket, Kafka topics", flush=True)
    try:
        _migrate(cfg, cfg.keyspace)
        _archive_bucket(cfg)
        _topics(cfg)
    except (StockafolioError, KeyboardInterrupt):
        _stop_started(cfg, started)
        raise
    return started


def _stop_started(cfg: StackConfig, started: list[str]) -> None:
    services.stop_named(cfg, services.specs(cfg), started)


def cmd_migrate(cfg: StackConfig, args: argparse.Namespace) -> int:
    _migrate(cfg, args.keyspace or cfg.keyspace)
    return 0


def _migrate(cfg: StackConfig, keyspace: str) -> None:
    from stockafolio import cql, migrations
    from stockafolio.settings import Endpoints

    endpoint = Endpoints.load(cfg.var).cassandra
    cluster, session = cql.connect(endpoint)
    try:
        todo = migrations.load(cfg.migrations_dir)
        done = migrations.apply(session, keyspace, todo, LOCAL_REPLICATION)
        names = ", ".join(f"{m.version:03d}_{m.name}" for m in done) or "none (schema current)"
        print(f"  keyspace {keyspace}: applied {names}")
    finally:
        cluster.shutdown()


def _topics(cfg: StackConfig) -> None:
    from stockafolio import topics
    from stockafolio.settings import Endpoints

    bootstrap = Endpoints.load(cfg.var).kafka.bootstrap_servers
    made = topics.ensure_topics(bootstrap, topics.PIPELINE_TOPICS, PARTITIONS, replication=1)
    print(f"  topics {', '.join(topics.PIPELINE_TOPICS)}: "
          f"{'created ' + ', '.join(made) if made else 'exist'}")


def _archive_bucket(cfg: StackConfig) -> None:
    from stockafolio import s3
    from stockafolio.settings import Endpoints

    endpoint = Endpoints.load(cfg.var).s3
    created = s3.ensure_bucket(endpoint, endpoint.archive_bucket)
    print(f"  bucket {endpoint.archive_bucket}: {'created' if created else 'exists'}")


def _print_endpoints(cfg: StackConfig) -> None:
    from stockafolio.settings import Endpoints

    e = Endpoints.load(cfg.var)
    rows = [("Kafka", e.kafka.bootstrap_servers),
            ("Cassandra", f"{','.join(e.cassandra.contact_points)}:{e.cassandra.port} "
                          f"(keyspace {cfg.keyspace})"),
            ("HDFS", f"{e.hdfs.url} (web UI {e.hdfs.namenode_http})"),
            ("S3 (MinIO)", f"{e.s3.endpoint_url} (bucket {e.s3.archive_bucket}; "
                           f"credentials in {cfg.var}/conf/minio/credentials.json)"),
            ("Spark", f"{e.spark.master}, SPARK_CONF_DIR={e.spark.conf_dir}")]
    for name, where in rows:
        print(f"  {name:<11} {where}")


def cmd_stop(cfg: StackConfig, args: argparse.Namespace) -> int:
    print("stopping the local stack (reverse order)")
    services.stop_all(cfg)
    return 0


def cmd_status(cfg: StackConfig, args: argparse.Namespace) -> int:
    from stack import pipeline, process, supervise

    rows = services.status(cfg)
    healthy = all(s.healthy for s in rows)
    if args.json:
        print(json.dumps([{**dataclasses.asdict(s), "rss_mib": round(s.rss_mib, 1), "healthy": s.healthy}
                          for s in rows], indent=2))
        return 0 if healthy else 1
    print(f"{'process':<14} {'ports':<18} {'pid':>7} {'RSS MiB':>8}  health")
    for s in rows:
        ports = ",".join(map(str, s.ports))
        pid = str(s.pid) if s.pid else "-"
        print(f"{s.name:<14} {ports:<18} {pid:>7} {s.rss_mib:>8.0f}  {s.problem or 'healthy'}")
        for line in supervise.history(s.supervisor):
            print(f"{'':<14} {line}")
    print(f"{'total':<14} {'':<18} {'':>7} {sum(s.rss_mib for s in rows):>8.0f}")
    for s, spec in zip(rows, services.specs(cfg) + pipeline.written_specs(cfg), strict=True):
        if s.pid and not s.healthy:
            print(f"\n--- last lines of {spec.log}\n{process.log_tail(spec)}")
        elif s.supervisor and not s.healthy:
            print(f"\n--- {s.name}: log {spec.log}; start it again with: bin/stockafolio run")
    return 0 if healthy else 1


def cmd_dead_letters(cfg: StackConfig, args: argparse.Namespace) -> int:
    from streaming.__main__ import main as streaming_main

    return streaming_main(["dead-letters", *args.extra])


def cmd_nightly(cfg: StackConfig, args: argparse.Namespace) -> int:
    from batch.cli import main as batch_main

    return batch_main(["nightly", *args.extra])


def cmd_test(cfg: StackConfig, args: argparse.Namespace) -> int:
    _lint(cfg)
    extra = [a for a in args.pytest_args if a != "--"]
    if args.unit:
        return _pytest(cfg, ["-m", "not integration and not ansible", *extra])
    from stack import tools

    tools.npm_assets(cfg)
    tools.chromium()  # the browser tests drive Debian's chromium
    started: list[str] = []
    if not services.all_healthy(cfg):
        print("the local stack is not running: starting it for the tests", flush=True)
        started = _up(cfg)
    else:
        print("using the local stack that is already running", flush=True)
        _migrate(cfg, cfg.keyspace)
        _archive_bucket(cfg)
        _topics(cfg)
    try:
        return _pytest(cfg, extra)
    finally:
        if started and not args.keep:
            print("stopping the services this test run started", flush=True)
            _stop_started(cfg, started)


def _lint(cfg: StackConfig) -> None:
    from stack import tools

    bindir = os.path.dirname(sys.executable)
    steps = [("ruff", [f"{bindir}/ruff", "check", "."], cfg.repo),
             ("yamllint", [f"{bindir}/yamllint", "-s", "ansible", ".yamllint"], cfg.repo),
             ("ansible-lint", [f"{bindir}/ansible-lint", "--offline", "-q"], cfg.ansible_dir),
             ("tofu fmt", [str(tools.tofu(cfg)), "fmt", "-check", "-diff", "-recursive", "terraform"],
              cfg.repo),
             ("checkov", [str(tools.checkov(cfg)), "-d", "terraform", "--framework", "terraform",
                          "--quiet", "--compact", "--skip-download"], cfg.repo)]
    env = {**os.environ, "ANSIBLE_CONFIG": str(cfg.ansible_dir / "ansible.cfg"),
           "TF_CLI_CONFIG_FILE": "/dev/null"}
    for name, argv, cwd in steps:
        began = time.monotonic()
        done = subprocess.run(argv, cwd=cwd, check=False, env=env)
        if done.returncode != 0:
            raise StockafolioError(f"lint failed: {name} (output above)")
        print(f"lint: {name} clean ({time.monotonic() - began:.1f} s)", flush=True)


def _pytest(cfg: StackConfig, extra: list[str]) -> int:
    argv = [sys.executable, "-m", "pytest", *extra]
    return subprocess.run(argv, cwd=cfg.repo, check=False).returncode
