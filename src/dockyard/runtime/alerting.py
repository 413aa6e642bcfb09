"""The alert evaluator as a component of a process (``observability.alerts.enabled``).

Every process with alerts enabled runs the periodic tick (only the lease holder
evaluates, so another takes over when it dies) and takes the budget policy's
``budget.threshold`` events of its own runs into the alert history, where the
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
from dockyard.runtime.webhooks import signature_headers
from dockyard.settings import Settings
from dockyard.storage.alerts import AlertStore, NewAlert
from dockyard.storage.sql import Engine
from dockyard.storage.sql.alerts import SqlAlerts

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


class AlertTask(PeriodicTask):
    def __init__(self, settings: Settings, engine: Engine, registry: GraphRegistry) -> None:
        config = settings.observability.alerts
        self.evaluator = AlertEvaluator(
            config,
            alert_store(engine),
            notifiers(settings),
            breakers=_breakers(settings, registry),
        )
        super().__init__(
            "dockyard-alerts",
            self.evaluator.tick,
            config.interval_seconds,
            log=log,
            failed="alert evaluation failed; retrying next interval",
            immediately=True,
        )
        self._unsubscribe: Callable[[], None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

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
            await self.evaluator.release()
        except Exception as e:  # storage gone: the lease runs out by itself
            log.warning("alert lease not released: %s", e)

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
