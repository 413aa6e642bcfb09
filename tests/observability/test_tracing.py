"""The span tree of one run, as a unit: the run observer and its callback handler on a
real ``create_agent`` loop (a model call, a tool call, a model call), exported to the
SDK's in-memory exporter; the request middleware; what is there with tracing off."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from dockyard.observability.http_tracing import TraceRequests
from dockyard.observability.origin import capture
from dockyard.observability.request_id import RequestId
from dockyard.observability.run_tracing import RunTracer, SpanHandler
from dockyard.observability.tracing import make_tracer, tracer_for
from dockyard.policies.prices import PriceTable
from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec
from dockyard.runtime.observers import Outcome
from dockyard.runtime.usage import Usage, UsageTally
from dockyard.settings import ModelPrice, Settings, TracesConfig

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"


class WeatherModel(FakeChatModelBase):
    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content=f"It is {messages[-1].text} in Paris.")
        call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call-1"}
        return AIMessage(content="Let me check.", tool_calls=[call])


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


def _run(origin: dict[str, str] | None) -> Any:
    kwargs: dict[str, Any] = {"input": None}
    if origin is not None:
        kwargs["origin"] = origin
    return {
        "run_id": "run-1",
        "thread_id": "thread-1",
        "assistant_id": "asst-1",
        "attempts": 1,
        "metadata": {"dockyard_tenant": "acme", "dockyard_key_id": "k1"},
        "kwargs": kwargs,
    }


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        out.setdefault(span.name, []).append(span)
    return out


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_the_span_tree_of_one_run(exporter: InMemorySpanExporter) -> None:
    tracer = make_tracer(TracesConfig(), exporter, batch=False)
    observer = RunTracer(tracer)
    usage = Usage()
    prices = PriceTable.from_config({"fake": ModelPrice(input=1.0, output=2.0)})
    run = _run({"request_id": "req-1", "traceparent": TRACEPARENT})
    callbacks = [UsageTally(usage, prices), *observer.run_callbacks(run, usage)]
    graph = create_agent(WeatherModel(), tools=[get_weather])
    await graph.ainvoke(
        {"messages": [("user", "weather in Paris?")]},
        # As the run attempt builds it: the run's id (a string) is the graph's.
        {
            "callbacks": callbacks,
            "metadata": {"graph_id": "weather"},
            "run_id": "1f0c0000-0000-0000-0000-000000000001",
        },
    )
    observer.on_ended(run, Outcome("success", None, None), usage)

    spans = _by_name(exporter.get_finished_spans())
    (root,) = spans["invoke_agent weather"]
    assert f"{root.context.trace_id:032x}" == TRACE_ID  # the client's trace continues
    assert _parent_id(root) == int(CLIENT_SPAN, 16)
    assert root.attributes is not None
    assert root.attributes["dockyard.run_id"] == "run-1"
    assert root.attributes["dockyard.thread_id"] == "thread-1"
    assert root.attributes["dockyard.tenant"] == "acme"
    assert root.attributes["dockyard.request_id"] == "req-1"
    assert root.attributes["dockyard.run.status"] == "success"
    assert "k1" not in str(dict(root.attributes))  # no key id on a span

    model_nodes, tool_nodes = spans["node model"], spans["node tools"]
    assert len(model_nodes) == 2 and len(tool_nodes) == 1
    for node in (*model_nodes, *tool_nodes):
        assert _parent_id(node) == root.context.span_id
    chats = spans["chat fake"]
    assert len(chats) == 2
    assert {_parent_id(c) for c in chats} == {n.context.span_id for n in model_nodes}
    first = min(chats, key=lambda s: s.start_time or 0)
    attrs = dict(first.attributes or {})
    assert first.kind is SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "fake"
    assert attrs["gen_ai.response.model"] == "fake"
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    call = usage.calls[0]
    assert attrs["gen_ai.usage.input_tokens"] == call.input_tokens > 0
    assert attrs["gen_ai.usage.output_tokens"] == call.output_tokens > 0
    assert attrs["gen_ai.usage.cost"] == pytest.approx(call.cost_usd)
    assert call.cost_usd is not None and call.cost_usd > 0
    (tool_span,) = spans["execute_tool get_weather"]
    assert _parent_id(tool_span) == tool_nodes[0].context.span_id
    assert tool_span.attributes is not None
    assert tool_span.attributes["gen_ai.tool.name"] == "get_weather"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call-1"
    assert root.attributes["gen_ai.usage.cost"] == pytest.approx(usage.cost_usd)
    assert all(s.context.trace_id == root.context.trace_id for s in exporter.get_finished_spans())


def test_an_unsampled_run_gets_no_span_handler(exporter: InMemorySpanExporter) -> None:
    # A client's traceparent that says "not sampled" (flags 00) is followed; with nothing
    # to record below the run, no callback handler is added to the graph's config.
    tracer = make_tracer(TracesConfig(), exporter, batch=False)
    observer = RunTracer(tracer)
    usage = Usage()
    unsampled = TRACEPARENT[:-2] + "00"
    run = _run({"request_id": "req-1", "traceparent": unsampled})
    assert observer.run_callbacks(run, usage) == ()
    observer.on_ended(run, Outcome("success", None, None), usage)
    assert exporter.get_finished_spans() == ()
    # Sampled: a handler, and the run's span once it ends.
    run = _run({"request_id": "req-2", "traceparent": TRACEPARENT})
    assert len(observer.run_callbacks(run, usage)) == 1
    observer.on_ended(run, Outcome("success", None, None), usage)
    assert [s.name for s in exporter.get_finished_spans()] == ["invoke_agent"]


async def test_a_failing_tool_marks_its_span_and_the_run(exporter: InMemorySpanExporter) -> None:
    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        raise RuntimeError("station offline")

    tracer = make_tracer(TracesConfig(), exporter, batch=False)
    observer = RunTracer(tracer)
    usage = Usage()
    run = _run(None)
    graph = create_agent(WeatherModel(), tools=[get_weather])
    with pytest.raises(RuntimeError):
        await graph.ainvoke(
            {"messages": [("user", "weather?")]},
            {"callbacks": [UsageTally(usage), *observer.run_callbacks(run, usage)]},
        )
    error = {"error": "RuntimeError", "message": "station offline"}
    observer.on_ended(run, Outcome("error", error, None), usage)
    spans = _by_name(exporter.get_finished_spans())
    (root,) = spans["invoke_agent"]
    assert root.parent is None  # a run of no request starts its own trace
    assert root.status.status_code is StatusCode.ERROR
    (tool_span,) = spans["execute_tool get_weather"]
    assert tool_span.status.status_code is StatusCode.ERROR
    assert tool_span.attributes is not None
    assert tool_span.attributes["error.type"] == "RuntimeError"


async def test_the_request_span_is_the_runs_parent(exporter: InMemorySpanExporter) -> None:
    tracer = make_tracer(TracesConfig(), exporter, batch=False)
    seen: dict[str, Any] = {}

    async def create_run(request: Any) -> JSONResponse:
        seen["origin"] = capture()  # what the run service stores with a run
        return JSONResponse({"ok": True}, status_code=201)

    app = Starlette(routes=[Route("/threads/{thread_id}/runs", create_run, methods=["POST"])])
    asgi = TraceRequests(RequestId(app, log_requests=False), tracer=tracer)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="http://t"
    ) as client:
        answer = await client.post(
            "/threads/t-1/runs", headers={"traceparent": TRACEPARENT, "x-request-id": "r-7"}
        )
    assert answer.status_code == 201 and answer.headers["x-request-id"] == "r-7"
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /threads/{thread_id}/runs" and span.kind is SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert _parent_id(span) == int(CLIENT_SPAN, 16)
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 201
    assert span.attributes["http.route"] == "/threads/{thread_id}/runs"
    assert span.attributes["dockyard.request_id"] == "r-7"
    origin = seen["origin"]
    assert origin["request_id"] == "r-7"
    assert origin["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"


def test_off_without_an_endpoint() -> None:
    settings = Settings()
    assert settings.observability.traces.endpoint is None
    assert tracer_for(settings) is None
    assert capture() is None  # outside a request, no span: a run carries nothing


def test_the_otel_variables_are_read_through_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "support-agents")
    traces = Settings().observability.traces
    assert traces.endpoint == "http://collector:4318" and traces.exporting
    assert traces.service_name == "support-agents"
    # dockyard's own setting wins over the standard variable.
    mine = TracesConfig(endpoint="http://mine:4318", service_name="x")
    assert mine.endpoint == "http://mine:4318" and mine.service_name == "x"
    assert not TracesConfig(enabled=False).exporting
    with pytest.raises(ValueError, match="gRPC is not supported"):
        TracesConfig(endpoint="collector:4317")


def test_an_endpoint_without_the_extra_stops_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from dockyard.errors import ConfigError
    from dockyard.observability.tracing import check_tracing

    settings = Settings(observability={"traces": {"endpoint": "http://collector:4318"}})
    check_tracing(settings)  # installed here (dev has every extra)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # as if not installed
    with pytest.raises(ConfigError) as caught:
        check_tracing(settings)
    assert 'pip install "dockyard[otel]"' in caught.value.message
    assert "observability.traces.endpoint" in caught.value.message
    check_tracing(Settings())  # no endpoint: nothing needed


def test_nothing_traces_a_run_without_an_endpoint(tmp_path: Any) -> None:
    """Tracing off: no run observer, no callback handler on a run, no request middleware."""
    from tests.conftest import LiveServer

    server = LiveServer(tmp_path).start()
    try:
        observers = server.app.state.runtime.runs.ctx.observers
        assert not any(isinstance(o, RunTracer) for o in observers)
        handlers = server.app.state.runtime.runs.ctx.notify.callbacks(_run(None), Usage())
        assert not any(isinstance(h, SpanHandler) for h in handlers)
        assert not any(m.cls is TraceRequests for m in server.app.user_middleware)
        assert any(m.cls is RequestId for m in server.app.user_middleware)
    finally:
        server.stop()
