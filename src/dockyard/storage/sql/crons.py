"""Crons in SQL: CRUD, search, and the exactly-once claim of due firings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from dockyard.errors import NotFoundError
from dockyard.storage.base import Cron, OnRunCompleted, SortOrder
from dockyard.storage.schedule import next_run
from dockyard.storage.sql._common import Conn, Engine, P, json_match, order_clause
from dockyard.storage.tables import crons

_CRON_BY_ID = crons.select().where(crons.c.cron_id == P("p_id"))
_UPDATE_CRON = crons.update().where(crons.c.cron_id == P("p_id"))
_DUE_CRONS = (
    crons.select()
    .where(
        crons.c.enabled.is_(True),
        crons.c.next_run_date <= P("p_now"),
        # A slot due before the end fires even when the scheduler reaches it after the end
        # (a busy or restarted process): it is advanced to no next slot only by firing.
        sa.or_(crons.c.end_time.is_(None), crons.c.next_run_date <= crons.c.end_time),
    )
    .order_by(crons.c.next_run_date)
    .limit(P("p_limit"))
)
# Only from the slot that fired: an update made meanwhile (new schedule) wins.
_ADVANCE = _UPDATE_CRON.where(crons.c.next_run_date == P("p_slot")).values(
    next_run_date=P("p_next")
)


class SqlCrons:
    _SORTABLE = (
        "cron_id",
        "assistant_id",
        "thread_id",
        "created_at",
        "updated_at",
        "next_run_date",
        "end_time",
    )

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def create(self, cron: Cron) -> Cron:
        async with self.engine.begin() as conn:
            await conn.execute(crons.insert(), cron)
        return cron

    async def get(self, cron_id: str) -> Cron | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(_CRON_BY_ID, {"p_id": cron_id})).mappings().first()
            return cast(Cron, dict(r)) if r else None

    async def update(
        self,
        cron_id: str,
        *,
        now: datetime,
        schedule: str | None = None,
        timezone: str | None = None,
        end_time: datetime | None = None,
        clear_end_time: bool = False,
        enabled: bool | None = None,
        payload: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        on_run_completed: OnRunCompleted | None = None,
    ) -> Cron:
        lock = self.dialect == "postgresql"
        async with self.engine.begin() as conn:
            q = _CRON_BY_ID.with_for_update() if lock else _CRON_BY_ID
            r = (await conn.execute(q, {"p_id": cron_id})).mappings().first()
            if r is None:
                raise NotFoundError(f"cron {cron_id} not found", code="cron_not_found")
            cron = cast(Cron, dict(r))
            changes: dict[str, Any] = {
                "schedule": schedule,
                "timezone": timezone,
                "end_time": end_time,
                "enabled": enabled,
                "payload": payload,
                "on_run_completed": on_run_completed,
            }
            values = {k: v for k, v in changes.items() if v is not None}
            if clear_end_time:
                values["end_time"] = None
            if metadata is not None:
                values["metadata"] = {**cron["metadata"], **metadata}
            reschedule = {"schedule", "timezone", "end_time", "enabled"} & values.keys()
            cron.update(values)  # type: ignore[typeddict-item]
            if reschedule:
                # From now, not from the old next_run_date: re-enabling a cron
                # that slept for a week must not fire the week's missed slots.
                cron["next_run_date"] = next_run(
                    cron["schedule"], cron["timezone"], now, cron["end_time"]
                )
                values["next_run_date"] = cron["next_run_date"]
            cron["updated_at"] = values["updated_at"] = now
            await conn.execute(_UPDATE_CRON, {"p_id": cron_id, **values})
        return cron

    async def delete(self, cron_id: str) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(crons.delete().where(crons.c.cron_id == cron_id))
            return bool(res.rowcount)

    def _where(
        self,
        assistant_id: str | None,
        thread_id: str | None,
        enabled: bool | None,
        metadata: dict[str, Any] | None,
    ) -> list[Any]:
        conds: list[Any] = []
        if assistant_id is not None:
            conds.append(crons.c.assistant_id == assistant_id)
        if thread_id is not None:
            conds.append(crons.c.thread_id == thread_id)
        if enabled is not None:
            conds.append(crons.c.enabled.is_(enabled))
        conds += json_match(crons.c.metadata, metadata or {}, self.dialect)
        return conds

    async def search(
        self,
        *,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        enabled: bool | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: SortOrder | None = None,
    ) -> list[Cron]:
        q = (
            crons.select()
            .where(*self._where(assistant_id, thread_id, enabled, metadata))
            .order_by(order_clause(crons, sort_by, sort_order, self._SORTABLE), crons.c.cron_id)
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            return [cast(Cron, dict(r)) for r in (await conn.execute(q)).mappings()]

    async def count(
        self,
        *,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        enabled: bool | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        q = (
            sa.select(sa.func.count())
            .select_from(crons)
            .where(*self._where(assistant_id, thread_id, enabled, metadata))
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def claim(self, now: datetime, limit: int = 100) -> list[Cron]:
        async with self.firing(now, limit) as due:
            return due

    @contextlib.asynccontextmanager
    async def firing(self, now: datetime, limit: int = 100) -> AsyncIterator[list[Cron]]:
        if limit <= 0:
            yield []
            return
        params = {"p_now": now, "p_limit": limit}
        if self.dialect != "postgresql":
            # SQLite has one writer and dockyard runs one process on it: no lock to
            # hold. The slot advances after the caller's runs exist; a crash in
            # between fires the slot again, and its run id (derived from the slot)
            # is then already taken.
            async with self.engine.connect() as conn:
                due = [
                    cast(Cron, dict(r)) for r in (await conn.execute(_DUE_CRONS, params)).mappings()
                ]
            yield due
            async with self.engine.begin() as conn:
                await self._advance(conn, due, now)
            return
        # PostgreSQL: the due rows stay locked until the caller's runs exist. A
        # concurrent caller skips them (SKIP LOCKED) and, once they are advanced,
        # no longer finds them due; a caller that dies rolls back, and the next
        # one fires the slot again under the same run id.
        async with self.engine.begin() as conn:
            res = await conn.execute(_DUE_CRONS.with_for_update(skip_locked=True), params)
            due = [cast(Cron, dict(r)) for r in res.mappings()]
            yield due
            await self._advance(conn, due, now)

    @staticmethod
    async def _advance(conn: Conn, due: list[Cron], now: datetime) -> None:
        for cron in due:
            nxt = next_run(cron["schedule"], cron["timezone"], now, cron["end_time"])
            await conn.execute(
                _ADVANCE, {"p_id": cron["cron_id"], "p_next": nxt, "p_slot": cron["next_run_date"]}
            )
