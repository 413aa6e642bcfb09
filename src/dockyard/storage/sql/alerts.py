"""``AlertStore`` in SQL (storage/alerts.py): SQLite and PostgreSQL."""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dockyard.storage.alerts import AlertRecord, AlertState, EndedRun, NewAlert, WaitingRun
from dockyard.storage.sql._common import SqlStore
from dockyard.storage.tables import (
    alert_history,
    assistants,
    leases,
    quality_scores,
    run_outcomes,
    runs,
    threads,
)

_FIRING = sa.text("state = 'firing'")
# What counts as ended for the window rules: interrupted runs are waiting, not ended.
_ENDED = ("success", "error", "timeout")


def _record(row: Any) -> AlertRecord:
    return AlertRecord(
        id=int(row["id"]),
        key=row["alert_key"],
        rule=row["rule"],
        kind=row["kind"],
        severity=row["severity"],
        state=row["state"],
        summary=row["summary"],
        details=dict(row["details"] or {}),
        started_at=row["started_at"],
        resolved_at=row["resolved_at"],
        ends_at=row["ends_at"],
        notified_at=row["notified_at"],
        notifications=int(row["notifications"]),
        deliveries=dict(row["deliveries"] or {}),
    )


class SqlAlerts(SqlStore):
    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self._insert = pg_insert if self.dialect == "postgresql" else sqlite_insert

    # -- the lease ----------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, seconds: float, now: datetime) -> bool:
        expires = now + timedelta(seconds=seconds)
        ins = self._insert(leases).values(name=name, holder=holder, expires_at=expires)
        # Taken over only from itself or from a holder whose lease ran out.
        stmt = ins.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": ins.excluded.holder, "expires_at": ins.excluded.expires_at},
            where=(leases.c.holder == ins.excluded.holder) | (leases.c.expires_at < now),
        ).returning(leases.c.holder)
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return row is not None and row[0] == holder

    async def release_lease(self, name: str, holder: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                leases.delete().where(leases.c.name == name, leases.c.holder == holder)
            )

    # -- history ------------------------------------------------------------------------

    async def open_alert(self, alert: NewAlert, now: datetime) -> AlertRecord | None:
        stmt = (
            self._insert(alert_history)
            .values(
                alert_key=alert.key,
                rule=alert.rule,
                kind=alert.kind,
                severity=alert.severity,
                state="firing",
                summary=alert.summary,
                details=alert.details,
                started_at=now,
                ends_at=alert.ends_at,
                notifications=0,
                deliveries={},
            )
            .on_conflict_do_nothing(index_elements=["alert_key"], index_where=_FIRING)
            .returning(*alert_history.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else _record(row)

    async def firing(self) -> builtins.list[AlertRecord]:
        q = (
            sa.select(alert_history)
            .where(alert_history.c.state == "firing")
            .order_by(alert_history.c.started_at, alert_history.c.id)
        )
        async with self.engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(q)).mappings()]

    async def notified(self, alert_id: int, now: datetime, deliveries: dict[str, str]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                alert_history.update()
                .where(alert_history.c.id == alert_id)
                .values(
                    notified_at=now,
                    notifications=alert_history.c.notifications + 1,
                    deliveries=deliveries,
                )
            )

    async def refresh(
        self, alert_id: int, summary: str, details: dict[str, Any]
    ) -> AlertRecord | None:
        stmt = (
            alert_history.update()
            .where(alert_history.c.id == alert_id, alert_history.c.state == "firing")
            .values(summary=summary, details=details)
            .returning(*alert_history.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else _record(row)

    async def resolve(self, alert_id: int, now: datetime) -> AlertRecord | None:
        stmt = (
            alert_history.update()
            .where(alert_history.c.id == alert_id, alert_history.c.state == "firing")
            .values(state="resolved", resolved_at=now)
            .returning(*alert_history.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else _record(row)

    async def history(
        self,
        *,
        since: datetime | None = None,
        state: AlertState | None = None,
        limit: int = 100,
    ) -> builtins.list[AlertRecord]:
        q = sa.select(alert_history).order_by(
            alert_history.c.started_at.desc(), alert_history.c.id.desc()
        )
        if since is not None:
            q = q.where(alert_history.c.started_at >= since)
        if state is not None:
            q = q.where(alert_history.c.state == state)
        async with self.engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(q.limit(limit))).mappings()]

    # -- what the rules read ------------------------------------------------------------

    async def record_outcomes(self, outcomes: Sequence[EndedRun]) -> None:
        if not outcomes:
            return
        rows = [
            {
                "run_id": o.run_id,
                "assistant_id": o.assistant_id,
                "status": o.status,
                "created_at": o.created_at,
                "ended_at": o.ended_at,
                "seconds": o.seconds,
                "variant": o.variant,
            }
            for o in outcomes
        ]
        async with self.engine.begin() as conn:
            await conn.execute(run_outcomes.insert(), rows)

    def _outcomes(
        self, since: datetime, assistants: Sequence[str] | None, variant: str | None = None
    ) -> list[Any]:
        where = [run_outcomes.c.ended_at >= since]
        if assistants is not None:
            where.append(run_outcomes.c.assistant_id.in_(list(assistants)))
        if variant is not None:
            where.append(run_outcomes.c.variant == variant)
        return where

    async def outcome_counts(
        self,
        since: datetime,
        assistants: Sequence[str] | None = None,
        variant: str | None = None,
    ) -> dict[str, int]:
        q = (
            sa.select(run_outcomes.c.status, sa.func.count())
            .where(*self._outcomes(since, assistants, variant))
            .group_by(run_outcomes.c.status)
        )
        async with self.engine.connect() as conn:
            return {r[0]: int(r[1]) for r in (await conn.execute(q)).all()}

    async def latency_p95(
        self, since: datetime, assistants: Sequence[str] | None = None
    ) -> float | None:
        where = [*self._outcomes(since, assistants), run_outcomes.c.status.in_(_ENDED)]
        async with self.engine.connect() as conn:
            n = int((await conn.execute(sa.select(sa.func.count()).where(*where))).scalar() or 0)
            if n == 0:
                return None
            # The value at rank ceil(0.95 n): that many from the top, one SQL for both
            # backends (SQLite has no percentile function).
            q = (
                sa.select(run_outcomes.c.seconds)
                .where(*where)
                .order_by(run_outcomes.c.seconds.desc())
                .offset(n - math.ceil(0.95 * n))
                .limit(1)
            )
            return float((await conn.execute(q)).scalar_one())

    async def prune(self, before: datetime) -> int:
        async with self.engine.begin() as conn:
            a = await conn.execute(run_outcomes.delete().where(run_outcomes.c.ended_at < before))
            b = await conn.execute(
                quality_scores.delete().where(quality_scores.c.created_at < before)
            )
        return int(a.rowcount or 0) + int(b.rowcount or 0)

    async def waiting_runs(
        self, before: datetime, assistants: Sequence[str] | None = None, limit: int = 100
    ) -> builtins.list[WaitingRun]:
        # A thread's row is last written when its run stopped to wait (an interrupt ends
        # the run; the thread stays interrupted until a new run resumes it).
        waiting = (
            sa.select(threads.c.thread_id, threads.c.updated_at)
            .where(threads.c.status == "interrupted", threads.c.updated_at < before)
            .order_by(threads.c.updated_at)
            .limit(10_000)
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(waiting)).all()
            if not found:
                return []
            latest = (
                sa.select(runs.c.thread_id, runs.c.run_id, runs.c.assistant_id)
                .where(runs.c.thread_id.in_([r.thread_id for r in found]))
                .order_by(runs.c.created_at)
            )
            # Oldest first: the newest run of each thread is the last one written.
            run_of = {r.thread_id: r for r in (await conn.execute(latest)).all()}
        wanted = None if assistants is None else set(assistants)
        out = []
        for t in found:
            run = run_of.get(t.thread_id)
            if run is None:  # interrupted through the threads API, with no run
                continue
            if wanted is None or run.assistant_id in wanted:
                out.append(WaitingRun(run.run_id, t.thread_id, run.assistant_id, t.updated_at))
        return out[:limit]

    async def assistant_ids(self, name: str) -> builtins.list[str]:
        q = sa.select(assistants.c.assistant_id).where(
            (assistants.c.name == name) | (assistants.c.graph_id == name)
        )
        async with self.engine.connect() as conn:
            return [r[0] for r in (await conn.execute(q)).all()]

    async def record_quality(
        self,
        run_id: str,
        assistant_id: str,
        score: float,
        now: datetime,
        *,
        variant: str | None = None,
    ) -> None:
        stmt = self._insert(quality_scores).values(
            run_id=run_id, assistant_id=assistant_id, score=score, created_at=now, variant=variant
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id"],
            set_={
                "score": stmt.excluded.score,
                "created_at": stmt.excluded.created_at,
                "variant": stmt.excluded.variant,
            },
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def quality(
        self,
        since: datetime,
        assistants: Sequence[str] | None = None,
        *,
        variant: str | None = None,
    ) -> tuple[int, float | None]:
        q = sa.select(sa.func.count(), sa.func.avg(quality_scores.c.score)).where(
            quality_scores.c.created_at >= since
        )
        if assistants is not None:
            q = q.where(quality_scores.c.assistant_id.in_(list(assistants)))
        if variant is not None:
            q = q.where(quality_scores.c.variant == variant)
        async with self.engine.connect() as conn:
            n, mean = (await conn.execute(q)).one()
        return int(n), None if mean is None else float(mean)
