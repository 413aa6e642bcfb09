"""Alerts' storage: their history, the lease that makes one process the evaluator, and
what the rules read (runs ended in a window, threads waiting for a human, quality scores).

One protocol (``AlertStore``), one SQL implementation for SQLite and PostgreSQL
(``storage.sql.alerts``); the rules and the evaluator live in ``observability.alerts``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

AlertState = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class NewAlert:
    """A condition a rule found true; ``key`` names it across evaluations (one firing
    row per key)."""

    key: str
    rule: str
    kind: str
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    ends_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    key: str
    rule: str
    kind: str
    severity: str
    state: AlertState
    summary: str
    details: dict[str, Any]
    started_at: datetime
    resolved_at: datetime | None
    ends_at: datetime | None
    notified_at: datetime | None
    notifications: int
    deliveries: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "id": self.id,
            "key": self.key,
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "state": self.state,
            "summary": self.summary,
            "details": self.details,
            "started_at": iso(self.started_at),
            "resolved_at": iso(self.resolved_at),
            "notified_at": iso(self.notified_at),
            "notifications": self.notifications,
            "deliveries": self.deliveries,
        }


@dataclass(frozen=True, slots=True)
class EndedRun:
    run_id: str
    assistant_id: str
    status: str
    created_at: datetime
    ended_at: datetime
    # The rollout variant the run was assigned (stable | candidate), else None.
    variant: str | None = None

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.created_at).total_seconds()


@dataclass(frozen=True, slots=True)
class WaitingRun:
    run_id: str
    thread_id: str
    assistant_id: str
    since: datetime


class AlertStore(Protocol):
    # -- the lease ----------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, seconds: float, now: datetime) -> bool:
        """Take or renew lease ``name`` for ``holder`` until ``now + seconds``; True when
        ``holder`` has it (it was free, expired or already its own)."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give up the lease if ``holder`` has it, so another process takes it at once."""
        ...

    # -- history ------------------------------------------------------------------------

    async def open_alert(self, alert: NewAlert, now: datetime) -> AlertRecord | None:
        """A firing row for ``alert``; None when its key is already firing."""
        ...

    async def firing(self) -> builtins.list[AlertRecord]:
        """Every firing alert, oldest first."""
        ...

    async def notified(self, alert_id: int, now: datetime, deliveries: dict[str, str]) -> None:
        """The alert was sent (once more) at ``now``; what each notifier answered."""
        ...

    async def refresh(
        self, alert_id: int, summary: str, details: dict[str, Any]
    ) -> AlertRecord | None:
        """What a still-firing alert says now (its value moved); None when not firing."""
        ...

    async def resolve(self, alert_id: int, now: datetime) -> AlertRecord | None:
        """The firing alert cleared; None when it was not firing (any more)."""
        ...

    async def history(
        self,
        *,
        since: datetime | None = None,
        state: AlertState | None = None,
        limit: int = 100,
    ) -> builtins.list[AlertRecord]:
        """Alerts started since ``since`` (newest first)."""
        ...

    # -- what the rules read ------------------------------------------------------------

    async def record_outcomes(self, outcomes: Sequence[EndedRun]) -> None:
        """How these runs ended (what ``outcome_counts`` and ``latency_p95`` read)."""
        ...

    async def outcome_counts(
        self,
        since: datetime,
        assistants: Sequence[str] | None = None,
        variant: str | None = None,
    ) -> dict[str, int]:
        """How many runs recorded as ended since ``since`` ended in each status;
        ``assistants``: only the runs of these assistant ids; ``variant``: only the runs
        a rollout put on that variant."""
        ...

    async def latency_p95(
        self, since: datetime, assistants: Sequence[str] | None = None
    ) -> float | None:
        """The nearest-rank 95th percentile of the seconds (created to ended) of the runs
        ended in success, error or timeout since ``since``; None without any."""
        ...

    async def prune(self, before: datetime) -> int:
        """Forget run outcomes and quality scores from before ``before``; how many."""
        ...

    async def waiting_runs(
        self, before: datetime, assistants: Sequence[str] | None = None, limit: int = 100
    ) -> builtins.list[WaitingRun]:
        """Threads waiting for a human (interrupted) since before ``before``, with their
        newest run (the one that stopped to wait), oldest first."""
        ...

    async def assistant_ids(self, name: str) -> builtins.list[str]:
        """The ids of the assistants named ``name`` or of graph ``name``."""
        ...

    async def record_quality(
        self,
        run_id: str,
        assistant_id: str,
        score: float,
        now: datetime,
        *,
        variant: str | None = None,
    ) -> None:
        """A run's quality score (0..1); a second score of the same run replaces the first.
        ``variant``: the rollout variant the run was assigned (``stable``, ``candidate``)."""
        ...

    async def quality(
        self,
        since: datetime,
        assistants: Sequence[str] | None = None,
        *,
        variant: str | None = None,
    ) -> tuple[int, float | None]:
        """How many runs were scored since ``since``, and their mean score; ``variant``:
        only the runs a rollout assigned that variant."""
        ...


__all__ = ["AlertRecord", "AlertState", "AlertStore", "EndedRun", "NewAlert", "WaitingRun"]
