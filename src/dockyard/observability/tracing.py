"""OpenTelemetry: the process's tracer, exporting over OTLP/HTTP (protobuf), or nothing.

With no endpoint (``observability.traces.endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``)
there is no tracer at all: the SDK is not imported, the request middleware and the run
observer are not installed, and a run costs what it cost before. With one, the SDK and
its exporter (the ``otel`` extra) are loaded, and a missing extra stops the process at
start with the pip command that adds it.

One provider per process and endpoint, not made OpenTelemetry's global one: FastAPI
(0.165) traces every request itself, with the global provider, once one is set; dockyard's
own request span (observability/http_tracing.py) would then come twice. An application
that sets a global provider of its own gets FastAPI's spans besides dockyard's. Spans are
batched; the provider flushes them at exit.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Tracer

from dockyard import __version__
from dockyard.extras import require_extra
from dockyard.settings import Settings, TracesConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

TRACER_NAME = "dockyard"
_NEEDED_BY = "observability.traces.endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT)"
_lock = threading.Lock()
_tracers: dict[tuple[str, str, float], Tracer] = {}


def tracer_for(settings: Settings) -> Tracer | None:
    """This process's tracer for ``settings``; None when traces are not exported."""
    traces = settings.observability.traces
    if not traces.exporting:
        return None
    assert traces.endpoint is not None
    key = (traces.endpoint, traces.service_name, traces.sample_ratio)
    with _lock:
        tracer = _tracers.get(key)
        if tracer is None:
            tracer = _tracers[key] = make_tracer(traces, _otlp_exporter(traces.endpoint))
        return tracer


def check_tracing(settings: Settings) -> None:
    """Stop at start, with the fix, when traces are to be exported and cannot be."""
    if settings.observability.traces.exporting:
        require_extra("otel", _NEEDED_BY)


def _otlp_exporter(endpoint: str) -> SpanExporter:
    require_extra("otel", _NEEDED_BY)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


def make_tracer(traces: TracesConfig, exporter: SpanExporter, *, batch: bool = True) -> Tracer:
    """A tracer of a new SDK provider sending to ``exporter`` (tests pass an in-memory
    one, unbatched)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create(
            # process.pid: which process of a deployment (API or worker) made a span.
            {
                "service.name": traces.service_name,
                "service.version": __version__,
                "process.pid": os.getpid(),
            }
        ),
        sampler=ParentBased(TraceIdRatioBased(traces.sample_ratio)),
    )
    processor: Any = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider.get_tracer(TRACER_NAME, __version__)
