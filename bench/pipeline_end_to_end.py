"""End-to-end benchmark: the generator live into Kafka, the streaming job into Cassandra, sampled while
they run: produced and processed rates, consumer lag, per-batch trade-to-Cassandra latency, CPU and
memory per component; a Markdown report with a verdict against the target and an SVG plot.

    bin/stockafolio run --no-pipeline        # the stack, without its own pipeline
    PYTHONPATH=. python bench/pipeline_end_to_end.py [--rate 20000] [--minutes 10] [--users 100000]
        [--sample-seconds 5] [--out bench/results/pipeline_end_to_end]

Isolation: a fresh keyspace (migrated with stockafolio.migrations) and fresh topics named after the
run, so the stack's own pipeline data is not touched; both are dropped at the end (--keep leaves
them). The job runs with its own checkpoint under <var>/data/bench/. Started processes are stopped at
the end, also on Ctrl-C. Processed offsets are read from the job's checkpoint (the end offsets of its
last committed batch), produced ones from Kafka's end offsets, so lag = produced - processed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from stack.cli import LOCAL_REPLICATION  # noqa: E402
from stockafolio import cql, migrations  # noqa: E402
from stockafolio.errors import StockafolioError  # noqa: E402
from stockafolio.settings import Endpoints, default_var_dir, kafka_client_config  # noqa: E402
from streaming import health  # noqa: E402

TARGET_RATE, TARGET_P99_MS = 20_000, 3_000
SERVICES = ("kafka", "cassandra")


@dataclass
class Sample:
    t: float  # seconds since the generator started
    produced: int
    processed: int
    produced_rate: float
    processed_rate: float
    lag: int
    p50: float | None
    p95: float | None
    p99: float | None
    load: float = 0.0  # the machine's 1-minute load average (other work shares the cores)
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core
    rss: dict[str, float] = field(default_factory=dict)  # MiB


@dataclass(frozen=True)
class Batch:
    """One portfolio micro-batch, from `batches_by_job` (written by the job itself)."""

    batch_id: int
    rows: int
    seconds: float
    p50: float | None
    p95: float | None
    p99: float | None
    started: float | None = None  # seconds after the run's first batch started (None: an older report)


@dataclass
class Run:
    """Everything a report is made of."""

    samples: list[Sample]
    config: dict[str, str]
    generator_seconds: float  # how long the generator produced (the window the throughput is taken over)
    batches: list[Batch] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)  # job log: step -> seconds per batch


class Components:
    """psutil handles per component (a process and its descendants), CPU % since the last call."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.known: dict[int, psutil.Process] = {}

    def measure(self) -> tuple[dict[str, float], dict[str, float]]:
        cpu, rss = {}, {}
        for name, pid in self.roots.items():
            procs = self._tree(pid)
            if name == "streaming":  # the job: its Python driver, its Spark JVM, its Python workers apart
                jvm = [p for p in procs if _is_java(p)]
                workers = [p for p in procs[1:] if not _is_java(p)]  # pyspark daemon and workers
                for part, group in (("streaming JVM", jvm), ("streaming Python driver", procs[:1]),
                                    ("streaming Python workers", workers)):
                    cpu[part], rss[part] = self._sum(group)
            else:
                cpu[name], rss[name] = self._sum(procs)
        return cpu, rss

    def _tree(self, pid: int) -> list[psutil.Process]:
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _sum(self, procs: list[psutil.Process]) -> tuple[float, float]:
        cpu = rss = 0.0
        for p in procs:
            handle = self.known.setdefault(p.pid, p)
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                cpu += handle.cpu_percent(None)
                rss += handle.memory_info().rss / 2**20
        return cpu, rss


