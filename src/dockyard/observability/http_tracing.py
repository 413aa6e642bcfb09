"""The HTTP server span of each request, continuing the client's W3C ``traceparent``.

The span is the current one while the request is served, so a run the request creates
stores it as its parent (observability/origin.py) and the run's spans hang below it,
in this process or in a worker. Its name is the route template (``POST
/threads/{thread_id}/runs/stream``); the path, its query and the headers are not
recorded (they may carry personal data or a key). The request's log lines get its
``trace_id``.
"""

from __future__ import annotations

import structlog
from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.observability.request_id import HEADER as REQUEST_ID_HEADER
from dockyard.observability.request_id import route_of

_W3C = TraceContextTextMapPropagator()
_TRACE_HEADERS = (b"traceparent", b"tracestate")


class TraceRequests:
    def __init__(self, app: ASGIApp, *, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADERS
        }
        parent = _W3C.extract(carrier) if carrier else None
        method: str = scope["method"]
        span = self.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.scheme": scope.get("scheme", "http"),
                "network.protocol.version": scope.get("http_version", "1.1"),
            },
        )
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The id the request middleware (inside this one) gave the answer.
                for name, value in message.get("headers", ()):
                    if name == REQUEST_ID_HEADER:
                        span.set_attribute("dockyard.request_id", value.decode("latin-1"))
            await send(message)

        token = context.attach(trace.set_span_in_context(span))
        trace_id = span.get_span_context().trace_id
        try:
            with structlog.contextvars.bound_contextvars(trace_id=f"{trace_id:032x}"):
                await self.app(scope, receive, send_status)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
            status = status or 500
            raise
        finally:
            context.detach(token)
            route = route_of(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            if status:
                span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
