"""The end-to-end benchmark's report and plot: throughput from the processed counter, trade-weighted
batch latency, the job's step log, the verdict, a well-formed SVG."""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[3] / "bench" / "pipeline_end_to_end.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("pipeline_end_to_end", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def run(bench, processed_per_s: int, lag_step: int, p99: float, batch_every: int = 1):
    """24 samples 5 s apart at 1,000 trades/s produced; the job commits `processed_per_s` on average, in
    steps (a batch every `batch_every` samples), so per-sample rates are mostly zero when batches are long."""
    samples = []
    for i in range(1, 25):
        done = processed_per_s * 5 * (i - i % batch_every)
        samples.append(bench.Sample(t=5.0 * i, produced=5000 * i, processed=done, produced_rate=1000.0,
                                    processed_rate=0.0, lag=lag_step * i, p50=None, p95=None, p99=None,
                                    load=1.5, cpu={"kafka": 10.0}, rss={"kafka": 600.0}))
    batches = [bench.Batch(i, 1000 * (1 + i % 2), 1.0, p99 / 3, p99 / 2, p99) for i in range(10)]
    batches.append(bench.Batch(10, 0, 0.1, None, None, None))  # an empty batch counts for nothing
    return bench.Run(samples, {"rate": "1,000/s"}, 120.0, batches,
                     {"read": [1.0, 2.0, 3.0], "write portfolio": [0.5]})


def test_throughput_is_the_processed_counter_over_the_window_not_a_median_of_samples(bench) -> None:
    r = run(bench, 1000, 0, 2_000.0, batch_every=4)  # a batch every 20 s: most samples see nothing
    assert bench.throughput(r) == pytest.approx(1000.0)
    text = bench.report(r, "plot.svg")
    assert "| processed trades/s (committed over the 120 s the generator ran) | 1,000 |" in text
    assert "**not met** (5% of it)" in text and "bounded." in text


def test_latency_is_trade_weighted_over_batches_with_the_worst_batch(bench) -> None:
    text = bench.report(run(bench, 1000, 0, 2_000.0), "plot.svg")
    assert "| latency p99 ms | 2,000 | 2,000 |" in text
    assert "Batches whose p99 was under 3,000 ms: 10 of 10." in text
    assert ("p99 (trade-weighted 99th percentile of the batches' p99, over all batches (no start times in "
            "this report)) 2,000 ms against < 3,000 ms: met.") in text
    assert "| read | 3 | 2.00 | 3.00 |" in text
    assert "| kafka | 10 | 10 | 0.10 | 600 | 600 |" in text


def test_the_latency_target_counts_from_two_minutes_after_the_first_batch(bench) -> None:
    slow_start = [bench.Batch(i, 1000, 1.0, 9_000.0, 9_000.0, 9_000.0, float(i)) for i in range(120)]
    settled = [bench.Batch(i, 1000, 1.0, 1_000.0, 1_000.0, 1_000.0 + i, float(i)) for i in range(120, 320)]
    p99, under, counted = bench.settled_p99(slow_start + settled)
    assert counted == 200 and under == 1.0
    assert p99 == 1_000.0 + 120 + 197  # the batch at the 99th percentile of the trades (198 of 200)
    one_slow = [*settled[:-1], bench.Batch(999, 1000, 9.0, 5_000.0, 6_000.0, 7_000.0, 400.0)]
    p99, under, _ = bench.settled_p99(one_slow)
    assert p99 == 1_000.0 + 120 + 197 and under == 0.995  # the slow batch: 1,000 of 200,000 trades
    p99, _, _ = bench.settled_p99([*one_slow, bench.Batch(1000, 3000, 9.0, 5e3, 6e3, 8_000.0, 401.0)])
    assert p99 == 8_000.0  # 4,000 of 203,000 trades in the slow batches: above 1 %


def test_weighted_median_follows_the_trades(bench) -> None:
    assert bench.weighted_median([(1.0, 1), (9.0, 10)]) == 9.0
    assert bench.weighted_median([(1.0, 10), (9.0, 1)]) == 1.0
    assert bench.weighted_median([(None, 5)]) is None


def test_growing_lag_and_slow_batches_are_called_out(bench) -> None:
    text = bench.report(run(bench, 400, 600, 9_000.0), "plot.svg")
    assert "**growing**" in text and "9,000 ms against < 3,000 ms: **not met**" in text


def test_step_lines_are_read_from_the_job_log(bench) -> None:
    log = ("2026-11-22 11:43:40,123 streaming.job batch 3: read 2.31 s\n"
           "2026-11-22 11:43:41,123 streaming.job batch 3: write trades+equity 4.50 s\n"
           "2026-11-22 11:43:42,123 streaming.job batch 3: 900 rows (0 dead letters), 800 users in 9.10 s, "
           "lag 5, latency p99 100 ms\n"
           "2026-11-22 11:43:50,123 streaming.job batch 4: read 1.00 s\n")
    assert bench.step_seconds(log) == {"read": [2.31, 1.0], "write trades+equity": [4.5]}


def test_plot_is_valid_svg_with_three_lines(bench) -> None:
    root = ET.fromstring(bench.svg(run(bench, 1000, 10, 1_000.0).samples))  # noqa: S314 (our own output)
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 3


def test_cpu_per_trade_is_cpu_time_over_trades_committed(bench) -> None:
    r = run(bench, 1000, 0, 2_000.0)  # kafka at 10 % of a core for 120 s, 120,000 trades committed
    assert bench.cpu_per_trade(r) == {"kafka": pytest.approx(0.1)}
    assert "| **all** | | | **0.10** | | |" in bench.report(r, "plot.svg")


def test_a_run_re_renders_from_its_json(bench, tmp_path: Path) -> None:
    r = run(bench, 1000, 0, 2_000.0)
    args = bench._parser().parse_args(["--out", str(tmp_path / "e2e")])
    bench._write(args, r)
    again = bench.load_run(tmp_path / "e2e.json")
    assert again == r
    assert bench.report(again, "e2e.svg") == (tmp_path / "e2e.md").read_text()
