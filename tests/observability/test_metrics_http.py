"""``/metrics`` of a live server: every family, HTTP requests by route template, runs by
assistant and status, the gauges counted in storage; as Prometheus parses it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.conftest import LiveServer
from tests.observability.scrape import FAMILIES, scrape


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    s = LiveServer(tmp_path_factory.mktemp("metrics")).start()
    yield s
    s.stop()


def test_every_family_is_listed_with_its_type(server: LiveServer) -> None:
    got = scrape(server.url)
    for name, kind in FAMILIES.items():
        assert got.types.get(name) == kind, name
    assert got.value("dockyard_build_info") == 1


def test_runs_and_requests_count_what_was_done(server: LiveServer) -> None:
    before = scrape(server.url)
    client = get_sync_client(url=server.url, timeout=30)
    thread_ids = []
    for _ in range(3):
        thread = client.threads.create()
        thread_ids.append(thread["thread_id"])
        client.runs.wait(thread["thread_id"], "trivial", input={"x": 1})
    after = scrape(server.url)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("dockyard_runs_total", assistant="trivial", status="success") == 3
    assert moved("dockyard_run_duration_seconds_count", assistant="trivial") == 3
    assert moved("dockyard_run_queue_wait_seconds_count", assistant="trivial") == 3
    route = "/threads/{thread_id}/runs/wait"
    assert moved("dockyard_http_requests_total", method="POST", route=route, status="200") == 3
    assert moved("dockyard_http_request_duration_seconds_count", method="POST", route=route) == 3
    assert moved("dockyard_http_requests_total", method="POST", route="/threads") == 3
    # No id ever becomes a label value (a series per thread or run).
    labels = " ".join(after.label_values())
    for thread_id in thread_ids:
        assert thread_id not in labels
    assert after.value("dockyard_runs_active") == 0
    assert after.value("dockyard_run_queue_depth") == 0


def test_an_unknown_path_counts_as_other(server: LiveServer) -> None:
    before = scrape(server.url)
    path = f"/no/such/{uuid.uuid4()}"
    assert httpx.get(server.url + path).status_code == 404
    after = scrape(server.url)
    assert (
        after.value("dockyard_http_requests_total", route="other", status="404")
        - before.value("dockyard_http_requests_total", route="other", status="404")
        == 1
    )
    assert path not in after.text


def test_disabled_metrics_are_not_found(tmp_path: Path) -> None:
    s = LiveServer(tmp_path, observability={"metrics": {"enabled": False}}).start()
    try:
        assert httpx.get(f"{s.url}/metrics").status_code == 404
    finally:
        s.stop()
