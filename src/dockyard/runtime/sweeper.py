"""Deletes threads whose ttl has passed, periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from dockyard.runtime.service import RunService

log = logging.getLogger("dockyard.sweeper")


class ThreadSweeper:
    def __init__(self, service: RunService, interval_seconds: float) -> None:
        self.service = service
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> int:
        """Delete every expired thread now; returns how many went."""
        deleted = 0
        while True:
            expired = await self.service.storage.threads.expired(datetime.now(UTC), limit=100)
            if not expired:
                return deleted
            for thread_id in expired:
                await self.service.delete_thread(thread_id)
                deleted += 1

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if n := await self.sweep_once():
                    log.info("deleted %d expired thread(s)", n)
            except Exception:  # a storage hiccup must not end the sweeper
                log.exception("thread sweep failed; retrying next interval")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="dockyard-thread-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
