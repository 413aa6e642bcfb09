"""Policy events (``dockyard.events``) into the metrics: cache, rate limits, retries,
fallbacks, breakers, refusals, budgets."""

from __future__ import annotations

from typing import Any

from dockyard import events
from dockyard.observability.metrics import BREAKER_STATES, Metrics


class PolicyMetrics:
    """An ``events`` subscriber; ``install`` subscribes this process's one."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def __call__(self, name: str, **f: Any) -> None:
        m = self.m
        if name == "cache":
            m.cache_requests.labels(f["result"]).inc()
        elif name == "rate_limited":
            m.rate_limited.labels(f["limit"]).inc()
        elif name == "retry":
            m.model_retries.labels(f["model"]).inc()
        elif name == "fallback":
            m.model_fallbacks.labels(f["model"], f["fallback"]).inc()
        elif name == "breaker":
            m.breaker_state.labels(f["model"]).set(BREAKER_STATES.get(f["state"], 0))
        elif name == "refused":
            m.policy_refusals.labels(f["code"]).inc()
        elif name == "budget":
            labels = (f["scope"], f["owner"], f["period"])
            spent, limit = float(f["spent"]), float(f["limit"])
            m.budget_spent.labels(*labels).set(spent)
            m.budget_limit.labels(*labels).set(limit)
            m.budget_remaining.labels(*labels).set(max(limit - spent, 0.0))


_installed: PolicyMetrics | None = None


def install(metrics: Metrics) -> None:
    """Subscribe once per process (several apps in one process share it)."""
    global _installed
    if _installed is None:
        _installed = PolicyMetrics(metrics)
        events.subscribe(_installed)
