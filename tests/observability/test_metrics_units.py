"""The pieces under /metrics: the policy events seam, the multiprocess directory's clean-up,
and the exposition of a multiprocess directory (as another process reads it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dockyard import events
from dockyard.errors import BudgetExceededError, RateLimitedError
from dockyard.observability import metrics_dir


def test_events_reach_subscribers_once_and_survive_a_failing_one() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(name: str, **fields: Any) -> None:
        seen.append((name, fields))

    def broken(name: str, **fields: Any) -> None:
        raise RuntimeError("boom")

    events.subscribe(broken)
    events.subscribe(record)
    events.subscribe(record)
    try:
        assert events.watched()
        events.emit("cache", result="hit")
        refusal = RateLimitedError("slow down")
        events.refused(refusal)
        events.refused(refusal)  # mapped by two layers: one refusal
        ended_run = BudgetExceededError("spent")
        ended_run.run_id = "r1"  # came back as a run's error: counted when the run ended
        events.refused(ended_run)
        events.refused(ValueError("not a policy's"))
    finally:
        events.unsubscribe(broken)
        events.unsubscribe(record)
    assert seen == [("cache", {"result": "hit"}), ("refused", {"code": "rate_limited"})]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_clean_keeps_counts_while_another_process_lives(tmp_path: Path) -> None:
    dead, me = _dead_pid(), os.getpid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = [
            f"counter_{dead}.db",
            f"histogram_{dead}.db",
            f"gauge_livesum_{dead}.db",
            f"counter_{live.pid}.db",
            f"gauge_livesum_{live.pid}.db",
            f"gauge_livemax_{me}.db",
            f"counter_{me}.db",
        ]
        for name in names:
            (tmp_path / name).write_bytes(b"")
        metrics_dir.clean(tmp_path)
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(
            [
                f"counter_{dead}.db",
                f"histogram_{dead}.db",
                f"counter_{live.pid}.db",
                f"gauge_livesum_{live.pid}.db",
                f"counter_{me}.db",
            ]
        )
    finally:
        live.kill()
        live.wait()
    # Nobody else alive: the host's deployment restarted, everything goes.
    metrics_dir.clean(tmp_path)
    assert list(tmp_path.iterdir()) == []


SCRIPT = """
import sys
from pathlib import Path
from dockyard.observability import metrics, exposition
m = metrics.install(Path(sys.argv[1]))
m.runs.labels("a", "success", "none").inc(int(sys.argv[2]))
m.streams_open.inc()
if sys.argv[3] == "print":
    sys.stdout.write(exposition.render(m, None).decode())
"""


def test_processes_sum_in_one_directory(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def run(n: int, mode: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path), str(n), mode],
            capture_output=True,
            check=True,
            timeout=60,
        )
        return out.stdout.decode()

    run(2, "quiet")
    text = run(3, "print")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    # Counts of a process that ended stay; its open streams do not.
    assert (
        samples[
            (
                "dockyard_runs_total",
                (("assistant", "a"), ("status", "success"), ("variant", "none")),
            )
        ]
        == 5
    )
    assert samples[("dockyard_streams_open", ())] == 1
    assert "dockyard_tool_calls" in text  # a family nobody wrote is listed, empty
