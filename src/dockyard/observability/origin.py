"""Where a run was asked for: its request id and W3C trace context, carried with the run.

The run service stores ``capture()`` with a run it creates (``RunSpec.origin``, kept in
the run's ``kwargs`` and left out of the API's run shape), so that the run's log lines and
spans, in this process or in a ``dockyard worker``, continue the request that made it.
Outside a request (a cron firing) there is nothing to carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dockyard.observability.request_id import current_request_id

ORIGIN_KEY = "origin"
_W3C = TraceContextTextMapPropagator()


def capture() -> dict[str, str] | None:
    """The current request's id and the current span's ``traceparent`` (``tracestate``)."""
    out: dict[str, str] = {}
    if request_id := current_request_id():
        out["request_id"] = request_id
    if trace.get_current_span().get_span_context().is_valid:
        _W3C.inject(out)
    return out or None


def of_run(kwargs: Mapping[str, Any]) -> Mapping[str, str]:
    """A stored run's origin (empty for a run of no request)."""
    origin = kwargs.get(ORIGIN_KEY)
    return origin if isinstance(origin, Mapping) else {}


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``)."""
    if not traceparent or len(traceparent) < 35 or traceparent[2] != "-":
        return None
    return traceparent[3:35]


def parent_context(origin: Mapping[str, str]) -> Context | None:
    """The span context a run's span continues; None: the run starts a trace."""
    if "traceparent" not in origin:
        return None
    context = _W3C.extract(dict(origin))
    return context if trace.get_current_span(context).get_span_context().is_valid else None
