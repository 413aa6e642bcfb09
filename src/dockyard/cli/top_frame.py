"""The numbers of ``dockyard top`` (``cli/top.py``), from two scrapes of ``/metrics``.

Rates are the difference between two scrapes divided by the time between them, as
Prometheus's ``rate()`` does (a counter that went down was reset by a restart: its new
value is the increase); the p95 is interpolated within the histogram's buckets, as
``histogram_quantile()`` does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
ENDED = ("success", "error", "timeout")  # cancelled and interrupted runs are not failures
FAILED = ("error", "timeout")
BREAKER = {0: "closed", 1: "half-open", 2: "open"}


@dataclass(frozen=True)
class Scrape:
    """One ``/metrics`` page: series name -> labels -> value, taken at ``at`` (seconds)."""

    at: float
    series: dict[str, dict[Labels, float]]

    @classmethod
    def parse(cls, text: str, at: float) -> Scrape:
        series: dict[str, dict[Labels, float]] = defaultdict(dict)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                series[sample.name][frozenset(sample.labels.items())] = sample.value
        return cls(at, dict(series))

    def values(self, name: str) -> dict[Labels, float]:
        return self.series.get(name, {})


Where = Callable[[dict[str, str]], bool]


def _all(labels: dict[str, str]) -> bool:
    return True


def increases(before: Scrape, after: Scrape, name: str) -> dict[Labels, float]:
    """Each series' increase between the scrapes; a series that went down was reset."""
    old = before.values(name)
    out = {}
    for labels, value in after.values(name).items():
        previous = old.get(labels, 0.0)
        out[labels] = value - previous if value >= previous else value
    return out


def total(series: dict[Labels, float], where: Where = _all) -> float:
    return sum(v for labels, v in series.items() if where(dict(labels)))


def by(series: dict[Labels, float], label: str, where: Where = _all) -> dict[str, float]:
    """``sum by (label)``."""
    out: dict[str, float] = defaultdict(float)
    for labels, value in series.items():
        d = dict(labels)
        if label in d and where(d):
            out[d[label]] += value
    return dict(out)


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """``histogram_quantile``: ``buckets`` are (upper bound, cumulative count), +Inf last.
    None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][0] != math.inf or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for i, (le, count) in enumerate(ordered):
        if count >= rank:
            if le == math.inf:  # beyond the last bound: that bound is all we know
                return ordered[i - 1][0] if i > 0 else None
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return None  # pragma: no cover - the +Inf bucket holds every observation


def quantiles_by(
    q: float, bucket_increases: dict[Labels, float], label: str | None
) -> dict[str, float | None]:
    """The ``q`` quantile per value of ``label`` (all series together under "" for None)."""
    grouped: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for labels, count in bucket_increases.items():
        d = dict(labels)
        grouped[d.get(label, "") if label else ""][float(d["le"])] += count
    return {key: quantile(q, buckets.items()) for key, buckets in grouped.items()}


@dataclass(frozen=True)
class AssistantLine:
    name: str
    runs_per_s: float
    errors_per_s: float
    p95_s: float | None
    runs: float  # finished since the server started


@dataclass(frozen=True)
class ModelLine:
    name: str
    calls_per_s: float
    errors_per_s: float
    p95_s: float | None
    tokens_per_s: float
    breaker: str | None


@dataclass(frozen=True)
class Frame:
    """What ``dockyard top`` shows: rates over the ``seconds`` between two scrapes, and the
    gauges and totals of the second."""

    seconds: float
    requests_per_s: float
    runs_per_s: float  # finished, whatever their status
    errors_per_s: float
    error_ratio: float | None  # failed / ended runs between the scrapes
    run_p95_s: float | None
    tokens_per_s: float
    cost_usd: float  # since the server started
    cost_usd_per_hour: float
    cache_hit_ratio: float | None
    waiting_approvals: float
    queue_depth: float
    active_runs: float
    streams_open: float
    assistants: list[AssistantLine] = field(default_factory=list)
    models: list[ModelLine] = field(default_factory=list)


def frame(before: Scrape, after: Scrape) -> Frame:
    """Two scrapes of one server -> the numbers of one frame."""
    seconds = max(after.at - before.at, 1e-9)

    def rate(name: str) -> dict[Labels, float]:
        return {k: v / seconds for k, v in increases(before, after, name).items()}

    def gauge(name: str) -> float:
        return total(after.values(name))

    runs = rate("dockyard_runs_total")
    ended = total(runs, lambda d: d.get("status") in ENDED)
    failed = total(runs, lambda d: d.get("status") in FAILED)
    run_buckets = increases(before, after, "dockyard_run_duration_seconds_bucket")
    cache = rate("dockyard_cache_requests_total")
    lookups = total(cache)
    cost = rate("dockyard_cost_usd_total")
    tokens = rate("dockyard_model_tokens_total")
    token_kinds = ("input", "output")  # cached tokens are part of the input

    def counted(d: dict[str, str]) -> bool:
        return d.get("kind") in token_kinds

    run_p95 = quantiles_by(0.95, run_buckets, "assistant")
    finished = by(after.values("dockyard_runs_total"), "assistant")
    runs_by = by(runs, "assistant")
    failed_by = by(runs, "assistant", lambda d: d.get("status") in FAILED)
    assistants = [
        AssistantLine(
            name,
            runs_by.get(name, 0.0),
            failed_by.get(name, 0.0),
            run_p95.get(name),
            finished.get(name, 0.0),
        )
        for name in sorted(set(finished) | set(run_p95))
    ]
    calls = rate("dockyard_model_requests_total")
    calls_by = by(calls, "model")
    call_errors_by = by(calls, "model", lambda d: d.get("status") == "error")
    tokens_by = by(tokens, "model", counted)
    model_p95 = quantiles_by(
        0.95, increases(before, after, "dockyard_model_request_duration_seconds_bucket"), "model"
    )
    breakers = by(after.values("dockyard_breaker_state"), "model")
    names = set(by(after.values("dockyard_model_requests_total"), "model")) | set(breakers)
    models = [
        ModelLine(
            name,
            calls_by.get(name, 0.0),
            call_errors_by.get(name, 0.0),
            model_p95.get(name),
            tokens_by.get(name, 0.0),
            BREAKER.get(int(breakers[name]), "?") if name in breakers else None,
        )
        for name in sorted(names)
    ]
    return Frame(
        seconds=seconds,
        requests_per_s=total(rate("dockyard_http_requests_total")),
        runs_per_s=total(runs),
        errors_per_s=failed,
        error_ratio=failed / ended if ended else None,
        run_p95_s=quantiles_by(0.95, run_buckets, None).get(""),
        tokens_per_s=total(tokens, counted),
        cost_usd=total(after.values("dockyard_cost_usd_total")),
        cost_usd_per_hour=total(cost) * 3600,
        cache_hit_ratio=(
            total(cache, lambda d: d.get("result") == "hit") / lookups if lookups else None
        ),
        waiting_approvals=gauge("dockyard_interrupts_waiting"),
        queue_depth=gauge("dockyard_run_queue_depth"),
        active_runs=gauge("dockyard_runs_active"),
        streams_open=gauge("dockyard_streams_open"),
        assistants=assistants,
        models=models,
    )
