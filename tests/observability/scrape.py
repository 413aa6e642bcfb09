"""Read ``/metrics`` as Prometheus does (prometheus-client's own text parser)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# The fixed names of docs/observability.md ("Metrics"), with their types.
FAMILIES = {
    "dockyard_http_requests": "counter",
    "dockyard_http_request_duration_seconds": "histogram",
    "dockyard_runs": "counter",
    "dockyard_run_duration_seconds": "histogram",
    "dockyard_run_queue_depth": "gauge",
    "dockyard_run_queue_wait_seconds": "histogram",
    "dockyard_runs_active": "gauge",
    "dockyard_streams_open": "gauge",
    "dockyard_interrupts_waiting": "gauge",
    "dockyard_model_requests": "counter",
    "dockyard_model_request_duration_seconds": "histogram",
    "dockyard_model_time_to_first_token_seconds": "histogram",
    "dockyard_model_tokens": "counter",
    "dockyard_cost_usd": "counter",
    "dockyard_model_retries": "counter",
    "dockyard_model_fallbacks": "counter",
    "dockyard_breaker_state": "gauge",
    "dockyard_context_window_ratio": "histogram",
    "dockyard_cache_requests": "counter",
    "dockyard_rate_limited": "counter",
    "dockyard_policy_refusals": "counter",
    "dockyard_budget_spent_usd": "gauge",
    "dockyard_budget_limit_usd": "gauge",
    "dockyard_budget_remaining_usd": "gauge",
    "dockyard_tool_calls": "counter",
    "dockyard_tool_call_duration_seconds": "histogram",
    "dockyard_quality_score": "histogram",
    "dockyard_build_info": "gauge",
}


class Scrape:
    """One scrape: its families by name and its samples."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.types = {}
        self.samples: list[Sample] = []
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            self.samples.extend(family.samples)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named ``name`` whose labels include ``labels``."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self) -> set[str]:
        return {v for s in self.samples for v in s.labels.values()}


def scrape(url: str, headers: Mapping[str, str] | None = None) -> Scrape:
    r = httpx.get(f"{url}/metrics", headers=dict(headers or {}), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return Scrape(r.text)