def _is_java(p: psutil.Process) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        return p.name().startswith("java")
    return False


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.from_json:
        _write(args, load_run(Path(args.from_json)))
        return 0
    var = default_var_dir()
    try:
        endpoints = Endpoints.load(var)
        cluster, session = cql.connect(endpoints.cassandra)
    except StockafolioError as exc:
        print(f"pipeline_end_to_end: {exc}", file=sys.stderr)
        return 1
    run = "bench" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    names = {k: f"{run}-{k}" for k in ("trades", "prices", "events", "dead")}
    keyspace, checkpoint = f"{run}_ks", var / "data" / "bench" / run / "checkpoint"
    say(f"run {run}: keyspace {keyspace}, topics {names['trades']} (+prices, events, dead letters), "
        f"{args.partitions} partitions")
    migrations.apply(session, keyspace, migrations.load(REPO / "cassandra" / "migrations"), LOCAL_REPLICATION)
    admin = AdminClient({"bootstrap.servers": endpoints.kafka.bootstrap_servers,
                         **kafka_client_config(endpoints.kafka.auth)})
    for future in admin.create_topics([NewTopic(t, args.partitions, 1) for t in names.values()]).values():
        future.result(30)
    started: list[subprocess.Popen] = []
    try:
        run_data = _run(args, var, endpoints, session, keyspace, names, checkpoint, started)
        run_data.batches = _batches(session, keyspace)
    finally:
        for proc in reversed(started):
            _stop(proc)
        if not args.keep:
            with contextlib.suppress(Exception):
                for future in admin.delete_topics(list(names.values())).values():
                    future.result(30)
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
        cluster.shutdown()
    _write(args, run_data)
    return 0


def _run(args: argparse.Namespace, var: Path, endpoints: Endpoints, session, keyspace: str,
         names: dict[str, str], checkpoint: Path, started: list[subprocess.Popen]
         ) -> Run:
    env = {**os.environ, "PYTHONPATH": str(REPO), "STOCKAFOLIO_VAR": str(var)}
    logs = var / "log" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    job_argv = [sys.executable, "-m", "streaming.job", "--keyspace", keyspace,
                "--checkpoint", str(checkpoint), "--trades-topic", names["trades"],
                "--prices-topic", names["prices"],
                "--events-topic", names["events"], "--dead-letter-topic", names["dead"], "--seed", "1",
                *args.job_args]
    generator_argv = [sys.executable, "-m", "generator", "live", "--rate", str(args.rate), "--users",
                      str(args.users), "--duration", str(round(args.minutes * 60)), "--seed", "1",
                      "--trades-topic", names["trades"], "--prices-topic", names["prices"], "--no-archive",
                      "--var", str(var)]
    say(f"starting the streaming job (log {logs / 'streaming.out'}); waiting {args.warmup_seconds:.0f} s "
        "for Spark to start")
    log_start = (logs / "streaming.out").stat().st_size if (logs / "streaming.out").exists() else 0
    job = _spawn(job_argv, logs / "streaming.out", env)
    started.append(job)
    time.sleep(args.warmup_seconds)
    if job.poll() is not None:
        raise SystemExit(f"the streaming job exited with {job.returncode}; see {logs / 'streaming.out'}")
    say(f"starting the generator at {args.rate:,}/s for {args.minutes} min (log {logs / 'generator.out'})")
    gen = _spawn(generator_argv, logs / "generator.out", env)
    started.append(gen)
    roots = {"generator": gen.pid, "streaming": job.pid,
             **{s: pid for s in SERVICES if (pid := _service_pid(var, s)) is not None}}
    samples = _sample(args, endpoints, session, keyspace, names["trades"], checkpoint, Components(roots), gen)
    config = {"rate": f"{args.rate:,}/s", "minutes": str(args.minutes), "users": f"{args.users:,}",
              "partitions": str(args.partitions), "job flags": " ".join(args.job_args) or "(defaults)",
              "cores": str(os.cpu_count()), "started": datetime.now(UTC).isoformat(timespec="seconds")}
    with open(logs / "streaming.out", "rb") as log:
        log.seek(log_start)
        steps = step_seconds(log.read().decode("utf-8", "replace"))
    return Run(samples, config, _generator_seconds(samples, args.minutes * 60), steps=steps)


def _generator_seconds(samples: list[Sample], planned: float) -> float:
    """Up to the last sample that saw the topic grow (the generator's own clock is not visible here)."""
    growing = [s.t for s in samples if s.produced_rate > 0]
    return max(growing) if growing else planned


STEP = re.compile(r"batch (\d+): ([a-z+ ]+?) (\d+\.\d+) s$", re.MULTILINE)


def step_seconds(log: str) -> dict[str, list[float]]:
    """The job's per-step timings (`streaming.job._Steps` lines): step -> seconds, one per batch."""
    steps: dict[str, list[float]] = {}
    for match in STEP.finditer(log):
        steps.setdefault(match.group(2), []).append(float(match.group(3)))
    return steps


