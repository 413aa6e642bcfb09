"""Threads whose ttl has passed, handled periodically by their ttl's strategy:
``delete`` removes the thread with its runs and checkpoints; ``keep_latest`` keeps the
thread and its newest checkpoint, removes the older ones, and starts the ttl again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from dockyard.runtime.components import PeriodicTask
from dockyard.runtime.service import RunService

log = logging.getLogger("dockyard.sweeper")


class ThreadSweeper(PeriodicTask):
    def __init__(self, service: RunService, interval_seconds: float, limit: int = 1000) -> None:
        super().__init__(
            "dockyard-thread-sweeper",
            self._sweep,
            interval_seconds,
            log=log,
            failed="thread sweep failed; retrying next interval",
        )
        self.service = service
        self.limit = limit  # threads handled per pass; the rest wait for the next one

    async def sweep_once(self) -> int:
        """Handle every expired thread now (up to ``limit``); returns how many were."""
        storage = self.service.storage
        handled = 0
        seen: set[str] = set()
        while handled < self.limit:
            now = datetime.now(UTC)
            batch = [t for t in await storage.threads.expired(now, limit=100) if t not in seen]
            if not batch:
                return handled
            for thread_id in batch[: self.limit - handled]:
                seen.add(thread_id)
                thread = await storage.threads.get(thread_id)
                if thread is None:
                    continue
                ttl = thread["ttl"] or {}
                if ttl.get("strategy", "delete") == "delete":
                    await self.service.delete_thread(thread_id)
                elif thread["status"] == "busy":
                    continue  # its run is writing checkpoints: the next pass prunes
                else:
                    await storage.checkpoint_admin.keep_latest(thread_id)
                    minutes = float(ttl.get("ttl") or 0)
                    again = now + timedelta(minutes=minutes) if minutes else None
                    await storage.threads.set_expiry(thread_id, again)
                handled += 1
        return handled

    async def _sweep(self) -> None:
        if n := await self.sweep_once():
            log.info("swept %d expired thread(s)", n)
