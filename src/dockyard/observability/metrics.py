"""Every metric dockyard exports, by its one name (docs/observability.md, "Metrics").

The metric objects are made once per process by ``install``, after the process has
chosen between its own registry and prometheus-client's multiprocess mode (a directory
of memory-mapped files that every process on the host writes and ``/metrics`` sums):
prometheus-client picks the value class when a metric is made, so nothing may make one
earlier. Until then ``current()`` is None and whatever would observe does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from dockyard import __version__
from dockyard.observability import metrics_dir

RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
MODEL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
RATIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
QUALITY_BUCKETS = (0.4, 0.6, 0.7, 0.8, 0.9, 1.0)

# Breaker state as a number: a graph of it reads "higher is worse".
BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}

# Computed from storage when /metrics is scraped (a count of rows, right across processes),
# never kept by a process: name -> help.
SCRAPED = {
    "dockyard_run_queue_depth": "Runs pending (queued, not yet started).",
    "dockyard_runs_active": "Runs running now.",
    "dockyard_interrupts_waiting": "Threads interrupted, waiting for a human to resume them.",
}


@dataclass
class Metrics:
    """The metric objects of one process."""

    registry: CollectorRegistry | None
    multiprocess_dir: Path | None
    # Context window per model name (input tokens), where known: for context_ratio.
    windows: dict[str, int] = field(default_factory=dict)
    http_requests: Counter = field(init=False)
    http_duration: Histogram = field(init=False)
    runs: Counter = field(init=False)
    run_duration: Histogram = field(init=False)
    queue_wait: Histogram = field(init=False)
    streams_open: Gauge = field(init=False)
    model_requests: Counter = field(init=False)
    model_duration: Histogram = field(init=False)
    model_ttft: Histogram = field(init=False)
    model_tokens: Counter = field(init=False)
    cost: Counter = field(init=False)
    model_retries: Counter = field(init=False)
    model_fallbacks: Counter = field(init=False)
    breaker_state: Gauge = field(init=False)
    context_ratio: Histogram = field(init=False)
    cache_requests: Counter = field(init=False)
    rate_limited: Counter = field(init=False)
    policy_refusals: Counter = field(init=False)
    budget_spent: Gauge = field(init=False)
    budget_limit: Gauge = field(init=False)
    budget_remaining: Gauge = field(init=False)
    tool_calls: Counter = field(init=False)
    tool_duration: Histogram = field(init=False)
    quality: Histogram = field(init=False)
    build_info: Gauge = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry

        def counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(name, doc, labels, registry=r)

        def hist(name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=r)

        def gauge(name: str, doc: str, labels: Sequence[str], mode: str) -> Gauge:
            # livesum/livemax: a dead process's value leaves the sum (metrics_dir sweeps).
            return Gauge(name, doc, labels, registry=r, multiprocess_mode=mode)  # type: ignore[arg-type]

        self.http_requests = counter(
            "dockyard_http_requests_total",
            "HTTP requests answered, by route template and status.",
            ("method", "route", "status"),
        )
        self.http_duration = hist(
            "dockyard_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of its body, streams included).",
            ("method", "route"),
            HTTP_BUCKETS,
        )
        self.runs = counter(
            "dockyard_runs_total",
            "Runs finished, by assistant, status and rollout variant.",
            ("assistant", "status", "variant"),
        )
        self.run_duration = hist(
            "dockyard_run_duration_seconds",
            "Time from a run's start to its end (its last attempt), by assistant and rollout "
            "variant.",
            ("assistant", "variant"),
            RUN_BUCKETS,
        )
        self.queue_wait = hist(
            "dockyard_run_queue_wait_seconds",
            "Time a run waited from its creation to its first start.",
            ("assistant",),
            RUN_BUCKETS,
        )
        self.streams_open = gauge(
            "dockyard_streams_open", "Run event streams (SSE) open to clients.", (), "livesum"
        )
        self.model_requests = counter(
            "dockyard_model_requests_total",
            "Model calls, by model and status.",
            ("model", "status"),
        )
        self.model_duration = hist(
            "dockyard_model_request_duration_seconds",
            "Model call latency.",
            ("model",),
            MODEL_BUCKETS,
        )
        self.model_ttft = hist(
            "dockyard_model_time_to_first_token_seconds",
            "Time to the first streamed token of a model call.",
            ("model",),
            MODEL_BUCKETS,
        )
        self.model_tokens = counter(
            "dockyard_model_tokens_total",
            "Tokens of model calls: input (cached included), output, cached input.",
            ("model", "kind"),
        )
        self.cost = counter(
            "dockyard_cost_usd_total",
            "Cost of model calls in USD (priced models only).",
            ("model", "tenant", "assistant"),
        )
        self.model_retries = counter(
            "dockyard_model_retries_total", "Model calls retried by the retry policy.", ("model",)
        )
        self.model_fallbacks = counter(
            "dockyard_model_fallbacks_total",
            "Model calls answered by a fallback model instead of the model asked.",
            ("model", "fallback"),
        )
        self.breaker_state = gauge(
            "dockyard_breaker_state",
            "Circuit breaker state per model: 0 closed, 1 half-open, 2 open.",
            ("model",),
            "livemax",
        )
        self.context_ratio = hist(
            "dockyard_context_window_ratio",
            "Prompt tokens over the model's context window (models whose window is known).",
            ("model",),
            RATIO_BUCKETS,
        )
        self.cache_requests = counter(
            "dockyard_cache_requests_total", "Response cache lookups, by result.", ("result",)
        )
        self.rate_limited = counter(
            "dockyard_rate_limited_total", "Requests refused by a rate limit, by limit.", ("limit",)
        )
        self.policy_refusals = counter(
            "dockyard_policy_refusals_total",
            "Requests or calls a policy refused, by code.",
            ("code",),
        )
        budget = ("scope", "owner", "period")
        self.budget_spent = gauge(
            "dockyard_budget_spent_usd", "Budget spent in the period, USD.", budget, "livemax"
        )
        self.budget_limit = gauge(
            "dockyard_budget_limit_usd", "Budget limit of the period, USD.", budget, "livemax"
        )
        self.budget_remaining = gauge(
            "dockyard_budget_remaining_usd", "Budget left in the period, USD.", budget, "livemin"
        )
        self.tool_calls = counter(
            "dockyard_tool_calls_total", "Tool calls, by tool and status.", ("tool", "status")
        )
        self.tool_duration = hist(
            "dockyard_tool_call_duration_seconds",
            "Tool call duration.",
            ("tool",),
            RUN_BUCKETS,
        )
        self.quality = hist(
            "dockyard_quality_score", "Quality scores of answers.", ("assistant",), QUALITY_BUCKETS
        )
        self.build_info = gauge(
            "dockyard_build_info",
            "The running dockyard's version (value 1).",
            ("version",),
            "livemax",
        )
        self.build_info.labels(__version__).set(1)

    @property
    def families(self) -> list[MetricWrapperBase]:
        return [v for v in vars(self).values() if isinstance(v, MetricWrapperBase)]


_current: Metrics | None = None


def install(multiprocess_dir: Path | None) -> Metrics:
    """Make this process's metrics, once: in ``multiprocess_dir`` (prometheus-client's
    multiprocess mode) or in a registry of the process's own. A second call returns the
    first's metrics (several apps in one process, as in tests, share them)."""
    global _current
    if _current is None:
        # ``*_created`` series: not kept in multiprocess mode, so kept in neither (one shape).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        if multiprocess_dir is not None:
            metrics_dir.use(multiprocess_dir)
            _current = Metrics(None, multiprocess_dir)
        else:
            _current = Metrics(CollectorRegistry(auto_describe=True), None)
    return _current


def current() -> Metrics | None:
    return _current
