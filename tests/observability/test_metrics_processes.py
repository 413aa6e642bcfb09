"""Several processes, one count: two API-only servers and a worker (PostgreSQL + Redis)
share one multiprocess directory, and every process's ``/metrics`` counts each run once:
the worker that ran it counted it, the others sum its files."""

from __future__ import annotations

from pathlib import Path

from langgraph_sdk import get_sync_client

from tests.cluster import cluster
from tests.conftest import free_port
from tests.observability.scrape import Scrape, scrape

RUNS = 6
WAIT = "/threads/{thread_id}/runs/wait"


def _ran(after: Scrape, before: Scrape) -> float:
    labels = {"assistant": "trivial", "status": "success"}
    return after.value("dockyard_runs_total", **labels) - before.value(
        "dockyard_runs_total", **labels
    )


def _waits(after: Scrape, before: Scrape) -> float:
    labels = {"route": WAIT, "status": "200"}
    return after.value("dockyard_http_requests_total", **labels) - before.value(
        "dockyard_http_requests_total", **labels
    )


def test_runs_counted_once_across_apis_and_a_worker(tmp_path: Path) -> None:
    with cluster(tmp_path, apis=2, workers=0) as c:
        # The worker has no HTTP server: it serves /metrics on the metrics port.
        port = free_port()
        c.env = {**c.env, "DOCKYARD_OBSERVABILITY__METRICS__PORT": str(port)}
        c.wait_ready(c.start_worker())
        urls = [api.url for api in c.apis] + [f"http://127.0.0.1:{port}"]
        before = [scrape(url) for url in urls]
        for i in range(RUNS):
            client = get_sync_client(url=c.apis[i % 2].url, timeout=60)
            thread = client.threads.create()
            client.runs.wait(thread["thread_id"], "trivial", input={"x": i})
        after = [scrape(url) for url in urls]
        for a, b in zip(after, before, strict=True):
            assert _ran(a, b) == RUNS
            assert _waits(a, b) == RUNS
            assert a.value("dockyard_run_queue_depth") == 0
        # One directory, a file set per process.
        pids = {f.stem.rsplit("_", 1)[1] for f in (tmp_path / "data" / "metrics").glob("*.db")}
        assert {str(p.pid) for p in c.apis + c.workers} <= pids
