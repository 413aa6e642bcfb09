"""Usage-ledger rows written in batches, off the request path.

A run's rows go with its outcome, in the same transaction. A gateway call has no run to
settle: its rows are handed to the process's ``LedgerWriter``, which writes what it was
given once ``delay_seconds`` have passed since the first unwritten row (one transaction for
all of them), so a call answers without waiting for the database, and a busy gateway writes
a few times a second instead of once per call. Stopping the process writes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from dockyard.storage.base import UsageRecord, UsageStore

log = logging.getLogger("dockyard.runtime.ledger")


class LedgerWriter:
    def __init__(
        self, usage: UsageStore, *, delay_seconds: float = 0.2, max_pending: int = 100_000
    ) -> None:
        self.usage = usage
        self.delay_seconds = delay_seconds
        # While the database cannot be written, rows wait (and are retried) up to this many.
        self.max_pending = max_pending
        self._rows: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, rows: Sequence[UsageRecord]) -> None:
        """Queue ``rows``; they are written within ``delay_seconds`` (or at stop)."""
        if not rows:
            return
        self._rows.extend(rows)
        if len(self._rows) > self.max_pending:
            dropped = len(self._rows) - self.max_pending
            del self._rows[:dropped]
            log.warning("usage ledger: %d row(s) dropped, the database is not keeping up", dropped)
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._rows)

    async def flush(self) -> None:
        """Write every queued row now (one transaction); on failure they stay queued."""
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            await self.usage.record(rows)
        except Exception as e:
            log.warning(
                "usage ledger: %d row(s) not written yet: %s: %s", len(rows), type(e).__name__, e
            )
            self._rows[:0] = rows

    async def _run(self) -> None:
        while not self._closing.is_set():
            await self._wake.wait()
            self._wake.clear()
            # Rows of the calls answered meanwhile go in the same transaction.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.delay_seconds)
            await self.flush()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dockyard-ledger-writer")

    async def stop(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()
