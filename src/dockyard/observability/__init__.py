"""Observability: Prometheus metrics, structlog JSON logs, OpenTelemetry traces, alerts.

One module per concern (docs/observability.md). Observation plugs into the seams the run
path already has (ASGI middleware, run observers, a LangChain callback handler); it never
adds a branch to the run path.
"""
