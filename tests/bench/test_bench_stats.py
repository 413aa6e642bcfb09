"""Unit tests for the benchmark's percentile/summary math and its SVG chart writer."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.bench.loader import load_bench

_stats = load_bench("stats")
_chart = load_bench("chart")
Sample = _stats.Sample
percentile = _stats.percentile
summarize = _stats.summarize
fmt_ms = _stats.fmt_ms
fmt_triple = _stats.fmt_triple
ChartRow = _chart.ChartRow
nice_step = _chart.nice_step
render_svg = _chart.render_svg
write_svg = _chart.write_svg

SVG_NS = "{http://www.w3.org/2000/svg}"


def _ok(start: float, latency: float, first: float | None = None) -> Any:
    return Sample(
        start=start,
        end=start + latency,
        latency=latency,
        first_event=first,
        first_data=None if first is None else first + 0.001,
    )


# ---------------------------------------------------------------- percentile


def test_percentile_matches_linear_interpolation() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    # numpy.percentile([1, 2, 3, 4], 95) == 3.85
    assert percentile(values, 95) == pytest.approx(3.85)


def test_percentile_of_1_to_100() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)


def test_percentile_edge_cases() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# ---------------------------------------------------------------- summarize


def test_summarize_counts_rate_and_percentiles() -> None:
    samples = [_ok(100.0 + i * 0.1, 0.1 * (i + 1)) for i in range(10)]  # latencies 0.1..1.0
    samples.append(Sample(start=100.05, end=101.0, latency=0.95, error="Timeout: run exceeded 1s"))
    samples.append(Sample(start=100.5, end=101.0, latency=0.5, error="HTTPStatusError: 500"))
    summary = summarize(samples, measure_start=100.0, min_wall=1.0)

    assert (summary.runs, summary.ok, summary.errors) == (12, 10, 2)
    # last end: 100.9 + 1.0 = 101.9 -> wall 1.9 s, 10 ok runs
    assert summary.wall == pytest.approx(1.9)
    assert summary.runs_per_s == pytest.approx(10 / 1.9)
    assert summary.latency.p50 == pytest.approx(0.55)
    assert summary.latency.p95 == pytest.approx(0.955)
    assert summary.latency_max == pytest.approx(1.0)
    assert summary.latency_mean == pytest.approx(0.55)
    # error latencies are excluded from latency percentiles
    assert summary.first_error == "Timeout: run exceeded 1s"  # the earliest-started error
    assert summary.error_kinds == {"Timeout": 1, "HTTPStatusError": 1}
    assert summary.first_event.p50 is None  # wait runs have no first event


def test_summarize_uses_min_wall_and_first_events() -> None:
    samples = [_ok(10.0, 0.2, first=0.05), _ok(10.0, 0.4, first=0.15)]
    summary = summarize(samples, measure_start=10.0, min_wall=20.0)
    assert summary.wall == 20.0
    assert summary.runs_per_s == pytest.approx(0.1)
    assert summary.first_event.p50 == pytest.approx(0.1)
    assert summary.first_data.p50 == pytest.approx(0.101)


def test_summarize_empty() -> None:
    summary = summarize([], measure_start=0.0, min_wall=5.0)
    assert (summary.runs, summary.ok, summary.runs_per_s) == (0, 0, 0.0)
    assert summary.latency.p50 is None
    assert fmt_triple(summary.latency) == "-"


def test_formatting() -> None:
    assert fmt_ms(None) == "-"
    assert fmt_ms(0.0012) == "1.2"
    assert fmt_ms(0.2504) == "250"
    summary = summarize([_ok(0.0, 0.25)], measure_start=0.0)
    assert fmt_triple(summary.latency) == "250 / 250 / 250"


# ---------------------------------------------------------------- chart


def test_nice_step() -> None:
    assert nice_step(1048) == 500
    assert nice_step(100) == 20
    assert nice_step(7) == 2
    assert nice_step(0) == 1.0


def _bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    return [el for el in root.iter(f"{SVG_NS}rect") if el.get("class") == "bar"]


def test_render_svg_is_valid_and_proportional() -> None:
    rows = [
        ChartRow("trivial · wait", 100.0, 200.0, 400.0),
        ChartRow("fake <model> & co", 50.0, None, 75.0),
    ]
    svg = render_svg(rows, title="t & t")
    bars = _bars(svg)  # also proves the XML (with escaped labels) parses
    assert len(bars) == 5  # the missing p95 draws no bar
    widths = {
        (b.get("data-series"), float(b.get("data-value") or 0)): float(b.get("width") or 0)
        for b in bars
    }
    assert widths[("p99", 400.0)] == pytest.approx(4 * widths[("p50", 100.0)])
    assert widths[("p95", 200.0)] == pytest.approx(2 * widths[("p50", 100.0)])
    assert widths[("p50", 50.0)] == pytest.approx(widths[("p50", 100.0)] / 2)
    assert "fake &lt;model&gt; &amp; co" in svg


def test_write_svg_creates_file(tmp_path: Path) -> None:
    target = write_svg(tmp_path / "sub" / "chart.svg", [ChartRow("a", 1.0, 2.0, 3.0)])
    assert target.exists()
    assert len(_bars(target.read_text(encoding="utf-8"))) == 3


def test_render_svg_without_rows() -> None:
    assert _bars(render_svg([])) == []