def _sample(args: argparse.Namespace, endpoints: Endpoints, session, keyspace: str, topic: str,
            checkpoint: Path, components: Components, gen: subprocess.Popen) -> list[Sample]:
    consumer = Consumer({"bootstrap.servers": endpoints.kafka.bootstrap_servers, "group.id": "bench-e2e",
                         **kafka_client_config(endpoints.kafka.auth)})
    components.measure()  # primes cpu_percent
    began, samples, seen_batch = time.monotonic(), [], -1
    last = (0.0, 0, 0)
    end = began + args.minutes * 60 + args.drain_seconds
    while time.monotonic() < end:
        time.sleep(args.sample_seconds)
        now = time.monotonic() - began
        produced = sum(_ends(consumer, topic, args.partitions).values())
        processed = _processed(checkpoint)
        batches = _batches_since(session, keyspace, seen_batch)
        seen_batch = max([seen_batch, *(b.batch_id for b in batches)])
        cpu, rss = components.measure()
        dt = max(now - last[0], 1e-3)
        sample = Sample(now, produced, processed, (produced - last[1]) / dt, (processed - last[2]) / dt,
                        produced - processed, *_latency(batches), os.getloadavg()[0], cpu, rss)
        samples.append(sample)
        last = (now, produced, processed)
        say(f"t={now:5.0f}s produced {produced:>10,} ({sample.produced_rate:>7,.0f}/s) processed "
            f"{processed:>10,} ({sample.processed_rate:>7,.0f}/s) lag {sample.lag:>9,} p99 "
            f"{_fmt(sample.p99)} ms; load {sample.load:.1f}; CPU "
            + ", ".join(f"{k} {v:.0f}%" for k, v in cpu.items()))
        if gen.poll() is not None and sample.lag == 0 and now > args.minutes * 60:
            break
    consumer.close()
    return samples


def _ends(consumer: Consumer, topic: str, partitions: int) -> dict[tuple[str, int], int]:
    return {(topic, p): consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
            for p in range(partitions)}


def _processed(checkpoint: Path) -> int:
    commits = checkpoint / "commits"
    done = sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit()) if commits.exists() else []
    return sum(health.batch_end_offsets(str(checkpoint), done[-1]).values()) if done else 0


def _batches_since(session, keyspace: str, batch_id: int) -> list:
    return list(session.execute(f"SELECT batch_id, latency_p50_ms, latency_p95_ms, latency_p99_ms "  # noqa: S608
                                f"FROM {keyspace}.batches_by_job WHERE job = 'portfolio' AND batch_id > %s",
                                (batch_id,)))


def _batches(session, keyspace: str) -> list[Batch]:
    rows = session.execute(f"SELECT batch_id, input_rows, started_at, finished_at, latency_p50_ms, "  # noqa: S608
                           f"latency_p95_ms, latency_p99_ms FROM {keyspace}.batches_by_job "
                           "WHERE job = 'portfolio'")
    rows = list(rows)
    first = min((r.started_at for r in rows), default=None)
    return [Batch(r.batch_id, r.input_rows or 0, (r.finished_at - r.started_at).total_seconds(),
                  r.latency_p50_ms, r.latency_p95_ms, r.latency_p99_ms,
                  (r.started_at - first).total_seconds()) for r in rows]


SETTLE_SECONDS = 120  # the latency target counts from 2 minutes after the job's first batch


def settled_p99(batches: list[Batch]) -> tuple[float | None, float, int]:
    """Over the batches that started SETTLE_SECONDS or more after the first one (all of them for an
    older report without start times): the trade-weighted 99th percentile of the batches' p99 (an
    estimate of the p99 of every trade's latency: within a batch the spread is the trigger's), the
    share of trades in batches whose p99 was under TARGET_P99_MS, and how many batches counted."""
    kept = [b for b in batches if b.p99 is not None and b.rows > 0
            and (b.started is None or b.started >= SETTLE_SECONDS)]
    total = sum(b.rows for b in kept)
    if not total:
        return None, 0.0, 0
    seen, quantile = 0, None
    for batch in sorted(kept, key=lambda b: b.p99):
        seen += batch.rows
        if seen >= 0.99 * total:
            quantile = batch.p99
            break
    under = sum(b.rows for b in kept if b.p99 < TARGET_P99_MS) / total
    return quantile, under, len(kept)


def _latency(batches: list) -> tuple[float | None, float | None, float | None]:
    """Over the batches finished since the last sample: median p50, worst p95 and p99."""
    rows = [b for b in batches if b.latency_p99_ms is not None]
    if not rows:
        return None, None, None
    return (statistics.median(b.latency_p50_ms for b in rows), max(b.latency_p95_ms for b in rows),
            max(b.latency_p99_ms for b in rows))


