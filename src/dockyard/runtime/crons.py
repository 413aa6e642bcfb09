"""Fires due crons: each firing becomes a run, created as POST /threads/{id}/runs does.

Every process that runs a scheduler polls the same table; the store's claim
hands each firing to exactly one of them.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from dockyard.errors import ConflictError, DockyardError
from dockyard.run_spec import RunSpec
from dockyard.runtime.components import PeriodicTask
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


class CronScheduler(PeriodicTask):
    def __init__(self, service: RunService, interval_seconds: float) -> None:
        super().__init__(
            "dockyard-cron-scheduler",
            self._poll,
            interval_seconds,
            log=log,
            failed="cron poll failed; retrying next interval",
            immediately=True,
        )
        self.service = service

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
            spec = RunSpec.from_request(run_payload(cron))
            return await self.service.create(cron["thread_id"], spec, run_id=run_id)
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

    async def _poll(self) -> None:
        if runs := await self.fire_due():
            log.debug("started %d cron run(s)", len(runs))
