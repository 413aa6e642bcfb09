"""Samples and summary statistics for the Agent Server benchmark (pure, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Sample:
    """One run as seen by one client. Times in seconds.

    ``start``/``end`` are wall-clock (``time.time()``) so samples from several processes can be
    merged; durations are measured with ``time.perf_counter()``.
    """

    start: float
    end: float
    latency: float
    first_event: float | None = None  # request start -> first StreamPart (``metadata``)
    first_data: float | None = None  # request start -> first non-``metadata`` StreamPart
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_tuple(self) -> tuple[float, float, float, float | None, float | None, str | None]:
        return (self.start, self.end, self.latency, self.first_event, self.first_data, self.error)


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        return cls(percentile(values, 50), percentile(values, 95), percentile(values, 99))


@dataclass(frozen=True, slots=True)
class Summary:
    runs: int  # measured runs (ok + errors)
    ok: int
    errors: int
    wall: float  # seconds of the measured phase
    runs_per_s: float  # ok runs / wall
    latency: Percentiles
    latency_mean: float | None
    latency_max: float | None
    first_event: Percentiles
    first_data: Percentiles
    first_error: str | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation (numpy's default method).

    Returns ``None`` for an empty sequence.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _error_kind(message: str) -> str:
    return message.split(":", 1)[0].strip() or "error"


def summarize(samples: Iterable[Sample], measure_start: float, min_wall: float = 0.0) -> Summary:
    """Summarize the measured samples.

    The measured phase runs from ``measure_start`` to the end of the last measured run (at least
    ``min_wall`` seconds). Latency percentiles are over successful runs only; first-event
    percentiles over successful runs that reported one (stream runs).
    """
    items = list(samples)
    good = [s for s in items if s.ok]
    bad = [s for s in items if not s.ok]
    last_end = max((s.end for s in items), default=measure_start)
    wall = max(last_end - measure_start, min_wall)
    latencies = [s.latency for s in good]
    kinds: dict[str, int] = {}
    for s in bad:
        kind = _error_kind(s.error or "")
        kinds[kind] = kinds.get(kind, 0) + 1
    first_error = min(bad, key=lambda s: s.start).error if bad else None
    return Summary(
        runs=len(items),
        ok=len(good),
        errors=len(bad),
        wall=wall,
        runs_per_s=len(good) / wall if wall > 0 else 0.0,
        latency=Percentiles.of(latencies),
        latency_mean=sum(latencies) / len(latencies) if latencies else None,
        latency_max=max(latencies) if latencies else None,
        first_event=Percentiles.of([s.first_event for s in good if s.first_event is not None]),
        first_data=Percentiles.of([s.first_data for s in good if s.first_data is not None]),
        first_error=first_error,
        error_kinds=kinds,
    )


def fmt_ms(seconds: float | None) -> str:
    """Seconds -> milliseconds text (``-`` when unknown)."""
    if seconds is None:
        return "-"
    ms = seconds * 1000.0
    return f"{ms:.0f}" if ms >= 10 else f"{ms:.1f}"


def fmt_triple(p: Percentiles) -> str:
    """``p50 / p95 / p99`` in ms, or ``-``."""
    if p.p50 is None:
        return "-"
    return f"{fmt_ms(p.p50)} / {fmt_ms(p.p95)} / {fmt_ms(p.p99)}"
