"""The alert evaluator as a component of a process (``observability.alerts.enabled``).

Every process with alerts enabled runs the periodic tick (only the lease holder
evaluates, so another takes over when it dies), writes how its runs ended (a run
observer, ``OutcomeRecorder``: the window rules read those) and takes the budget
policy's ``budget.threshold`` events of its own runs into the alert history, where the
evaluating process finds and sends them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from dockyard.observability.alerts import AlertEvaluator, Notifier, budget_alert, build
from dockyard.observability.alerts.rules import OpenBreakers
from dockyard.policies.budget import ThresholdEvent, on_threshold
from dockyard.policies.chain import ModelChain
from dockyard.runtime.components import PeriodicTask
from dockyard.runtime.graphs import GraphRegistry
from dockyard.runtime.observers import Outcome, RunObserver
from dockyard.runtime.usage import Usage
from dockyard.runtime.webhooks import signature_headers
from dockyard.settings import Settings
from dockyard.storage.alerts import AlertStore, EndedRun, NewAlert
from dockyard.storage.base import Run
from dockyard.storage.sql import Engine
from dockyard.storage.sql.alerts import SqlAlerts
from dockyard.variants import rollout_of

log = logging.getLogger("dockyard.alerts")


def notifiers(settings: Settings) -> list[Notifier]:
    return build(settings.observability.alerts.notifiers, settings.webhooks, signature_headers)


def alert_store(engine: Engine) -> AlertStore:
    return SqlAlerts(engine)


def _breakers(settings: Settings, registry: GraphRegistry) -> OpenBreakers | None:
    wrap = registry.models.wrap
    if not any(spec.breaker for spec in settings.models.values()):
        return None
    return wrap.resilience.store if isinstance(wrap, ModelChain) else None


class OutcomeRecorder(RunObserver):
    """A run observer that keeps how each run of this process ended, written in batches
    (``flush``) for the window rules."""

    def __init__(self, store: AlertStore, batch: int = 200) -> None:
        self.store = store
        self.batch = batch
        self._buffer: list[EndedRun] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def on_ended(self, run: Run, outcome: Outcome, usage: Usage) -> None:
        if outcome.rollback:  # removed, as if it never ran
            return
        rollout = rollout_of(run["metadata"])
        self._buffer.append(
            EndedRun(
                run["run_id"],
                run["assistant_id"],
                outcome.status,
                run["created_at"],
                _now(),
                rollout[1] if rollout else None,
            )
        )
        if len(self._buffer) >= self.batch:
            task = asyncio.create_task(self.flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        rows, self._buffer = self._buffer, []
        try:
            await self.store.record_outcomes(rows)
        except Exception:
            self._buffer[:0] = rows[-10 * self.batch :]  # kept for the next try, bounded
            raise

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()


def _now() -> datetime:
    return datetime.now(UTC)


class AlertTask(PeriodicTask):
    def __init__(self, settings: Settings, engine: Engine, registry: GraphRegistry) -> None:
        config = settings.observability.alerts
        store = alert_store(engine)
        self.recorder = OutcomeRecorder(store)
        self.evaluator = AlertEvaluator(
            config, store, notifiers(settings), breakers=_breakers(settings, registry)
        )
        super().__init__(
            "dockyard-alerts",
            self._tick,
            config.interval_seconds,
            log=log,
            failed="alert evaluation failed; retrying next interval",
            immediately=True,
        )
        self._unsubscribe: Callable[[], None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def _tick(self) -> None:
        # Every process writes its runs' outcomes; the lease holder also evaluates.
        await self.recorder.flush()
        await self.evaluator.tick()

    async def start(self) -> None:
        self._unsubscribe = on_threshold(self._on_threshold)
        await super().start()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await super().stop()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        try:
            await self.recorder.close()
            await self.evaluator.release()
        except Exception as e:  # storage gone: the lease runs out by itself
            log.warning("alert outcomes not written or lease not released: %s", e)

    def _on_threshold(self, event: ThresholdEvent) -> None:
        alert = budget_alert(self.evaluator.config.rules, event)
        if alert is None:
            return
        task = asyncio.create_task(self._open(alert, datetime.now(UTC)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _open(self, alert: NewAlert, now: datetime) -> None:
        try:
            await self.evaluator.store.open_alert(alert, now)
        except Exception:
            log.exception("budget alert %s not recorded", alert.key)
