"""Threads in SQL."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from dockyard.errors import ConflictError, NotFoundError
from dockyard.storage.base import (
    IfExists,
    SortOrder,
    Thread,
    ThreadStatus,
    UsageRecord,
)
from dockyard.storage.sql._common import (
    Conn,
    P,
    SqlStore,
    json_match,
    order_clause,
    utcnow,
)
from dockyard.storage.sql.usage import (
    INSERT_LEDGER,
    LEDGER_COLUMNS,
    ledger_params,
    ledger_select,
    numbered_ledger_params,
)
from dockyard.storage.tables import threads, usage_ledger

_THREAD_BY_ID = threads.select().where(threads.c.thread_id == P("p_id"))
_THREAD_BY_ID_LOCKED = _THREAD_BY_ID.with_for_update()
_UPDATE_THREAD = threads.update().where(threads.c.thread_id == P("p_id"))
_DELETE_THREAD = threads.delete().where(threads.c.thread_id == P("p_id"))


@functools.cache
def _delete_with_ledger_pg(rows: int) -> Any:
    """PostgreSQL: the delete in a data-modifying CTE and the ledger rows inserted in the
    same statement, whether or not the thread was there; returns how many it deleted."""
    gone = _DELETE_THREAD.returning(threads.c.thread_id).cte("gone")
    deleted = sa.select(sa.func.count()).select_from(gone).scalar_subquery()
    return (
        usage_ledger.insert()
        .from_select(LEDGER_COLUMNS, ledger_select(rows, sa.select(sa.literal(1)).subquery()))
        .add_cte(gone)
        .returning(deleted.label("deleted"))
    )


MARK_THREAD_BUSY = _UPDATE_THREAD.values(
    status="busy",
    updated_at=P("p_now"),
    graph_id=sa.func.coalesce(threads.c.graph_id, P("p_graph_id")),
)


class SqlThreads(SqlStore):
    _SORTABLE = ("thread_id", "status", "created_at", "updated_at")

    async def create(
        self,
        *,
        thread_id: str,
        metadata: dict[str, Any],
        if_exists: IfExists,
        ttl: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
        graph_id: str | None = None,
    ) -> Thread:
        async with self.engine.begin() as conn:
            existing = await get_thread_row(conn, thread_id)
            if existing is not None:
                if if_exists == "do_nothing":
                    return existing
                raise ConflictError(
                    f"thread {thread_id} already exists; pass if_exists='do_nothing' to reuse it",
                    code="thread_exists",
                )
            row = new_thread_row(
                thread_id, metadata, ttl=ttl, expires_at=expires_at, graph_id=graph_id
            )
            await conn.execute(threads.insert().values(**row))
        return row

    async def get(self, thread_id: str) -> Thread | None:
        rows = await self._rows(_THREAD_BY_ID, {"p_id": thread_id})
        return cast(Thread, rows[0]) if rows else None

    async def update(
        self,
        thread_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        ttl: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> Thread:
        async with self.engine.begin() as conn:
            current = await get_thread_row(conn, thread_id)
            if current is None:
                raise NotFoundError(f"thread {thread_id} not found", code="thread_not_found")
            values: dict[str, Any] = {"updated_at": utcnow()}
            if metadata is not None:
                values["metadata"] = {**current["metadata"], **metadata}
            if ttl is not None:
                values["ttl"] = ttl
                values["expires_at"] = expires_at
            await conn.execute(
                threads.update().where(threads.c.thread_id == thread_id).values(**values)
            )
            current.update(values)  # type: ignore[typeddict-item]
        return current

    async def set_state(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        values: Any = ...,
        interrupts: dict[str, Any] | None = None,
        graph_id: str | None = None,
    ) -> None:
        upd: dict[str, Any] = {"updated_at": utcnow()}
        if status is not None:
            upd["status"] = status
        if values is not ...:
            upd["values"] = values
        if interrupts is not None:
            upd["interrupts"] = interrupts
        if graph_id is not None:
            upd["graph_id"] = graph_id
        await self._write(_UPDATE_THREAD, {"p_id": thread_id, **upd}, columns=tuple(upd))

    async def delete(self, thread_id: str, *, ledger: Sequence[UsageRecord] = ()) -> bool:
        # runs.thread_id is ON DELETE CASCADE (SQLite: PRAGMA foreign_keys=ON)
        if not ledger:
            return bool(await self._write(_DELETE_THREAD, {"p_id": thread_id}))
        if self.dialect == "postgresql":
            params = {"p_id": thread_id} | numbered_ledger_params(ledger)
            rows = await self._rows(_delete_with_ledger_pg(len(ledger)), params, write=True)
            return bool(rows and rows[0]["deleted"])
        async with self.engine.begin() as conn:
            deleted = (await conn.execute(_DELETE_THREAD, {"p_id": thread_id})).rowcount
            await conn.execute(INSERT_LEDGER, ledger_params(ledger))
        return bool(deleted)

    def _where(
        self,
        ids: Sequence[str] | None,
        metadata: dict[str, Any] | None,
        values: dict[str, Any] | None,
        status: ThreadStatus | None,
    ) -> list[Any]:
        conds: list[Any] = []
        if ids is not None:
            conds.append(threads.c.thread_id.in_(list(ids)))
        if status:
            conds.append(threads.c.status == status)
        conds.extend(json_match(threads.c.metadata, metadata or {}, self.dialect))
        conds.extend(json_match(threads.c["values"], values or {}, self.dialect))
        return conds

    async def search(
        self,
        *,
        ids: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: SortOrder | None = None,
    ) -> list[Thread]:
        q = (
            threads.select()
            .where(*self._where(ids, metadata, values, status))
            .order_by(order_clause(threads, sort_by, sort_order, self._SORTABLE))
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            return [cast(Thread, dict(r)) for r in (await conn.execute(q)).mappings()]

    async def count(
        self,
        *,
        ids: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
    ) -> int:
        q = (
            sa.select(sa.func.count())
            .select_from(threads)
            .where(*self._where(ids, metadata, values, status))
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def expired(self, now: datetime, limit: int = 100) -> list[str]:
        q = (
            sa.select(threads.c.thread_id)
            .where(threads.c.expires_at.is_not(None), threads.c.expires_at <= now)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return list((await conn.execute(q)).scalars())

    async def set_expiry(self, thread_id: str, expires_at: datetime | None) -> None:
        await self._write(
            _UPDATE_THREAD,
            {"p_id": thread_id, "expires_at": expires_at},
            columns=("expires_at",),
        )


def new_thread_row(
    thread_id: str,
    metadata: dict[str, Any],
    *,
    ttl: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    graph_id: str | None = None,
) -> Thread:
    now = utcnow()
    return {
        "thread_id": thread_id,
        "status": "idle",
        "metadata": metadata,
        "values": None,
        "interrupts": {},
        "graph_id": graph_id,
        "ttl": ttl,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
    }


async def get_thread_row(conn: Conn, thread_id: str, lock: bool = False) -> Thread | None:
    q = _THREAD_BY_ID_LOCKED if lock else _THREAD_BY_ID
    r = (await conn.execute(q, {"p_id": thread_id})).mappings().first()
    return cast(Thread, dict(r)) if r else None
