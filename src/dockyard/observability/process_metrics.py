"""How a process takes up metrics: which registry, what it subscribes, what it counts.

``dockyard serve`` and ``dockyard worker`` decide the multiprocess directory before any
process builds its app or runtime (``multiprocess_dir_for``); ``install`` then makes the
metrics (once per process) and subscribes to the policy events.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from dockyard.observability import metrics as _metrics
from dockyard.observability import policy_metrics
from dockyard.observability.exposition import count_rows
from dockyard.observability.metrics import Metrics
from dockyard.settings import Settings
from dockyard.storage.common import Storage

log = logging.getLogger("dockyard.metrics")


def shares_runs(settings: Settings) -> bool:
    """Processes share runs (PostgreSQL + Redis): a worker may count what an API serves."""
    pg = (settings.database_url or "").startswith(("postgresql", "postgres"))
    return pg and bool(settings.redis_url)


def multiprocess_dir_for(settings: Settings, *, processes: int = 1) -> Path | None:
    """The directory of the multiprocess mode, or None for a registry of the process's own:
    the setting, else ``<data_dir>/metrics`` when several processes may serve one
    deployment on this host (``processes`` > 1, or runs shared through PostgreSQL)."""
    config = settings.observability.metrics
    if not config.enabled:
        return None
    if config.multiprocess_dir is not None:
        return config.multiprocess_dir
    if processes > 1 or shares_runs(settings):
        return settings.data_dir / "metrics"
    return None


def install(settings: Settings) -> Metrics | None:
    """This process's metrics (None: ``observability.metrics.enabled`` is false)."""
    config = settings.observability.metrics
    if not config.enabled:
        return None
    metrics = _metrics.install(config.multiprocess_dir)
    if metrics.multiprocess_dir != config.multiprocess_dir:
        log.warning(
            "metrics: this process already keeps its metrics %s; %s is not used",
            metrics.multiprocess_dir or "in its own registry",
            config.multiprocess_dir or "a registry of its own",
        )
    policy_metrics.install(metrics)
    return metrics


async def scraped_counts(storage: Storage | None) -> Mapping[str, float] | None:
    """The gauges counted in storage; None (left out of the scrape) when it cannot answer."""
    if storage is None:
        return None
    try:
        return await count_rows(storage)
    except Exception as e:  # a scrape must not fail with the database
        log.warning("metrics: queue depth and active runs not counted: %s: %s", type(e).__name__, e)
        return None
