"""What ``/metrics`` answers: the process's metrics (or the host's, in multiprocess mode)
and the gauges counted in storage at the scrape.

Queue depth, active runs and interrupts waiting are counts of rows, not values a process
keeps: a run queued by one API process, run by a worker and resumed by another is counted
once, right, whichever process is scraped (every process reports the same value: sum
nothing, take ``max``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from dockyard.observability import metrics_dir
from dockyard.observability.metrics import SCRAPED, Metrics
from dockyard.storage import tables
from dockyard.storage.common import Storage

CONTENT_TYPE = CONTENT_TYPE_LATEST


async def count_rows(storage: Storage) -> dict[str, float]:
    """The scraped gauges' values: two indexed counts."""
    q = (
        sa.select(tables.runs.c.status, sa.func.count())
        .where(tables.runs.c.status.in_(("pending", "running")))
        .group_by(tables.runs.c.status)
    )
    async with storage.engine.connect() as conn:
        by_status = {status: n for status, n in (await conn.execute(q)).all()}
    interrupted = await storage.threads.count(status="interrupted")
    return {
        "dockyard_run_queue_depth": float(by_status.get("pending", 0)),
        "dockyard_runs_active": float(by_status.get("running", 0)),
        "dockyard_interrupts_waiting": float(interrupted),
    }


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def _scraped(counts: Mapping[str, float] | None) -> list[Metric]:
    out: list[Metric] = []
    for name, doc in SCRAPED.items():
        family = GaugeMetricFamily(name, doc)
        if counts is not None and name in counts:
            family.add_metric([], counts[name])
        out.append(family)
    return out


def render(metrics: Metrics, counts: Mapping[str, float] | None) -> bytes:
    """The Prometheus text exposition; ``counts``: the scraped gauges (None: no storage)."""
    registry = CollectorRegistry(auto_describe=False)
    if metrics.multiprocess_dir is not None:
        metrics_dir.sweep(metrics.multiprocess_dir)
        collector = MultiProcessCollector(None, str(metrics.multiprocess_dir))  # type: ignore[no-untyped-call]
        found = list(collector.collect())  # type: ignore[no-untyped-call]
        # A family no process has written yet is still listed (empty), as in one process:
        # rules and dashboards see every name from the first scrape.
        names = {f.name for f in found}
        for wrapper in metrics.families:
            for family in wrapper.describe():
                if family.name not in names:
                    found.append(family)
        registry.register(_Fixed(found))
    else:
        assert metrics.registry is not None
        registry.register(_Fixed(metrics.registry.collect()))
    registry.register(_Fixed(_scraped(counts)))
    return generate_latest(registry)
