"""Fires due crons: each firing becomes a run, created as POST /threads/{id}/runs does.

Every process that runs a scheduler polls the same table; the store's claim
hands each firing to exactly one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from dockyard.errors import ConflictError, DockyardError
from dockyard.runtime.service import RunService
from dockyard.storage.base import Cron, Run

log = logging.getLogger("dockyard.crons")

BATCH = 100
_FIRING_NS = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")


def run_payload(cron: Cron) -> dict[str, Any]:
    """The run request one firing sends."""
    payload = dict(cron["payload"])
    payload["assistant_id"] = cron["assistant_id"]
    payload["metadata"] = dict(cron["metadata"])
    if cron["thread_id"] is None:
        payload["on_completion"] = cron["on_run_completed"] or "delete"
    return payload


class CronScheduler:
    def __init__(self, service: RunService, interval_seconds: float) -> None:
        self.service = service
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def fire_due(self, now: datetime | None = None) -> list[Run]:
        """Create a run for every cron due at ``now``; returns the runs created."""
        now = now or datetime.now(UTC)
        created: list[Run] = []
        while True:
            # The firings advance only after their runs exist (see CronStore.firing).
            async with self.service.storage.crons.firing(now, limit=BATCH) as due:
                for cron in due:
                    run = await self._fire(cron)
                    if run is not None:
                        created.append(run)
            if len(due) < BATCH:
                return created

    async def _fire(self, cron: Cron) -> Run | None:
        # One run id per (cron, slot): firing a slot again after a crash finds it taken.
        slot = cron["next_run_date"]
        run_id = str(
            uuid.uuid5(_FIRING_NS, f"{cron['cron_id']}@{slot.isoformat() if slot else ''}")
        )
        try:
            return await self.service.create(cron["thread_id"], run_payload(cron), run_id=run_id)
        except ConflictError as e:
            if e.code == "run_exists":
                log.info("cron %s: slot %s already fired", cron["cron_id"], slot)
                return None
            log.warning("cron %s: no run this time: %s", cron["cron_id"], e.message)
        except DockyardError as e:
            # The firing is spent (claimed) either way: a missing thread or
            # assistant, or a busy thread under 'reject', skips this slot only.
            log.warning("cron %s: no run this time: %s", cron["cron_id"], e.message)
        except Exception:
            log.exception("cron %s: creating its run failed", cron["cron_id"])
        return None

    async def _loop(self) -> None:
        while True:
            try:
                if runs := await self.fire_due():
                    log.debug("started %d cron run(s)", len(runs))
            except Exception:  # a storage hiccup must not end the scheduler
                log.exception("cron poll failed; retrying next interval")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="dockyard-cron-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
