"""The automatic rollback: each active rollout's candidate runs over its window, against
its thresholds; rolled back (every new run stable) with an alert when one is crossed.

One process checks at a time: the one holding the ``rollouts`` lease in the database (the
alert evaluator's pattern), so a rollback is decided and announced once. What it reads is
in the database (``run_outcomes`` and ``quality_scores``, with the variant of each run),
so it does not matter which process ran the runs.

The window starts at ``now - window_minutes``, or when the rollout started if later
(runs of an earlier rollout on the same assistant do not count). The alert goes to the
notifiers of ``observability.alerts`` and into the alert history (``dockyard alerts``)
as a ``rollout_rollback`` alert, resolved at once: a rollback is an event, there is no
condition left to clear.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.observability.alerts import Message, Notifier, deliver, holder_id
from dockyard.settings import RolloutConfig
from dockyard.storage.alerts import AlertStore, NewAlert
from dockyard.storage.rollouts import RolloutRecord, RolloutStore
from dockyard.variants import CANDIDATE

log = logging.getLogger("dockyard.rollouts")

LEASE = "rollouts"
AUTO = "auto"
_FAILED = ("error", "timeout")
_ENDED = ("success", "error", "timeout")


class RollbackCheck:
    def __init__(
        self,
        store: RolloutStore,
        alerts: AlertStore,
        notifiers: list[Notifier],
        *,
        lease_seconds: float = 30.0,
        holder: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.notifiers = notifiers
        self.lease_seconds = lease_seconds
        self.holder = holder or holder_id()
        self.clock = clock
        # Whether the last tick found this process holding the lease.
        self.holding = False

    async def tick(self, active: list[RolloutRecord]) -> list[RolloutRecord]:
        """Check ``active`` rollouts if this process holds the lease; those rolled back."""
        if not any(_thresholds(RolloutConfig.model_validate(r.definition)) for r in active):
            return []
        now = self.clock()
        self.holding = await self.alerts.acquire_lease(LEASE, self.holder, self.lease_seconds, now)
        if not self.holding:
            return []
        out = []
        for record in active:
            try:
                rolled = await self.check(record, now)
            except Exception:
                log.exception("rollout %s could not be checked; next time", record.name)
                continue
            if rolled is not None:
                out.append(rolled)
        return out

    async def release(self) -> None:
        await self.alerts.release_lease(LEASE, self.holder)

    async def measure(
        self, record: RolloutRecord, now: datetime, variant: str = CANDIDATE
    ) -> dict[str, Any]:
        """A variant's numbers over the rollout's window."""
        config = RolloutConfig.model_validate(record.definition)
        since = now - timedelta(minutes=config.rollback.window_minutes)
        if record.started_at is not None and record.started_at > since:
            since = record.started_at
        ids = await self.alerts.assistant_ids(config.assistant)
        scored, mean = await self.alerts.quality(since, ids, variant=variant)
        counts = await self.alerts.outcome_counts(since, ids, variant=variant)
        ended = sum(counts.get(s, 0) for s in _ENDED)
        failed = sum(counts.get(s, 0) for s in _FAILED)
        return {
            "since": since.isoformat(),
            "scored_runs": scored,
            "quality": None if mean is None else round(mean, 4),
            "ended_runs": ended,
            "failed_runs": failed,
            "error_rate": round(failed / ended, 4) if ended else None,
        }

    async def check(self, record: RolloutRecord, now: datetime) -> RolloutRecord | None:
        config = RolloutConfig.model_validate(record.definition)
        rule = config.rollback
        if not _thresholds(config):
            return None
        seen = await self.measure(record, now)
        why: list[tuple[str, float, float]] = []  # (what, value, threshold)
        if (
            rule.min_quality is not None
            and seen["scored_runs"] >= rule.min_runs
            and seen["quality"] is not None
            and seen["quality"] < rule.min_quality
        ):
            why.append(
                (
                    f"candidate quality {seen['quality']:.3f} < {rule.min_quality} over "
                    f"{seen['scored_runs']} scored runs",
                    seen["quality"],
                    rule.min_quality,
                )
            )
        if (
            rule.max_error_rate is not None
            and seen["ended_runs"] >= rule.min_runs
            and seen["error_rate"] is not None
            and seen["error_rate"] > rule.max_error_rate
        ):
            why.append(
                (
                    f"candidate error rate {seen['error_rate']:.1%} > "
                    f"{rule.max_error_rate:.1%} over {seen['ended_runs']} runs",
                    seen["error_rate"],
                    rule.max_error_rate,
                )
            )
        if not why:
            return None
        reason = "; ".join(w[0] for w in why)
        rolled = await self.store.set_state(
            record.name, "rolled_back", reason=reason, changed_by=AUTO, details=seen, now=now
        )
        if rolled is None:  # promoted or aborted meanwhile
            return None
        log.warning("rollout %s rolled back: %s", record.name, reason)
        await self._alert(
            rolled, config, reason, {**seen, "value": why[0][1], "threshold": why[0][2]}, now
        )
        return rolled

    async def _alert(
        self,
        record: RolloutRecord,
        config: RolloutConfig,
        reason: str,
        seen: dict[str, Any],
        now: datetime,
    ) -> None:
        alert = NewAlert(
            key=f"rollout:{record.name}",
            rule=f"rollout:{record.name}",
            kind="rollout_rollback",
            severity="critical",
            summary=f"rollout {record.name} ({config.assistant}) rolled back: {reason}",
            details={
                "rollout": record.name,
                "assistant": config.assistant,
                "candidate": config.candidate.model_dump(exclude_none=True),
                **seen,
            },
        )
        opened = await self.alerts.open_alert(alert, now)
        if opened is None:
            return
        try:
            answers = await deliver(self.notifiers, Message("firing", opened, now))
            await self.alerts.notified(opened.id, now, answers)
        finally:
            await self.alerts.resolve(opened.id, now)


def _thresholds(config: RolloutConfig) -> bool:
    rule = config.rollback
    return rule.min_quality is not None or rule.max_error_rate is not None
