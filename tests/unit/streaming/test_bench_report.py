"""The end-to-end benchmark's report and plot from samples: medians, verdict, a well-formed SVG."""

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


def samples(bench, processed: float, lag_step: int, p99: float) -> list:
    return [bench.Sample(t=5.0 * i, produced=1000 * i, processed=0, produced_rate=1000.0,
                         processed_rate=processed, lag=lag_step * i, p50=p99 / 3, p95=p99 / 2, p99=p99,
                         load=1.5, cpu={"kafka": 10.0}, rss={"kafka": 600.0}) for i in range(1, 25)]


def test_a_pipeline_that_keeps_up_meets_lag_and_latency_but_not_the_rate(bench) -> None:
    text = bench.report(samples(bench, 1000.0, 0, 2_000.0), {"rate": "1,000/s"}, "plot.svg")
    assert "| processed trades/s | 1,000 | 1,000 |" in text
    assert "**not met** (5% of it)" in text and "bounded." in text
    assert "Worst per-batch p99 latency 2,000 ms against < 3,000 ms: met." in text
    assert "| kafka | 10 | 10 | 600 | 600 |" in text


def test_growing_lag_and_slow_batches_are_called_out(bench) -> None:
    text = bench.report(samples(bench, 400.0, 600, 9_000.0), {}, "plot.svg")
    assert "**growing**" in text and "9,000 ms against < 3,000 ms: **not met**" in text


def test_plot_is_valid_svg_with_three_lines(bench) -> None:
    root = ET.fromstring(bench.svg(samples(bench, 1000.0, 10, 1_000.0)))  # noqa: S314 (our own output)
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 3