def _service_pid(var: Path, name: str) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int((var / "run" / f"{name}.pid").read_text().strip())
    return None


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=out, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


# ---------------------------------------------------------------- report


def _write(args: argparse.Namespace, run: Run) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".svg").write_text(svg(run.samples))
    out.with_suffix(".md").write_text(report(run, out.with_suffix(".svg").name))
    out.with_suffix(".json").write_text(json.dumps(dataclasses.asdict(run), indent=1) + "\n")
    say(f"wrote {out.with_suffix('.md')}, {out.with_suffix('.svg')} and the raw figures "
        f"{out.with_suffix('.json')}")


def load_run(path: Path) -> Run:
    """A run from the .json a previous run wrote (to re-render its report)."""
    data = json.loads(path.read_text())
    return Run([Sample(**s) for s in data["samples"]], data["config"], data["generator_seconds"],
               [Batch(**b) for b in data["batches"]], data["steps"])


def cpu_per_trade(run: Run) -> dict[str, float]:
    """CPU milliseconds per processed trade, per component, over the production window: each sample's
    CPU % times the time since the previous sample, summed, over the trades committed meanwhile."""
    window = [s for s in run.samples if s.t <= run.generator_seconds] or run.samples
    done = window[-1].processed - (run.samples[run.samples.index(window[0]) - 1].processed
                                   if run.samples.index(window[0]) else 0)
    seconds: dict[str, float] = {}
    previous_t = 0.0
    for sample in window:
        for name, percent in sample.cpu.items():
            seconds[name] = seconds.get(name, 0.0) + percent / 100 * (sample.t - previous_t)
        previous_t = sample.t
    return {name: 1000 * cpu / done for name, cpu in seconds.items()} if done else {}


def throughput(run: Run) -> float:
    """Trades the job committed per second while the generator produced: the processed counter's rise
    over that window (batches last longer than a sample, so a median of per-sample rates says nothing)."""
    window = [s for s in run.samples if s.t <= run.generator_seconds] or run.samples
    first, last = window[0], window[-1]
    before = run.samples[run.samples.index(first) - 1] if run.samples.index(first) else None
    t0, done0 = (before.t, before.processed) if before else (0.0, 0)
    return (last.processed - done0) / max(last.t - t0, 1e-3)


def weighted_median(pairs: list[tuple[float, int]]) -> float | None:
    """Median of values weighted by their batch's trades (a big batch counts for its trades)."""
    pairs = sorted((v, w) for v, w in pairs if v is not None and w > 0)
    total = sum(w for _, w in pairs)
    if not total:
        return None
    seen = 0
    for value, weight in pairs:
        seen += weight
        if seen >= total / 2:
            return value
    return pairs[-1][0]


