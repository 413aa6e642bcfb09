"""``/metrics`` of a live server: every family, HTTP requests by route template, runs by
assistant and status, the gauges counted in storage; as Prometheus parses it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.conftest import LiveServer, free_port, make_key
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


def test_interrupts_waiting_until_resumed(server: LiveServer) -> None:
    client = get_sync_client(url=server.url, timeout=30)
    base = scrape(server.url).value("dockyard_interrupts_waiting")
    thread = client.threads.create()
    client.runs.wait(thread["thread_id"], "hitl", input={"x": 1})
    waiting = scrape(server.url)
    assert waiting.value("dockyard_interrupts_waiting") == base + 1
    # An interrupt ends the run well (LangGraph's "success"); its thread waits.
    assert waiting.value("dockyard_runs_total", assistant="hitl", status="success") >= 1
    client.runs.wait(thread["thread_id"], "hitl", command={"resume": "yes"})
    assert scrape(server.url).value("dockyard_interrupts_waiting") == base


def test_streams_open_while_a_client_reads(server: LiveServer, tmp_path: Path) -> None:
    client = get_sync_client(url=server.url, timeout=30)
    thread = client.threads.create()
    hold = tmp_path / "go"  # the run waits for this file (tests/fixtures/project/graphs.py)
    stream = client.runs.stream(
        thread["thread_id"],
        "sleepy",
        input={"delay": 0},
        config={"configurable": {"hold": str(hold)}},
    )
    first = next(stream)
    assert first.event == "metadata"
    assert scrape(server.url).value("dockyard_streams_open") == 1
    hold.touch()
    assert [p.event for p in stream][-1] != "error"
    assert scrape(server.url).value("dockyard_streams_open") == 0


def test_quality_scores_go_to_their_histogram(server: LiveServer) -> None:
    from dockyard.observability.metrics import current
    from dockyard.observability.run_metrics import observe_quality

    before = scrape(server.url)
    observe_quality(current(), "trivial", 0.65)
    observe_quality(current(), "trivial", 0.95)
    after = scrape(server.url)
    moved = after.value(
        "dockyard_quality_score_bucket", assistant="trivial", le="0.7"
    ) - before.value("dockyard_quality_score_bucket", assistant="trivial", le="0.7")
    assert moved == 1
    total = after.value("dockyard_quality_score_count", assistant="trivial") - before.value(
        "dockyard_quality_score_count", assistant="trivial"
    )
    assert total == 2


def test_refusals_and_rate_limits_by_route_template(tmp_path: Path) -> None:
    s = LiveServer(tmp_path, policies={"rate_limit": {"requests_per_minute": 2}}).start()
    try:
        before = scrape(s.url)
        client = httpx.Client(base_url=s.url)
        thread_id = str(uuid.uuid4())
        statuses = [client.get(f"/threads/{thread_id}").status_code for _ in range(3)]
        assert statuses[2] == 429
        after = scrape(s.url)

        def moved(name: str, **labels: str) -> float:
            return after.value(name, **labels) - before.value(name, **labels)

        assert moved("dockyard_rate_limited_total", limit="requests") == 1
        assert moved("dockyard_policy_refusals_total", code="rate_limited") == 1
        # Refused before routing, still counted under its route's template.
        route = "/threads/{thread_id}"
        assert moved("dockyard_http_requests_total", method="GET", route=route, status="429") == 1
        assert thread_id not in after.text
    finally:
        s.stop()


def test_metrics_can_require_a_key(tmp_path: Path) -> None:
    s = LiveServer(tmp_path, observability={"metrics": {"require_key": True}}).start()
    try:
        r = httpx.get(f"{s.url}/metrics")
        assert r.status_code == 401
        assert r.json()["code"] == "unauthorized"
        assert httpx.get(f"{s.url}/ok").status_code == 200  # the rest is as open as before
        key = make_key(s)
        assert scrape(s.url, {"x-api-key": key}).value("dockyard_build_info") == 1
    finally:
        s.stop()


def test_metrics_on_a_port_of_their_own(tmp_path: Path) -> None:
    port = free_port()
    s = LiveServer(tmp_path, observability={"metrics": {"port": port}}).start()
    try:
        assert httpx.get(f"{s.url}/metrics").status_code == 404
        got = scrape(f"http://127.0.0.1:{port}")
        assert got.value("dockyard_build_info") == 1
        assert got.types["dockyard_run_queue_depth"] == "gauge"
        assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404
    finally:
        s.stop()
