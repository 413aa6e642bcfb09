"""One evaluation of every alert rule, and what it sends.

Every process with alerts enabled calls ``tick`` each ``interval_seconds``; the one that
holds the lease in the database (``leases`` row ``alerts``) evaluates, the others find
it taken. State lives in ``alert_history``, so a new holder (the old one died) carries
on where it stopped, and each alert is sent:

* once when it starts firing (``firing``),
* again every ``cooldown_minutes`` while it keeps firing (``reminder``; never with 0),
* once when it clears (``resolved``), if its firing message went out.

A rule that fails to evaluate (storage down) is logged and leaves its alerts as they
are: an error must not resolve them.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dockyard.observability.alerts.notifiers.base import Event, Message, Notifier, deliver
from dockyard.observability.alerts.rules import OpenBreakers, Reads, evaluate
from dockyard.settings import AlertsConfig
from dockyard.storage.alerts import AlertRecord, AlertStore, NewAlert

log = logging.getLogger("dockyard.alerts")

LEASE = "alerts"


def holder_id() -> str:
    """This process, in the lease row: readable, and unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class AlertEvaluator:
    def __init__(
        self,
        config: AlertsConfig,
        store: AlertStore,
        notifiers: list[Notifier],
        *,
        breakers: OpenBreakers | None = None,
        holder: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.notifiers = notifiers
        self.breakers = breakers
        self.holder = holder or holder_id()
        self.clock = clock

    async def tick(self) -> bool:
        """Evaluate and notify if this process holds the lease; True when it did."""
        if not await self._lease():
            return False
        now = self.clock()
        await self.evaluate(now)
        await self.store.prune(now - self.keep)
        return True

    @property
    def keep(self) -> timedelta:
        """How long run outcomes and scores are kept: twice the longest window (an hour
        at least)."""
        windows = [getattr(r, "window_minutes", 0.0) for r in self.config.rules.values()]
        return timedelta(minutes=2 * max([60.0, *windows]))

    async def release(self) -> None:
        """Hand the lease on at once (stopping), instead of when it runs out."""
        await self.store.release_lease(LEASE, self.holder)

    async def _lease(self) -> bool:
        return await self.store.acquire_lease(LEASE, self.holder, self.config.lease, self.clock())

    async def evaluate(self, now: datetime) -> None:
        firing = {a.key: a for a in await self.store.firing()}
        evaluated: set[str] = set()
        true_now: dict[str, NewAlert] = {}
        reads = Reads(self.store)
        for name, rule in self.config.rules.items():
            try:
                alerts = await evaluate(name, rule, reads, now, self.breakers)
            except Exception:
                log.exception("alert rule %s could not be evaluated; its alerts stay", name)
                continue
            if alerts is None:
                continue
            evaluated.add(name)
            for alert in alerts:
                true_now[alert.key] = alert
                if alert.key not in firing:
                    record = await self.store.open_alert(alert, now)
                    if record is not None:
                        firing[alert.key] = record
        cooldown = timedelta(minutes=self.config.cooldown_minutes)
        for record in firing.values():
            gone = record.rule not in self.config.rules
            cleared = record.rule in evaluated and record.key not in true_now
            ended = record.ends_at is not None and record.ends_at <= now
            event: Event | None = None
            if gone or cleared or ended:
                event = "resolved"
            elif record.notified_at is None:
                event = "firing"
            elif cooldown and now - record.notified_at >= cooldown:
                event = "reminder"
            # Renewed before each change: a slow notifier must not let the lease lapse
            # into a second evaluator sending the same alerts.
            if event is None:
                continue
            if not await self._lease():
                return
            if event == "resolved":
                resolved = await self.store.resolve(record.id, now)
                if resolved is not None and record.notified_at is not None:
                    await self._send("resolved", resolved, now)
            else:
                # A reminder says what is true now (the error rate moved on since).
                latest = true_now.get(record.key)
                if event == "reminder" and latest is not None and latest.summary != record.summary:
                    record = (
                        await self.store.refresh(record.id, latest.summary, latest.details)
                        or record
                    )
                await self._send(event, record, now)

    async def _send(self, event: Event, record: AlertRecord, now: datetime) -> None:
        log.warning("alert %s %s: %s", event, record.key, record.summary)
        answers = await deliver(self.notifiers, Message(event, record, now))
        await self.store.notified(record.id, now, answers)


__all__ = ["LEASE", "AlertEvaluator", "holder_id"]
