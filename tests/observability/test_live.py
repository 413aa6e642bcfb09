"""Logs and traces of a real ``dockyard serve`` process, as an operator and a collector see
them: its stdout read line by line as JSON, its spans received by an OTLP/HTTP receiver.

The project (tests/observability/project) is a support agent whose tool logs the
customer's message (stdlib and structlog) and fails when asked to.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import eventually, free_port, guarded, wait_ready
from tests.observability.otlp_receiver import ReceivedSpan, otlp_receiver

PROJECT = Path(__file__).parent / "project" / "dockyard.yaml"
EMAIL, RRN = "hong.gildong@example.com", "900101-1234568"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


@dataclass
class Served:
    url: str
    out: Path
    env: dict[str, str]

    def lines(self) -> list[dict[str, Any]]:
        """Every line of stdout, each a JSON object (else the test fails here)."""
        text = self.out.read_text(encoding="utf-8", errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKYARD_", "OTEL_"))}
    return guarded({**env, "DOCKYARD_DATA_DIR": str(tmp_path / "data"), **extra})


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> Served:
        port = free_port()
        out, err = tmp_path / f"stdout-{port}.log", tmp_path / f"stderr-{port}.log"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dockyard",
                    "serve",
                    "-c",
                    str(PROJECT),
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=o,
                stderr=e,
                cwd=tmp_path,
            )
        procs.append(proc)
        wait_ready(proc, f"http://127.0.0.1:{port}", err)
        return Served(f"http://127.0.0.1:{port}", out, env)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


def _make_key(env: dict[str, str]) -> dict[str, Any]:
    args = ["keys", "create", "--tenant", "acme", "--json", "-c", str(PROJECT)]
    made = subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        env=env,
        capture_output=True,
        check=True,
    )
    return dict(json.loads(made.stdout.decode().strip().splitlines()[-1]))


def _ask(text: str) -> dict[str, Any]:
    return {"assistant_id": "support", "input": {"messages": [{"role": "user", "content": text}]}}


async def test_json_lines_with_request_and_run_fields(serve: Any, tmp_path: Path) -> None:
    env = _env(tmp_path, DOCKYARD_AUTH__REQUIRED="true")
    made = _make_key(env)
    key = made["key"]
    server = serve(env)
    auth = {"x-api-key": key}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        refused = await http.get("/threads/search")
        assert refused.status_code == 401
        generated = refused.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)

        thread = (await http.post("/threads", json={}, headers=auth)).json()["thread_id"]
        ok = await http.post(
            f"/threads/{thread}/runs/wait",
            json=_ask(f"I am {EMAIL}, RRN {RRN}"),
            headers={**auth, "X-Request-Id": "client-req-1"},
        )
        assert ok.status_code == 200 and ok.headers["x-request-id"] == "client-req-1"
        (run,) = (await http.get(f"/threads/{thread}/runs", headers=auth)).json()
        assert "origin" not in run["kwargs"]  # dockyard's own, not part of the run's shape

        # A stream keeps a valid id; a client's id that is not plain is replaced.
        async with http.stream(
            "POST",
            "/runs/stream",
            json=_ask("hello"),
            headers={**auth, "X-Request-Id": "bad id\twith spaces"},
        ) as stream:
            replaced = stream.headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", replaced)
            async for _ in stream.aiter_bytes():
                pass

        failing = await http.post(
            f"/threads/{thread}/runs",
            json=_ask(f"fail {EMAIL}"),
            headers={**auth, "X-Request-Id": "client-req-2"},
        )
        failed_run = failing.json()["run_id"]
        await http.get(f"/threads/{thread}/runs/{failed_run}/join", headers=auth)

    def failure_logged() -> list[dict[str, Any]]:
        return [x for x in server.lines() if "failed: ValueError" in x["event"]]

    (failure,) = await eventually(failure_logged)
    lines = server.lines()
    by_request = {x.get("request_id") for x in lines if x["event"] == "request"}
    assert {generated, "client-req-1", replaced, "client-req-2"} <= by_request
    (access,) = [x for x in lines if x["event"] == "request" and x["request_id"] == generated]
    assert access["status"] == 401 and access["method"] == "GET"

    run_fields = {
        "request_id": "client-req-1",
        "run_id": run["run_id"],
        "thread_id": thread,
        "assistant": run["assistant_id"],
        "tenant": "acme",
    }
    stdlib_line = next(x for x in lines if x.get("logger") == "support_agent")
    structlog_line = next(x for x in lines if x["event"] == "lookup")
    for line in (stdlib_line, structlog_line):
        assert {k: line.get(k) for k in run_fields} == run_fields, line
        assert line["level"] in ("info", "warning") and line["timestamp"].endswith("Z")
    assert stdlib_line["event"] == "looking up I am [REDACTED_EMAIL], RRN [REDACTED_KR_RRN]"
    assert structlog_line["customer"] == "I am [REDACTED_EMAIL], RRN [REDACTED_KR_RRN]"
    assert failure["request_id"] == "client-req-2" and failure["run_id"] == failed_run
    assert failure["tenant"] == "acme" and "[REDACTED_EMAIL]" in failure["event"]

    text = server.out.read_text()
    for secret in (EMAIL, RRN, key, hashlib.sha256(key.encode()).hexdigest()):
        assert secret not in text, secret


def _tree(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    out: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        out.setdefault(span.name, []).append(span)
    return out


async def test_spans_of_one_run_reach_an_otlp_receiver(serve: Any, tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        # The standard variable, read through the settings; a short batch delay.
        env = _env(
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            OTEL_SERVICE_NAME="support-e2e",
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
        server = serve(env)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            ok = await http.post(
                "/runs/wait",
                json=_ask("who am I?"),
                headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"},
            )
            assert ok.status_code == 200
            run_lines = [x for x in server.lines() if x["event"] == "lookup"]
            assert [x["trace_id"] for x in run_lines] == [TRACE_ID]  # a run line, its trace
            # Logged once the answer is sent: maybe after the client has it.
            (access,) = await eventually(
                lambda: [x for x in server.lines() if x.get("route") == "/runs/wait"]
            )
            assert access["trace_id"] == TRACE_ID

        def whole_run() -> list[ReceivedSpan]:
            spans = [s for s in receiver.received() if s.trace_id == TRACE_ID]
            names = {s.name for s in spans}
            done = {"POST /runs/wait", "invoke_agent support", "execute_tool lookup"}
            return spans if done <= names else []

        spans = await eventually(whole_run, timeout=20)
    tree = _tree(spans)
    (request,) = tree["POST /runs/wait"]
    assert request.parent_span_id == CLIENT_SPAN  # the client's trace continues
    assert request.kind == 2  # SPAN_KIND_SERVER
    assert request.attributes["http.response.status_code"] == 200
    assert request.resource["service.name"] == "support-e2e"
    (run,) = tree["invoke_agent support"]
    assert run.parent_span_id == request.span_id
    assert run.attributes["dockyard.run.status"] == "success"
    nodes = tree["node model"] + tree["node tools"]
    assert len(nodes) == 3 and {n.parent_span_id for n in nodes} == {run.span_id}
    chats = tree["chat fake"]
    assert {c.parent_span_id for c in chats} == {n.span_id for n in tree["node model"]}
    for chat in chats:
        assert chat.attributes["gen_ai.request.model"] == "fake"
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.cost"] > 0  # priced by policies.prices
    (tool,) = tree["execute_tool lookup"]
    assert tool.parent_span_id == tree["node tools"][0].span_id
    assert tool.attributes["gen_ai.tool.name"] == "lookup"
    assert run.attributes["gen_ai.usage.cost"] == pytest.approx(
        sum(c.attributes["gen_ai.usage.cost"] for c in chats)
    )
