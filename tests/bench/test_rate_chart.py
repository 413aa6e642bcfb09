"""bench/rate_chart.py: rows by offered load from --rate runs' JSON."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench.loader import BENCH_DIR, load_bench


def _run(
    rate: float | None,
    p95: float,
    name: str = "trivial · stream · stateless",
    client: str | None = None,
) -> Any:
    summary = {
        "runs_per_s": rate or 10.0,
        "first_event": {"p50": p95 / 2, "p95": p95, "p99": None},
    }
    spec: dict[str, Any] = {"rate": rate}
    if client is not None:
        spec["client"] = client
    return {"meta": {"spec": spec}, "scenarios": [{"name": name, "summary": summary}]}


@pytest.fixture
def rate_chart(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCH_DIR))  # it imports chart.py as the bench does
    return load_bench("rate_chart")


def test_rows_sorted_by_rate_repeats_kept(rate_chart: Any) -> None:
    runs = [_run(150, 0.040), _run(100, 0.012), _run(150, 0.050)]
    rows = rate_chart.rows_of(runs, "stream", "first_event")
    assert [r.label for r in rows] == [
        "100/s offered, 100/s done",
        "150/s offered, 150/s done",
        "150/s offered, 150/s done",
    ]
    assert [r.p95 for r in rows] == [12.0, 40.0, 50.0]
    assert rows[0].p50 == 6.0 and rows[0].p99 is None
    assert rate_chart.rows_of(runs, "wait", "first_event") == []


def test_closed_loop_runs_are_refused(rate_chart: Any) -> None:
    with pytest.raises(ValueError, match="closed loop"):
        rate_chart.rows_of([_run(None, 0.01)], "", "first_event")


def test_labels_name_the_client_when_runs_differ(rate_chart: Any) -> None:
    runs = [_run(150, 0.02, client="lean"), _run(150, 0.03)]  # no client: the SDK (older runs)
    labels = [r.label for r in rate_chart.rows_of(runs, "stream", "first_event")]
    assert labels == [
        "150/s offered, 150/s done, lean client",
        "150/s offered, 150/s done, sdk client",
    ]
    same = [_run(150, 0.02, client="lean"), _run(100, 0.01, client="lean")]
    assert all("client" not in r.label for r in rate_chart.rows_of(same, "stream", "first_event"))
