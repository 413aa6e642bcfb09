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
from dockyard.storage.sql._common import Engine, P, json_match, one_statement, utcnow
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
    worker_id=P("p_worker"),
    lease_expires_at=P("p_lease"),
)
_HEARTBEAT = (
    runs.update()
    .where(
        runs.c.run_id.in_(P("p_ids", expanding=True)),
        runs.c.worker_id == P("p_worker"),
        runs.c.status == "running",
    )
    .values(lease_expires_at=P("p_lease"))
    .returning(runs.c.run_id, runs.c.cancel_requested)
)
_REQUEUE_EXPIRED = (
    runs.update()
    .where(runs.c.status == "running", runs.c.lease_expires_at < P("p_now"))
    .values(status="pending", worker_id=None, lease_expires_at=None, updated_at=P("p_now"))
    .returning(runs.c.run_id)
)
_RELEASE = (
    runs.update()
    .where(
        runs.c.run_id == P("p_id"),
        runs.c.worker_id == P("p_worker"),
        runs.c.status == "running",
    )
    .values(status="pending", worker_id=None, lease_expires_at=None, updated_at=P("p_now"))
)
_REQUEST_CANCEL = (
    runs.update()
    .where(runs.c.run_id == P("p_id"), runs.c.status.in_(ACTIVE_RUN_STATUSES))
    .values(cancel_requested=P("p_action"))
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
        try:
            return await self._create(run, reject_if_busy, create_thread, graph_id)
        except sa.exc.IntegrityError as e:
            if await self.get(run["run_id"]) is None:
                raise
            raise ConflictError(f"run {run['run_id']} already exists", code="run_exists") from e

    async def _create(
        self,
        run: Run,
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

    async def claim(
        self,
        limit: int,
        now: datetime,
        *,
        worker_id: str | None = None,
        lease_until: datetime | None = None,
    ) -> builtins.list[Run]:
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
                res = await conn.execute(
                    _CLAIM_RUN,
                    {
                        "p_id": run["run_id"],
                        "p_now": now,
                        "p_worker": worker_id,
                        "p_lease": lease_until,
                    },
                )
                if res.rowcount:
                    run["status"] = "running"
                    run["attempts"] += 1
                    run["started_at"] = run["updated_at"] = now
                    run["worker_id"], run["lease_expires_at"] = worker_id, lease_until
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
        worker_id: str | None = None,
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
        if worker_id is not None:
            # Fencing: a worker whose lease was taken over must not settle the run.
            q = q.where(runs.c.worker_id == P("p_worker"))
            values["p_worker"] = worker_id
        if status not in ACTIVE_RUN_STATUSES:
            values["ended_at"] = now
            values["worker_id"] = None
            values["lease_expires_at"] = None
        if cancel_reason is not None:
            values["cancel_reason"] = cancel_reason
        async with one_statement(self.engine) as conn:
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
                    .values(
                        status="pending",
                        worker_id=None,
                        lease_expires_at=None,
                        updated_at=utcnow(),
                    )
                )
        return stale

    async def heartbeat(
        self, worker_id: str, run_ids: Sequence[str], lease_until: datetime
    ) -> dict[str, str | None]:
        if not run_ids:
            return {}
        params = {"p_ids": list(run_ids), "p_worker": worker_id, "p_lease": lease_until}
        async with one_statement(self.engine) as conn:
            res = await conn.execute(_HEARTBEAT, params)
            return {r.run_id: r.cancel_requested for r in res}

    async def requeue_expired(self, now: datetime) -> builtins.list[str]:
        async with one_statement(self.engine) as conn:
            return [r.run_id for r in await conn.execute(_REQUEUE_EXPIRED, {"p_now": now})]

    async def release(self, run_id: str, worker_id: str) -> bool:
        params = {"p_id": run_id, "p_worker": worker_id, "p_now": utcnow()}
        async with one_statement(self.engine) as conn:
            return bool((await conn.execute(_RELEASE, params)).rowcount)

    async def request_cancel(self, run_id: str, action: str) -> bool:
        async with one_statement(self.engine) as conn:
            res = await conn.execute(_REQUEST_CANCEL, {"p_id": run_id, "p_action": action})
            return bool(res.rowcount)

    async def set_webhook(self, run_id: str, webhook: dict[str, Any]) -> None:
        params = {"p_id": run_id, "webhook": webhook, "updated_at": utcnow()}
        async with self.engine.begin() as conn:
            await conn.execute(_UPDATE_RUN, params)

    async def claim_pending_webhooks(
        self, older_than: datetime, limit: int = 100
    ) -> builtins.list[Run]:
        q = (
            runs.select()
            .where(
                runs.c.status.not_in(ACTIVE_RUN_STATUSES),
                runs.c.updated_at < older_than,
                *json_match(runs.c.webhook, {"status": "pending"}, self.dialect),
            )
            .order_by(runs.c.updated_at)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            q = q.with_for_update(skip_locked=True)
        now = utcnow()
        async with self.engine.begin() as conn:
            taken = [cast(Run, dict(r)) for r in (await conn.execute(q)).mappings()]
            if taken:
                ids = [r["run_id"] for r in taken]
                await conn.execute(
                    runs.update().where(runs.c.run_id.in_(ids)).values(updated_at=now)
                )
        for run in taken:
            run["updated_at"] = now
        return taken
