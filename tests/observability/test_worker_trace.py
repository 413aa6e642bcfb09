"""A run queued by an API-only server and executed by a ``dockyard worker`` (PostgreSQL +
Redis) continues the request's trace and carries the request's id in its log lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster import cluster
from tests.conftest import eventually
from tests.observability.otlp_receiver import ReceivedSpan, otlp_receiver

PROJECT = Path(__file__).parent / "project" / "dockyard.yaml"
TRACE_ID = "5b8efff798038103d269b633813fc60c"
CLIENT_SPAN = "eee19b7ec3c1b174"


def _ask(text: str) -> dict[str, Any]:
    return {"assistant_id": "support", "input": {"messages": [{"role": "user", "content": text}]}}


async def test_a_workers_run_continues_the_requests_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    with (
        otlp_receiver() as receiver,
        cluster(
            tmp_path,
            apis=1,
            workers=1,
            config=PROJECT,
            observability__traces__endpoint=receiver.url,
        ) as c,
    ):
        (api,), (worker,) = c.apis, c.workers
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            ok = await http.post(
                "/runs/wait",
                json=_ask("who am I?"),
                headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"},
            )
            assert ok.status_code == 200, ok.text
            failed = await http.post(
                "/runs/wait", json=_ask("fail me"), headers={"x-request-id": "worker-req-2"}
            )
            assert "__error__" in failed.json()

        def spans() -> list[ReceivedSpan]:
            got = [s for s in receiver.received() if s.trace_id == TRACE_ID]
            names = {s.name for s in got}
            return got if {"POST /runs/wait", "invoke_agent support"} <= names else []

        received = await eventually(spans, timeout=30)

        def failure() -> list[dict[str, Any]]:
            lines = [json.loads(x) for x in worker.log.read_text().splitlines() if x[:1] == "{"]
            return [x for x in lines if "failed: ValueError" in x["event"]]

        (line,) = await eventually(failure, timeout=30)
    (request,) = [s for s in received if s.name == "POST /runs/wait"]
    (run,) = [s for s in received if s.name == "invoke_agent support"]
    assert request.parent_span_id == CLIENT_SPAN
    assert request.resource["process.pid"] == api.pid
    # Made by the worker, a child of the API's request span, in the client's trace.
    assert run.resource["process.pid"] == worker.pid
    assert run.parent_span_id == request.span_id
    assert any(s.name == "execute_tool lookup" for s in received)
    # The worker's log line of the failed run carries the request's id and the run's ids.
    assert line["request_id"] == "worker-req-2"
    assert line["run_id"] and line["thread_id"] and line["assistant"]
