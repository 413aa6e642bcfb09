"""``dockyard worker``: a process that only executes runs, beside API-only servers.

It opens the same runtime as the API server (see ``runtime.process``) with the
executor on and no HTTP. SIGTERM or SIGINT drains it: no new claims, running
runs get ``runs.drain_seconds`` to finish, the rest go back to the queue for
another worker (which resumes them from their last checkpoint).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from dockyard.policies.pii import install_log_redaction
from dockyard.runtime.graphs import load_registry
from dockyard.runtime.process import open_runtime, require_shared_layout
from dockyard.runtime.shapes import run_out
from dockyard.settings import Settings

log = logging.getLogger("dockyard.worker")


async def run_worker(settings: Settings, ready: asyncio.Event | None = None) -> None:
    install_log_redaction(settings.policies.pii)  # before anything logs
    require_shared_layout(settings, "dockyard worker")
    registry = load_registry(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings, registry, execute=True, run_view=run_out) as rt:
        assert rt.executor is not None
        log.info(
            "worker %s: executing %s (up to %d runs at once)",
            rt.executor.worker_id,
            ", ".join(registry.names) or "no graphs",
            settings.runs.max_concurrency,
        )
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("worker %s: draining", rt.executor.worker_id)