def report(run: Run, plot: str) -> str:
    samples, batches = run.samples, [b for b in run.batches if b.rows]
    lines = ["# Pipeline end to end: generator -> Kafka -> streaming job -> Cassandra", "",
             "Produced by `bench/pipeline_end_to_end.py`; every figure below was measured in this run.", "",
             "| setting | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in run.config.items()), ""]
    if not samples:
        return "\n".join([*lines, "No sample was taken.", ""])
    steady = [s for s in samples if s.produced_rate > 0] or samples
    produced = statistics.median(s.produced_rate for s in steady)
    lines += ["## Throughput and lag", "",
              "| figure | value |", "|---|---|",
              f"| produced trades/s (median of samples) | {produced:,.0f} |",
              f"| processed trades/s (committed over the {run.generator_seconds:,.0f} s the generator ran) "
              f"| {throughput(run):,.0f} |",
              f"| consumer lag at the end of production (trades) | "
              f"{_lag_at(samples, run.generator_seconds):,} |",
              f"| consumer lag, max (trades) | {max(s.lag for s in samples):,} |",
              f"| machine load average (1 min, all processes), median / max | "
              f"{statistics.median(s.load for s in steady):.1f} / {max(s.load for s in steady):.1f} |", ""]
    lines += _batch_section(batches)
    if run.steps:
        lines += ["## Where a batch's time goes (the job's own step log)", "",
                  "| step | batches | median s | max s |", "|---|---|---|---|",
                  *(f"| {name} | {len(v)} | {statistics.median(v):.2f} | {max(v):.2f} |"
                    for name, v in run.steps.items()), ""]
    per_trade = cpu_per_trade(run)
    lines += ["## CPU and memory per component (samples while the generator produced)", "",
              "CPU ms per trade: the component's CPU time over the production window divided by the trades "
              "the job committed in it (the generator and Kafka also work for trades still in the lag).", "",
              "| component | CPU % of one core, median | max | CPU ms per processed trade | "
              "RSS MiB, median | max |",
              "|---|---|---|---|---|---|"]
    for name in sorted({k for s in steady for k in s.cpu}):
        cpu = [s.cpu.get(name, 0.0) for s in steady]
        rss = [s.rss.get(name, 0.0) for s in steady]
        lines.append(f"| {name} | {statistics.median(cpu):.0f} | {max(cpu):.0f} | "
                     f"{_fmt2(per_trade.get(name))} | {statistics.median(rss):.0f} | {max(rss):.0f} |")
    if per_trade:
        total, cores = sum(per_trade.values()), os.cpu_count() or 1
        lines += [f"| **all** | | | **{total:.2f}** | | |", "",
                  f"At {total:.2f} CPU ms per trade, {cores} fully used cores would process at most "
                  f"{1000 * cores / total:,.0f} trades/s (other work on the machine aside)."]
    lines += ["", "## Over time", "", f"![rates and lag]({plot})", "",
              "| minute | produced/s | processed/s | lag at end | worst p99 ms |", "|---|---|---|---|---|"]
    for minute in sorted({int(s.t // 60) for s in samples}):
        part = [s for s in samples if int(s.t // 60) == minute]
        p99 = [s.p99 for s in part if s.p99 is not None]
        lines.append(f"| {minute} | {statistics.mean(s.produced_rate for s in part):,.0f} | "
                     f"{statistics.mean(s.processed_rate for s in part):,.0f} | {part[-1].lag:,} | "
                     f"{_fmt(max(p99) if p99 else None)} |")
    lines += ["", "## Verdict", "", *verdict(run), ""]
    return "\n".join(lines)


def _batch_section(batches: list[Batch]) -> list[str]:
    if not batches:
        return []
    under = sum(1 for b in batches if b.p99 is not None and b.p99 < TARGET_P99_MS)
    lines = ["## Portfolio micro-batches (from `batches_by_job`)", "",
             f"{len(batches)} batches with trades. Trade-to-Cassandra latency is the time from a trade's "
             "Kafka append to the end of its batch's Cassandra writes; each batch stores its own "
             "p50/p95/p99, and the run's figures are the trade-weighted medians of those and the worst "
             "batch.", "", "| figure | median (trade-weighted) | worst batch |", "|---|---|---|"]
    for name in ("p50", "p95", "p99"):
        middle = weighted_median([(getattr(b, name), b.rows) for b in batches])
        worst = max((getattr(b, name) or 0.0) for b in batches)
        lines.append(f"| latency {name} ms | {_fmt(middle)} | {_fmt(worst)} |")
    return [*lines,
            f"| trades per batch | {statistics.median(b.rows for b in batches):,.0f} | "
            f"{max(b.rows for b in batches):,} |",
            f"| batch duration s | {statistics.median(b.seconds for b in batches):.2f} | "
            f"{max(b.seconds for b in batches):.2f} |", "",
            f"Batches whose p99 was under {TARGET_P99_MS:,} ms: {under} of {len(batches)}.", "",
            *_settled_lines(batches)]


def _settled_lines(batches: list[Batch]) -> list[str]:
    p99, under, counted = settled_p99(batches)
    since = f"{_since(batches)} ({counted} batches)"
    return [f"Trade-to-Cassandra p99 {since}: **{_fmt(p99)} ms** (the trade-weighted 99th percentile of "
            f"the batches' p99); {under:.1%} of those trades were in batches whose p99 was under "
            f"{TARGET_P99_MS:,} ms.", ""]


def _since(batches: list[Batch]) -> str:
    if any(b.started is not None for b in batches):
        return f"from {SETTLE_SECONDS // 60} minutes after the first batch on"
    return "over all batches (no start times in this report)"


def _lag_at(samples: list[Sample], t: float) -> int:
    before = [s for s in samples if s.t <= t]
    return (before or samples)[-1].lag


def verdict(run: Run) -> list[str]:
    processed = throughput(run)
    window = [s for s in run.samples if s.t <= run.generator_seconds] or run.samples
    half = window[len(window) // 2:]
    growth = (half[-1].lag - half[0].lag) / max(half[-1].t - half[0].t, 1e-3) if len(half) > 1 else 0.0
    p99, _, _ = settled_p99(run.batches)
    return [
        f"- Throughput: {processed:,.0f} trades/s processed against the target {TARGET_RATE:,}/s: "
        + ("met." if processed >= TARGET_RATE else f"**not met** ({processed / TARGET_RATE:.0%} of it)."),
        f"- Lag over the second half of the production window changed by {growth:,.0f} trades/s: "
        + ("bounded." if growth <= 0.02 * max(processed, 1)
           else "**growing**: the job falls behind the input."),
        f"- Trade-to-Cassandra p99 (trade-weighted 99th percentile of the batches' p99, "
        f"{_since(run.batches)}) {_fmt(p99)} ms against "
        f"< {TARGET_P99_MS:,} ms: " + ("met." if p99 is not None and p99 < TARGET_P99_MS else "**not met**."),
    ]


def _row(name: str, values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return f"| {name} | n/a | n/a |"
    return f"| {name} | {statistics.median(present):,.0f} | {max(present):,.0f} |"


def _fmt2(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def svg(samples: list[Sample], width: int = 900, height: int = 360) -> str:
    """Rates (left axis) and lag (right axis) over time, as plain SVG polylines."""
    left, right, top, bottom = 70, 80, 20, 40
    w, h = width - left - right, height - top - bottom
    t_max = max((s.t for s in samples), default=1.0) or 1.0
    rate_max = max([s.produced_rate for s in samples] + [s.processed_rate for s in samples] + [1.0])
    lag_max = max([s.lag for s in samples] + [1])

    def x(t: float) -> float:
        return left + w * t / t_max

    def line(values: list[float], top_value: float, colour: str, dash: str = "") -> str:
        points = " ".join(f"{x(s.t):.1f},{top + h - h * v / top_value:.1f}" for s, v in zip(samples, values,
                                                                                            strict=True))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2"{extra} points="{points}"/>'

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>',
             line([s.produced_rate for s in samples], rate_max, "#1f77b4"),
             line([s.processed_rate for s in samples], rate_max, "#2ca02c"),
             line([float(s.lag) for s in samples], lag_max, "#d62728", "6,3")]
    for i in range(5):
        frac = i / 4
        y = top + h - h * frac
        parts += [f'<text x="{left - 6}" y="{y + 4:.0f}" text-anchor="end">{rate_max * frac:,.0f}</text>',
                  f'<text x="{left + w + 6}" y="{y + 4:.0f}">{lag_max * frac:,.0f}</text>',
                  f'<text x="{x(t_max * frac):.0f}" y="{top + h + 16}" text-anchor="middle">'
                  f'{t_max * frac:.0f} s</text>']
    parts += [f'<text x="{left}" y="{height - 6}" fill="#1f77b4">produced trades/s</text>',
              f'<text x="{left + 150}" y="{height - 6}" fill="#2ca02c">processed trades/s</text>',
              f'<text x="{left + 310}" y="{height - 6}" fill="#d62728">'
              "consumer lag (trades, right axis)</text>",
              "</svg>"]
    return "\n".join(parts) + "\n"


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/pipeline_end_to_end.py",
        description="Run the generator and the streaming job live on the local stack (fresh keyspace and "
                    "topics) and measure rates, lag, latency, CPU and memory; write a report and a plot.",
        epilog="Needs the stack running: bin/stockafolio run --no-pipeline.")
    parser.add_argument("--rate", type=int, default=TARGET_RATE, help="generator trades/s (%(default)s)")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="how long the generator runs (%(default)s)")
    parser.add_argument("--users", type=int, default=100_000, help="simulated users (%(default)s)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topics (%(default)s)")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="sampling period (%(default)s)")
    parser.add_argument("--warmup-seconds", type=float, default=40.0,
                        help="wait for the job's Spark start before producing (%(default)s)")
    parser.add_argument("--drain-seconds", type=float, default=60.0,
                        help="keep sampling after the generator stopped, while there is lag (%(default)s)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "pipeline_end_to_end"),
                        help="report path without suffix: writes .md and .svg (%(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the keyspace and topics")
    parser.add_argument("--from-json", metavar="RUN_JSON",
                        help="run nothing: re-render the report of a previous run from its .json")
    parser.add_argument("--job-arg", dest="job_args", action="append", default=[],
                        help="extra flag for streaming.job, repeatable (e.g. --job-arg=--no-views)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
