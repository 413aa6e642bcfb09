"""Rollouts as a component of a process (docs/rollouts.md).

Every process keeps the rollouts' board fresh (one small read a second), which the run
service's admission consults for each new run; the config file's rollouts are put in the
database at start. The process holding the ``rollouts`` lease also runs the rollback
check every ``rollback.check_seconds`` (the shortest of the active rollouts').

The check reads how candidate runs ended from ``run_outcomes``: with alerts enabled their
recorder writes every run's outcome; without, this component's own recorder writes those
of runs a rollout assigned, and prunes them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from dockyard.rollouts import RollbackCheck, RolloutBoard, sync_config
from dockyard.runtime.alerting import OutcomeRecorder, alert_store, notifiers
from dockyard.runtime.components import PeriodicTask
from dockyard.runtime.observers import Outcome
from dockyard.runtime.usage import Usage
from dockyard.settings import RolloutConfig, Settings
from dockyard.storage.base import Run
from dockyard.storage.database import Storage
from dockyard.variants import rollout_of

log = logging.getLogger("dockyard.rollouts")

REFRESH_SECONDS = 1.0
# Outcomes kept when this component prunes them: twice the longest window allowed.
_KEEP = timedelta(hours=2)


class RolloutOutcomes(OutcomeRecorder):
    """Outcomes of the runs a rollout assigned (alerts off: nobody records the others)."""

    def on_ended(self, run: Run, outcome: Outcome, usage: Usage) -> None:
        if rollout_of(run["metadata"]) is not None:
            super().on_ended(run, outcome, usage)


class RolloutTask(PeriodicTask):
    def __init__(
        self, settings: Settings, storage: Storage, *, refresh_seconds: float = REFRESH_SECONDS
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.board = RolloutBoard(storage.rollouts)
        alerts = alert_store(storage.engine)
        self.check = RollbackCheck(
            storage.rollouts,
            alerts,
            notifiers(settings),
            lease_seconds=max(30.0, 3 * refresh_seconds),
        )
        # Alerts on: their recorder writes every outcome (open_runtime adds it).
        self.recorder = (
            None if settings.observability.alerts.enabled else RolloutOutcomes(alerts, batch=50)
        )
        self._next_check = 0.0
        super().__init__(
            "dockyard-rollouts",
            self._tick,
            refresh_seconds,
            log=log,
            failed="rollout refresh or check failed; retrying next interval",
        )

    async def start(self) -> None:
        started = await sync_config(self.settings, self.storage.rollouts)
        if started:
            log.info("rollouts started from the config: %s", ", ".join(started))
        await self.board.refresh()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        try:
            if self.recorder is not None:
                await self.recorder.close()
            await self.check.release()
        except Exception as e:  # storage gone: the lease runs out by itself
            log.warning("rollout outcomes not written or lease not released: %s", e)

    async def _tick(self) -> None:
        if self.recorder is not None:
            await self.recorder.flush()
        await self.board.refresh()
        active = self.board.active()
        if not active:
            return
        now = datetime.now(UTC).timestamp()
        if now < self._next_check:
            return
        every = min(
            RolloutConfig.model_validate(r.definition).rollback.check_seconds for r in active
        )
        self._next_check = now + every
        # Renewed once per check: it must outlast the interval.
        self.check.lease_seconds = max(30.0, 3 * every)
        rolled = await self.check.tick(active)
        if rolled:
            await self.board.refresh()
        if self.recorder is not None and self.check.holding:
            await self.check.alerts.prune(datetime.now(UTC) - _KEEP)
