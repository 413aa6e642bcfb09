"""The benchmark's open-loop mode (``--rate``) against a live server: runs start on a
fixed schedule, and a run that could not start on time counts its wait as latency."""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.bench.loader import BENCH_DIR
from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = LiveServer(tmp_path_factory.mktemp("open-loop")).start()
    yield live
    live.stop()


def _bench(server: LiveServer, out: Path, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH_DIR / "agent_server_bench.py"), "--url", server.url]
    cmd += ["--warmup", "0.5", "--duration", "2", "--json", str(out), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    scenario: dict[str, Any] = json.loads(out.read_text())["scenarios"][0]
    return scenario


def test_runs_start_at_the_given_rate(server: LiveServer, tmp_path: Path) -> None:
    got = _bench(
        server, tmp_path / "r.json", "--rate", "40", "--clients", "8", "--graph", "trivial",
        "--kind", "stream",
    )  # fmt: skip
    summary = got["summary"]
    assert summary["errors"] == 0
    # 2 s at 40 runs/s, whatever each run's latency. The achieved runs/s is not asserted:
    # it depends on how busy the machine is, the schedule does not.
    assert 72 <= summary["runs"] <= 82, summary
    starts = sorted(s["start"] for s in got["samples"])
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert statistics.median(gaps) == pytest.approx(0.025, abs=0.005), gaps
    assert starts[-1] - starts[0] == pytest.approx(2.0, abs=0.2), starts
    assert summary["first_event"]["p50"] is not None


def test_a_run_that_starts_late_counts_its_wait(server: LiveServer, tmp_path: Path) -> None:
    # One client, runs of 0.2 s, 20 offered per second: the schedule runs away from the
    # client, and the runs' latencies say so (closed loop would report 0.2 s each).
    got = _bench(
        server, tmp_path / "r.json", "--rate", "20", "--clients", "1", "--graph", "slow",
        "--input", '{"delay": 0.1}', "--kind", "wait",
    )  # fmt: skip
    summary = got["summary"]
    assert summary["runs_per_s"] < 7, summary
    assert summary["latency"]["p95"] > 1.0, summary
    starts = sorted(s["start"] for s in got["samples"])
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert max(gaps) < 0.08  # scheduled starts: every 50 ms
