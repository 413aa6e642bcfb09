"""Runs in SQL: creation with the busy check, claiming, finishing."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa

from dockyard.errors import ConflictError, NotFoundError
from dockyard.storage.base import (
    ACTIVE_RUN_STATUSES,
    Run,
    RunStatus,
    Thread,
)
from dockyard.storage.sql._common import Engine, P, utcnow
from dockyard.storage.sql.threads import MARK_THREAD_BUSY, get_thread_row
from dockyard.storage.tables import runs, threads

_RUN_BY_ID = runs.select().where(runs.c.run_id == P("p_id"))
_RUN_BY_ID_ON_THREAD = _RUN_BY_ID.where(runs.c.thread_id == P("p_thread_id"))
_ACTIVE_RUNS = (
    runs.select()
    .where(runs.c.thread_id == P("p_id"), runs.c.status.in_(ACTIVE_RUN_STATUSES))
    .order_by(runs.c.created_at)
)
_UPDATE_RUN = runs.update().where(runs.c.run_id == P("p_id"))
_UPDATE_RUN_IF = _UPDATE_RUN.where(runs.c.status.in_(P("p_only", expanding=True)))
_CLAIM_RUN = _UPDATE_RUN.where(runs.c.status == "pending").values(
    status="running",
    attempts=runs.c.attempts + 1,
    started_at=P("p_now"),
    updated_at=P("p_now"),
)
_DUE_RUNS = (
    runs.select()
    .where(
        runs.c.status == "pending",
        sa.or_(runs.c.not_before.is_(None), runs.c.not_before <= P("p_now")),
        runs.c.thread_id.not_in(
            sa.select(runs.c.thread_id).where(runs.c.status == "running").scalar_subquery()
        ),
    )
    .order_by(runs.c.created_at)
    .limit(P("p_limit"))
)
_NEXT_DUE = sa.select(sa.func.min(runs.c.not_before)).where(
    runs.c.status == "pending", runs.c.not_before.is_not(None)
)


class SqlRuns:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def create(
        self,
        run: Run,
        *,
        reject_if_busy: bool,
        create_thread: Thread | None,
        graph_id: str,
    ) -> tuple[Run, builtins.list[Run]]:
        async with self.engine.begin() as conn:
            # The row lock (PostgreSQL) / the single writer (SQLite) makes the
            # busy check and the insert one step: two concurrent resumes of
            # one interrupt cannot both get in.
            thread = await get_thread_row(conn, run["thread_id"], lock=True)
            if thread is None:
                if create_thread is None:
                    raise NotFoundError(
                        f"thread {run['thread_id']} not found; create it first or pass "
                        "if_not_exists='create'",
                        code="thread_not_found",
                    )
                row = {
                    **create_thread,
                    "status": "busy",
                    "graph_id": create_thread["graph_id"] or graph_id,
                    "updated_at": run["created_at"],
                }
                await conn.execute(threads.insert(), row)
                await conn.execute(runs.insert(), run)
                return run, []
            else:
                res = await conn.execute(_ACTIVE_RUNS, {"p_id": run["thread_id"]})
                inflight = [cast(Run, dict(r)) for r in res.mappings()]
                if inflight and reject_if_busy:
                    raise ConflictError(
                        f"thread {run['thread_id']} is busy with run {inflight[0]['run_id']}; "
                        "wait for it, or send multitask_strategy 'interrupt', 'rollback' or "
                        "'enqueue'",
                        code="thread_busy",
                    )
            await conn.execute(runs.insert(), run)
            await conn.execute(
                MARK_THREAD_BUSY,
                {"p_id": run["thread_id"], "p_now": run["created_at"], "p_graph_id": graph_id},
            )
        return run, inflight

    async def get(self, run_id: str, thread_id: str | None = None) -> Run | None:
        if thread_id is None:
            q, params = _RUN_BY_ID, {"p_id": run_id}
        else:
            q, params = _RUN_BY_ID_ON_THREAD, {"p_id": run_id, "p_thread_id": thread_id}
        async with self.engine.connect() as conn:
            r = (await conn.execute(q, params)).mappings().first()
            return cast(Run, dict(r)) if r else None

    async def list(
        self,
        thread_id: str,
        *,
        limit: int = 10,
        offset: int = 0,
        status: RunStatus | None = None,
    ) -> builtins.list[Run]:
        q = runs.select().where(runs.c.thread_id == thread_id)
        if status:
            q = q.where(runs.c.status == status)
        q = q.order_by(runs.c.created_at.desc()).limit(limit).offset(offset)
        async with self.engine.connect() as conn:
            return [cast(Run, dict(r)) for r in (await conn.execute(q)).mappings()]

    async def active(self, thread_id: str) -> builtins.list[Run]:
        async with self.engine.connect() as conn:
            res = await conn.execute(_ACTIVE_RUNS, {"p_id": thread_id})
            return [cast(Run, dict(r)) for r in res.mappings()]

    async def with_status(
        self, statuses: Sequence[RunStatus], limit: int = 1000
    ) -> builtins.list[Run]:
        q = (
            runs.select()
            .where(runs.c.status.in_(list(statuses)))
            .order_by(runs.c.created_at)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [cast(Run, dict(r)) for r in (await conn.execute(q)).mappings()]

    async def claim(self, limit: int, now: datetime) -> builtins.list[Run]:
        if limit <= 0:
            return []
        q = (
            _DUE_RUNS.with_for_update(skip_locked=True)
            if self.dialect == "postgresql"
            else _DUE_RUNS
        )
        claimed: builtins.list[Run] = []
        async with self.engine.begin() as conn:
            seen: set[str] = set()
            for r in (await conn.execute(q, {"p_now": now, "p_limit": limit * 4})).mappings():
                if r["thread_id"] in seen:
                    continue
                seen.add(r["thread_id"])
                run = cast(Run, dict(r))
                res = await conn.execute(_CLAIM_RUN, {"p_id": run["run_id"], "p_now": now})
                if res.rowcount:
                    run["status"] = "running"
                    run["attempts"] += 1
                    run["started_at"] = run["updated_at"] = now
                    claimed.append(run)
                if len(claimed) >= limit:
                    break
        return claimed

    async def next_due(self) -> datetime | None:
        async with self.engine.connect() as conn:
            value = (await conn.execute(_NEXT_DUE)).scalar_one()
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return cast(datetime | None, value)

    async def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        error: dict[str, Any] | None = None,
        cancel_reason: str | None = None,
        only_if: Sequence[RunStatus] | None = None,
    ) -> bool:
        now = utcnow()
        values: dict[str, Any] = {
            "p_id": run_id,
            "status": status,
            "updated_at": now,
            "error": error,
        }
        q = _UPDATE_RUN
        if only_if:
            q = _UPDATE_RUN_IF
            values["p_only"] = list(only_if)
        if status not in ACTIVE_RUN_STATUSES:
            values["ended_at"] = now
        if cancel_reason is not None:
            values["cancel_reason"] = cancel_reason
        async with self.engine.begin() as conn:
            res = await conn.execute(q, values)
            return bool(res.rowcount)

    async def delete(self, run_id: str) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(runs.delete().where(runs.c.run_id == run_id))
            return bool(res.rowcount)

    async def requeue_running(self) -> builtins.list[Run]:
        async with self.engine.begin() as conn:
            res = await conn.execute(runs.select().where(runs.c.status == "running"))
            stale: builtins.list[Run] = [cast(Run, dict(r)) for r in res.mappings()]
            if stale:
                await conn.execute(
                    runs.update()
                    .where(runs.c.status == "running")
                    .values(status="pending", updated_at=utcnow())
                )
        return stale
